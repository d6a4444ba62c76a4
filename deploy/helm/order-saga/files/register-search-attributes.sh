#!/bin/sh
# Registers the saga's search attributes (public contract) on a Temporal namespace and sets
# its retention of closed workflows (NAMESPACE_RETENTION, default 720h). The retention must
# cover the ORDERS stream's 7 days, or the worker refuses to start: an event replayed after
# its saga's history was deleted could start the order again.
# A namespace that does not exist yet is created (a self-hosted cluster starts with none; the
# auto-setup image of Compose makes `default` itself).
# Idempotent: an attribute already registered is left alone. Used by docker-compose.yml
# and by the Helm chart's set-up Job. Needs the `temporal` CLI and TEMPORAL_ADDRESS.
set -eu
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${NAMESPACE_RETENTION:-720h}"
for attempt in $(seq 1 31); do
  temporal operator cluster health >/dev/null 2>&1 && break
  if [ "$attempt" -eq 31 ]; then
    echo "Temporal at ${TEMPORAL_ADDRESS:-127.0.0.1:7233} did not answer for 60 s: check TEMPORAL_ADDRESS (and its TLS settings)" >&2
    exit 1
  fi
  echo "waiting for Temporal at ${TEMPORAL_ADDRESS:-127.0.0.1:7233} ($attempt/30)"; sleep 2
done
if ! temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  # Another set-up (auto-setup) may create it at the same moment: then describing it succeeds.
  if temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"; then
    echo "created namespace $NAMESPACE"
  else
    temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null
    echo "namespace $NAMESPACE was created meanwhile"
  fi
fi
# A new namespace reaches the services' namespace caches a few seconds after it is written.
for attempt in $(seq 1 30); do
  existing="$(temporal operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null)" && break
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
