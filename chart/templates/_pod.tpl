{{/*
The exporter's pod template, shared by the relay-mode Deployment and node mode's DaemonSet
(collectors) and central Deployment. Called with (dict "root" $ "role" <role>), see
_helpers.tpl; inside, "." is the root context again.
Flags follow the exporter's command-line contract; everything else goes into the config file.

  all:       relay mode, as before: Hubble Relay, the webhook and the rollback.
  collector: --web.role=collector; Hubble and the agent of its own node; no webhook token,
             no kill switch, no baseline volume, no rollback flags.
  central:   --web.role=central; no Hubble flags or volumes; judges over Prometheus
             (--judge.source=prometheus), holds the rollback Lease as its pod name.
*/}}

{{- define "kpr-exporter.args" -}}
{{- $role := .role -}}
{{- with .root -}}
{{- $dir := include "kpr-exporter.configDir" . -}}
{{- $tls := include "kpr-exporter.hubbleTLSSecret" . -}}
- run
- --config.file={{ $dir }}/config/config.yaml
- --web.listen-address=:{{ .Values.port }}
{{- if ne $role "all" }}
- --web.role={{ $role }}
{{- end }}
{{- if ne $role "central" }}
- --hubble.address={{ include "kpr-exporter.hubbleAddress" . }}
{{- if $tls }}
- --hubble.tls.ca-file={{ $dir }}/hubble-tls/ca.crt
{{- if or (eq .Values.mode "node") .Values.hubble.tls.mtls }}
- --hubble.tls.cert-file={{ $dir }}/hubble-tls/tls.crt
- --hubble.tls.key-file={{ $dir }}/hubble-tls/tls.key
{{- end }}
{{- if eq .Values.mode "node" }}
- --hubble.tls.server-name={{ .Values.node.tls.serverName | default (printf "kpr-exporter.%s.hubble-grpc.cilium.io" (.Values.cilium.clusterName | replace "." "-")) }}
{{- else if .Values.hubble.tls.serverName }}
- --hubble.tls.server-name={{ .Values.hubble.tls.serverName }}
{{- end }}
{{- end }}
{{- if and (eq .Values.mode "node") .Values.node.localAgentOnly }}
- --agents.node-name=$(NODE_NAME)
- --kube-proxy.node-name=$(NODE_NAME)
{{- end }}
{{- if and (eq $role "collector") .Values.verification.enabled }}
- --probes.node-name=$(NODE_NAME)
{{- end }}
{{- end }}
{{- if eq $role "central" }}
{{- $prom := .Values.central.prometheus }}
- --judge.source=prometheus
- --judge.prometheus.url={{ $prom.url }}
{{- if $prom.bearerTokenKey }}
- --judge.prometheus.bearer-token-file={{ $dir }}/prometheus/{{ $prom.bearerTokenKey }}
{{- end }}
{{- if $prom.caKey }}
- --judge.prometheus.tls.ca-file={{ $dir }}/prometheus/{{ $prom.caKey }}
{{- end }}
- --rollback.identity=$(POD_NAME)
- --rollback.lease-seconds={{ .Values.central.leaseSeconds }}
{{- end }}
{{- if ne $role "collector" }}
- --rollback.mode={{ .Values.rollback.mode }}
- --webhook.token-file={{ $dir }}/webhook/token
{{- end }}
- --log.format={{ .Values.log.format }}
- --log.level={{ .Values.log.level }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kpr-exporter.podTemplate" -}}
{{- $ctx := . -}}
{{- $role := .role -}}
{{- with .root -}}
{{- $dir := include "kpr-exporter.configDir" . -}}
{{- $tls := ternary "" (include "kpr-exporter.hubbleTLSSecret" .) (eq $role "central") -}}
{{- $socket := and (eq $role "collector") (eq .Values.node.transport "socket") -}}
{{- $decides := ne $role "collector" -}}
{{- $prom := and (eq $role "central") .Values.central.prometheus.existingSecret -}}
metadata:
  labels:
    {{- include "kpr-exporter.roleSelectorLabels" $ctx | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ eq $role "central" | ternary (include "kpr-exporter.centralServiceAccountName" .) (include "kpr-exporter.serviceAccountName" .) }}
  automountServiceAccountToken: true
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
    {{- if $socket }}
    supplementalGroups:
      {{- toYaml .Values.node.socket.supplementalGroups | nindent 6 }}
    {{- end }}
  containers:
    - name: exporter
      image: {{ include "kpr-exporter.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- include "kpr-exporter.args" $ctx | nindent 8 }}
      env:
        {{- if eq $role "collector" }}
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: HOST_IP
          valueFrom:
            fieldRef:
              fieldPath: status.hostIP
        {{- end }}
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: PYTHONUNBUFFERED
          value: "1"
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http-metrics
          containerPort: {{ .Values.port }}
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /healthz
          port: http-metrics
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          {{- /* a collector has no webhook: ready while it serves /metrics */}}
          path: {{ $decides | ternary "/readyz/webhook" "/readyz/listener" }}
          port: http-metrics
        {{- toYaml .Values.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml (eq $role "central" | ternary .Values.central.resources .Values.resources) | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ $dir }}/config
          readOnly: true
        {{- if $decides }}
        - name: webhook-token
          mountPath: {{ $dir }}/webhook
          readOnly: true
        {{- end }}
        - name: tmp
          mountPath: /tmp
        {{- if $decides }}
        - name: kill-switch
          mountPath: {{ $dir }}/kill-switch
          readOnly: true
        {{- if eq .Values.baseline.store "file" }}
        - name: baseline
          mountPath: /var/lib/kpr-exporter
        {{- end }}
        {{- end }}
        {{- if $tls }}
        - name: hubble-tls
          mountPath: {{ $dir }}/hubble-tls
          readOnly: true
        {{- end }}
        {{- if $socket }}
        - name: hubble-sock-dir
          mountPath: {{ trimSuffix "/" .Values.node.socket.hostPath }}
          readOnly: true
        {{- end }}
        {{- if $prom }}
        - name: prometheus
          mountPath: {{ $dir }}/prometheus
          readOnly: true
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "kpr-exporter.fullname" . }}
    {{- if $decides }}
    - name: webhook-token
      secret:
        secretName: {{ include "kpr-exporter.tokenSecretName" . }}
        defaultMode: 0440
        items:
          - key: {{ .Values.webhook.token.key }}
            path: token
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $decides }}
    - name: kill-switch
      configMap:
        name: {{ include "kpr-exporter.killSwitchName" . }}
        optional: true
    {{- if eq .Values.baseline.store "file" }}
    - name: baseline
      {{- if .Values.baseline.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ .Values.baseline.existingClaim }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    {{- end }}
    {{- end }}
    {{- if $tls }}
    - name: hubble-tls
      secret:
        secretName: {{ $tls }}
        defaultMode: 0440
    {{- end }}
    {{- if $socket }}
    - name: hubble-sock-dir
      hostPath:
        path: {{ trimSuffix "/" .Values.node.socket.hostPath }}
        type: Directory
    {{- end }}
    {{- if $prom }}
    - name: prometheus
      secret:
        secretName: {{ .Values.central.prometheus.existingSecret }}
        defaultMode: 0440
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (eq $role "collector" | ternary .Values.node.tolerations .Values.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
