{{/* Common names and labels. */}}
{{- define "order-saga.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "order-saga.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "order-saga.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "order-saga.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "order-saga.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "order-saga.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "order-saga.databaseSecret" -}}
{{- if .Values.database.url -}}{{ include "order-saga.fullname" . }}-database{{- else -}}{{ .Values.database.existingSecret }}{{- end -}}
{{- end -}}

{{/* Environment shared by both components: the ConfigMap, the payload keys and the NATS credentials from their Secrets. */}}
{{- define "order-saga.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "order-saga.fullname" . }}
  - secretRef:
      name: {{ .Values.encryption.keysSecret }}
  {{- with .Values.nats.credentialsSecret }}
  - secretRef:
      name: {{ . }}
  {{- end }}
{{- end -}}

{{/* Secrets mounted as files (TLS material, NATS creds): the volumes, then their mounts. */}}
{{- define "order-saga.secretVolumes" -}}
{{- if .Values.temporal.tls.enabled }}
{{- /* Not "temporal-tls": the Temporal Worker Controller adds a volume of that name to the pods it runs. */}}
- name: temporal-client-tls
  secret: { secretName: {{ .Values.temporal.tls.secret }}, defaultMode: 0400 }
{{- end }}
{{- if .Values.nats.tls.enabled }}
- name: nats-tls
  secret: { secretName: {{ .Values.nats.tls.secret }}, defaultMode: 0400 }
{{- end }}
{{- with .Values.nats.credsFileSecret }}
- name: nats-creds
  secret: { secretName: {{ . }}, defaultMode: 0400 }
{{- end }}
{{- end -}}
{{- define "order-saga.secretMounts" -}}
{{- if .Values.temporal.tls.enabled }}
- { name: temporal-client-tls, mountPath: /etc/order-saga/temporal-tls, readOnly: true }
{{- end }}
{{- if .Values.nats.tls.enabled }}
- { name: nats-tls, mountPath: /etc/order-saga/nats-tls, readOnly: true }
{{- end }}
{{- if .Values.nats.credsFileSecret }}
- { name: nats-creds, mountPath: /etc/order-saga/nats-creds, readOnly: true }
{{- end }}
{{- end -}}

{{/* Render-time checks of settings that are valid alone but not together. */}}
{{- define "order-saga.checks" -}}
{{- if and .Values.ingress.enabled (not (or .Values.auth.jwt.jwksUrl .Values.auth.apiKeysSecret)) }}
{{- fail "auth: the ingress needs a way to authenticate callers; set auth.jwt.jwksUrl (with issuer and audience) or auth.apiKeysSecret" }}
{{- end }}
{{- if and .Values.auth.jwt.jwksUrl (not (and .Values.auth.jwt.issuer .Values.auth.jwt.audience)) }}
{{- fail "auth.jwt: issuer and audience are required with jwksUrl (tokens are checked against both)" }}
{{- end }}
{{- if and .Values.temporal.tls.enabled (not .Values.temporal.tls.secret) }}
{{- fail "temporal.tls.secret: name the Secret with ca.crt, tls.crt and tls.key" }}
{{- end }}
{{- if and .Values.nats.tls.enabled (not .Values.nats.tls.secret) }}
{{- fail "nats.tls.secret: name the Secret with ca.crt, tls.crt and tls.key" }}
{{- end }}
{{- if and .Values.nats.credentialsSecret .Values.nats.credsFileSecret }}
{{- fail "nats: set credentialsSecret or credsFileSecret, not both" }}
{{- end }}
{{- end -}}

{{/* Pod-level settings both Deployments share. */}}
{{- define "order-saga.podCommon" -}}
serviceAccountName: {{ include "order-saga.serviceAccountName" . }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The Temporal Worker Controller's kinds for worker.versioning.controllerApi (values.yaml).
     Controller v1.7 renamed them (same apiVersion, same fields); v1.6 is the line before. */}}
{{- define "order-saga.workerDeploymentKind" -}}
{{- if eq .Values.worker.versioning.controllerApi "v1.6" }}TemporalWorkerDeployment{{ else }}WorkerDeployment{{ end }}
{{- end -}}

{{- define "order-saga.connectionKind" -}}
{{- if eq .Values.worker.versioning.controllerApi "v1.6" }}TemporalConnection{{ else }}Connection{{ end }}
{{- end -}}

{{/* Render-time checks of the worker's settings, in both versioning modes. */}}
{{- define "order-saga.workerChecks" -}}
{{- $worker := .Values.worker }}
{{- if le (int $worker.terminationGracePeriodSeconds) (add (int $worker.shutdownGraceSeconds) 5 | int) }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must exceed worker.shutdownGraceSeconds (%d) by more than 5 s, or Kubernetes kills workers before they hand back their tasks" (int $worker.terminationGracePeriodSeconds) (int $worker.shutdownGraceSeconds)) }}
{{- end }}
{{- if and $worker.keda.enabled $worker.autoscaling.enabled }}
{{- fail "worker.keda.enabled and worker.autoscaling.enabled both scale the worker: enable one of them" }}
{{- end }}
{{- if eq $worker.versioning.mode "controller" }}
{{- /* The controller's WorkerDeployment (TemporalWorkerDeployment) has no scale subresource, and each build's Deployment is the controller's: nothing for an HPA or KEDA to target. */}}
{{- range $setting := list "autoscaling" "keda" }}
{{- if (index $worker $setting).enabled }}
{{- fail (printf "worker.%s.enabled: with worker.versioning.mode=controller the Temporal Worker Controller runs each build in a Deployment of its own, which an HPA or a KEDA ScaledObject cannot follow; set worker.%s.enabled=false and size the worker with worker.replicaCount (pods per build), or set worker.versioning.mode=unversioned" $setting $setting) }}
{{- end }}
{{- end }}
{{- if not (regexMatch "^[a-zA-Z0-9.-]+:[0-9]+$" .Values.temporal.address) }}
{{- fail (printf "temporal.address %q: the Temporal Worker Controller's %s takes host:port with a host of letters, digits, dots and dashes only; use such a name for the frontend, or set worker.versioning.mode=unversioned" .Values.temporal.address (include "order-saga.connectionKind" .)) }}
{{- end }}
{{- $name := printf "%s-worker" (include "order-saga.fullname" .) }}
{{- if gt (len $name) 63 }}
{{- fail (printf "the %s's name %q is longer than the 63 characters the Temporal Worker Controller accepts: choose a shorter release name" (include "order-saga.workerDeploymentKind" .) $name) }}
{{- end }}
{{- $rollout := $worker.versioning.rollout }}
{{- if eq $rollout.strategy "Progressive" }}
{{- $lastRamp := 0 }}
{{- range $index, $step := $rollout.steps }}
{{- if le (int $step.rampPercentage) $lastRamp }}
{{- fail (printf "worker.versioning.rollout.steps[%d].rampPercentage (%d) must be larger than the step before's (%d): a Progressive rollout only ramps up" $index (int $step.rampPercentage) $lastRamp) }}
{{- end }}
{{- $lastRamp = int $step.rampPercentage }}
{{- $hours := regexFind "[0-9]+h" $step.pauseDuration | trimSuffix "h" | default "0" | int }}
{{- $minutes := regexFind "[0-9]+m" $step.pauseDuration | trimSuffix "m" | default "0" | int }}
{{- $seconds := regexFind "[0-9]+s" $step.pauseDuration | trimSuffix "s" | default "0" | int }}
{{- if lt (add (mul $hours 3600) (mul $minutes 60) $seconds) 30 }}
{{- fail (printf "worker.versioning.rollout.steps[%d].pauseDuration (%s) is shorter than the 30s the Temporal Worker Controller accepts" $index $step.pauseDuration) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The worker's pod, the same in the plain Deployment and in the controller's WorkerDeployment. */}}
{{- define "order-saga.workerPodTemplate" -}}
metadata:
  labels:
    {{- include "order-saga.labels" . | nindent 4 }}
    app.kubernetes.io/component: worker
  annotations:
    checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.worker.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- include "order-saga.podCommon" . | nindent 2 }}
  terminationGracePeriodSeconds: {{ .Values.worker.terminationGracePeriodSeconds }}
  containers:
    - name: worker
      image: {{ include "order-saga.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["dist/workers/main.js"]
      {{- include "order-saga.env" . | nindent 6 }}
      env:
        - name: DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "order-saga.databaseSecret" . }}
              key: {{ .Values.database.existingSecretKey }}
        {{- /* lib/config.ts. Under the controller, the controller sets TEMPORAL_DEPLOYMENT_NAME and
               TEMPORAL_WORKER_BUILD_ID (and TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE from the
               Connection) in each build's pods, and its rollout makes a build current. */}}
        {{- if eq .Values.worker.versioning.mode "controller" }}
        - name: TEMPORAL_WORKER_VERSIONING
          value: versioned
        - name: TEMPORAL_WORKER_BECOME_CURRENT
          value: never
        {{- else }}
        - name: TEMPORAL_WORKER_VERSIONING
          value: unversioned
        {{- end }}
      ports:
        - name: metrics
          containerPort: {{ .Values.worker.metricsPort }}
      startupProbe:
        httpGet: { path: /health, port: metrics }
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet: { path: /health, port: metrics }
        periodSeconds: 10
        failureThreshold: 3
      readinessProbe:
        httpGet: { path: /ready, port: metrics }
        periodSeconds: 5
        failureThreshold: 2
      resources:
        {{- toYaml .Values.worker.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - { name: tmp, mountPath: /tmp }
        {{- include "order-saga.secretMounts" . | nindent 8 }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- include "order-saga.secretVolumes" . | nindent 4 }}
  {{- with .Values.worker.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.worker.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.worker.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
