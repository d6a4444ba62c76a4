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
- name: temporal-tls
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
- { name: temporal-tls, mountPath: /etc/order-saga/temporal-tls, readOnly: true }
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
