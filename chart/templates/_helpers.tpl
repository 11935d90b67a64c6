{{/*
Names, labels and the few derived values every template shares.
*/}}

{{- define "kpr-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kpr-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kpr-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kpr-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kpr-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kpr-exporter.labels" -}}
helm.sh/chart: {{ include "kpr-exporter.chart" . }}
{{ include "kpr-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "kpr-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kpr-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kpr-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the webhook bearer token, and its key. */}}
{{- define "kpr-exporter.tokenSecretName" -}}
{{- default (printf "%s-webhook-token" (include "kpr-exporter.fullname" .)) .Values.webhook.token.existingSecret }}
{{- end }}

{{/* Hubble address for the selected mode (hubble.address wins). */}}
{{- define "kpr-exporter.hubbleAddress" -}}
{{- if .Values.hubble.address }}
{{- .Values.hubble.address }}
{{- else if eq .Values.mode "node" }}
{{- if eq .Values.node.transport "tls" }}
{{- printf "$(HOST_IP):%d" (int .Values.node.tls.port) }}
{{- else }}
{{- printf "unix://%s/%s" (trimSuffix "/" .Values.node.socket.hostPath) .Values.node.socket.file }}
{{- end }}
{{- else }}
{{- printf "hubble-relay.%s.svc:%d" .Values.cilium.namespace (ternary 443 80 .Values.hubble.tls.enabled) }}
{{- end }}
{{- end }}

{{/* Whether the exporter talks TLS to Hubble, and from which Secret. */}}
{{- define "kpr-exporter.hubbleTLSSecret" -}}
{{- if and (eq .Values.mode "node") (eq .Values.node.transport "tls") }}
{{- .Values.node.tls.existingSecret }}
{{- else if and (eq .Values.mode "relay") .Values.hubble.tls.enabled }}
{{- .Values.hubble.tls.existingSecret }}
{{- end }}
{{- end }}

{{/* Mount path of the config file, the token and the Hubble TLS material. */}}
{{- define "kpr-exporter.configDir" -}}/etc/kpr-exporter{{- end }}

{{/*
The rule profile's assumptions (scrape_interval, evaluation_interval, group_wait) from
alerts/profiles.yaml, following `extends:`; the ServiceMonitor and the AlertmanagerConfig use
them unless their own values are set. Renders a YAML mapping (empty without profiles.yaml).
*/}}
{{- define "kpr-exporter.profileAssumptions" -}}
{{- $doc := .Files.Get "files/alerts/profiles.yaml" | fromYaml -}}
{{- $profiles := default dict (get $doc "profiles") -}}
{{- $name := .Values.alerts.profile -}}
{{- $chain := list -}}
{{- range until 10 }}
{{- if and $name (hasKey $profiles $name) (not (has $name $chain)) }}
{{- $chain = append $chain $name }}
{{- $name = get (get $profiles $name) "extends" }}
{{- end }}
{{- end }}
{{- $merged := dict -}}
{{- range reverse $chain }}
{{- $merged = mergeOverwrite $merged (default dict (get (get $profiles .) "assumptions")) }}
{{- end }}
{{- toYaml $merged }}
{{- end }}

{{/* The rule file of the selected profile, relative to the chart. */}}
{{- define "kpr-exporter.ruleFile" -}}
{{- printf "files/alerts/rules/%s.yaml" .Values.alerts.profile }}
{{- end }}

{{/* A scrape timeout for an interval: the interval itself, at most 10s. Input: a duration. */}}
{{- define "kpr-exporter.scrapeTimeout" -}}
{{- $seconds := 10 -}}
{{- if regexMatch "^[0-9]+s$" . }}{{ $seconds = min 10 (trimSuffix "s" . | int) }}{{ end -}}
{{- printf "%ds" $seconds }}
{{- end }}

{{/* The optional ConfigMap whose presence stops every rollback. */}}
{{- define "kpr-exporter.killSwitchName" -}}
{{- default (printf "%s-kill-switch" (include "kpr-exporter.fullname" .)) .Values.rollback.killSwitchConfigMap }}
{{- end }}

{{/*
Node mode's two workloads. Every pod template gets (dict "root" $ "role" <role>): "all" in
relay mode (one Deployment does everything), "collector" for the DaemonSet (collection only),
"central" for the Deployment that judges over Prometheus, keeps the baseline, answers the
webhook and rolls back.
*/}}
{{- define "kpr-exporter.centralName" -}}
{{- printf "%s-central" (include "kpr-exporter.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* The central Deployment's ServiceAccount (the collectors' is serviceAccountName). */}}
{{- define "kpr-exporter.centralServiceAccountName" -}}
{{- if .Values.serviceAccount.centralName }}
{{- .Values.serviceAccount.centralName }}
{{- else if .Values.serviceAccount.create }}
{{- printf "%s-central" (include "kpr-exporter.serviceAccountName" . | trunc 55 | trimSuffix "-") }}
{{- else }}
{{- include "kpr-exporter.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/* Labels selecting one role's pods; relay mode's pods keep the plain selector labels. */}}
{{- define "kpr-exporter.roleSelectorLabels" -}}
{{ include "kpr-exporter.selectorLabels" .root }}
{{- if ne .role "all" }}
app.kubernetes.io/component: {{ .role }}
{{- end }}
{{- end }}
