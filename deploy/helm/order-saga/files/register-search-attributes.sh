#!/bin/sh
# Registers the saga's search attributes (public contract) on a Temporal namespace and sets
# its retention of closed workflows (NAMESPACE_RETENTION, default 720h). The retention must
# cover the ORDERS stream's 7 days, or the worker refuses to start: an event replayed after
# its saga's history was deleted could start the order again.
# Idempotent: an attribute already registered is left alone. Used by docker-compose.yml
# and by the Helm chart's set-up Job. Needs the `temporal` CLI and TEMPORAL_ADDRESS.
set -eu
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${NAMESPACE_RETENTION:-720h}"
for attempt in $(seq 1 30); do
  temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1 && break
  echo "waiting for namespace $NAMESPACE ($attempt/30)"; sleep 2
done
existing="$(temporal operator search-attribute list --namespace "$NAMESPACE")"
for spec in OrderStatus:Keyword CustomerId:Keyword OrderTotal:Double OrderUpdatedAt:Datetime; do
  name="${spec%%:*}"; type="${spec##*:}"
  if echo "$existing" | grep -qw "$name"; then
    echo "search attribute $name already registered"
  else
    temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type"
    echo "registered search attribute $name ($type)"
  fi
done
temporal operator namespace update --namespace "$NAMESPACE" --retention "$RETENTION"
echo "namespace $NAMESPACE keeps closed workflows for $RETENTION"
