{{/*
Active verification (verification.enabled, docs/verification.md): the echo targets, their
Services and the two probe DaemonSets. Helpers are called with (dict "root" $ ...).

The verification pods carry app.kubernetes.io/name <name>-echo or <name>-probe, never the
exporter's own name, so the exporter's Deployment, Services, ServiceMonitor and NetworkPolicy
(all selecting app.kubernetes.io/name=<name>) never select them.
*/}}

{{/* <fullname>-<suffix>, the full name cut so the result stays a 63-character DNS label. */}}
{{- define "kpr-exporter.verificationName" -}}
{{- $keep := sub 62 (len .suffix) | int -}}
{{- printf "%s-%s" (include "kpr-exporter.fullname" .root | trunc $keep | trimSuffix "-") .suffix }}
{{- end }}

{{/* The name label of a verification part ("echo" or "probe"). */}}
{{- define "kpr-exporter.verificationAppName" -}}
{{- $keep := sub 62 (len .part) | int -}}
{{- printf "%s-%s" (include "kpr-exporter.name" .root | trunc $keep | trimSuffix "-") .part }}
{{- end }}

{{/* Selector labels of a verification part; "component" narrows them to one workload. */}}
{{- define "kpr-exporter.verificationSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kpr-exporter.verificationAppName" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "kpr-exporter.verificationLabels" -}}
helm.sh/chart: {{ include "kpr-exporter.chart" .root }}
{{ include "kpr-exporter.verificationSelectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "kpr-exporter.name" .root }}
{{- end }}

{{/* Label selector of every probe pod, both DaemonSets (the exporter's probes.selector). */}}
{{- define "kpr-exporter.verificationSelector" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s" (include "kpr-exporter.verificationAppName" (dict "root" . "part" "probe")) .Release.Name }}
{{- end }}

{{/* The ConfigMap holding targets.yaml: the user's, or the one the chart renders. */}}
{{- define "kpr-exporter.verificationTargetsConfigMap" -}}
{{- .Values.verification.existingTargetsConfigMap | default (include "kpr-exporter.verificationName" (dict "root" . "suffix" "targets")) }}
{{- end }}

{{/*
The checks of each probe DaemonSet. The host-network one runs every check that connects from
the node's own address (NodePorts, eTP=Local, hostPort, the API server, loopback); the
pod-network one runs those that connect from a pod. Together: the whole vocabulary, once.
*/}}
{{- define "kpr-exporter.verificationChecks" -}}
{{- if eq . "host" -}}
clusterip-host,nodeport-local,nodeport-remote,nodeport-loopback,etp-local-source-ip,etp-local-healthcheck,hostport,apiserver-from-host
{{- else -}}
clusterip-pod,loadbalancer,session-affinity,no-endpoints-reject,long-lived-connection
{{- end }}
{{- end }}

{{/*
The probes' target file (exporter/verify/targetfile.py). Service addresses are DNS names,
resolved by the probe at each connection (ClusterIPs are assigned at install time); the node
ports and the hostPort are pinned by the values; the nodes come from verification.nodes.
*/}}
{{- define "kpr-exporter.verificationTargets" -}}
{{- $v := .Values.verification -}}
{{- $port := int $v.servicePort -}}
{{- $svc := dict -}}
{{- range list "echo" "echo-affinity" "echo-none" }}
{{- $_ := set $svc . (printf "%s.%s.svc:%d" (include "kpr-exporter.verificationName" (dict "root" $ "suffix" .)) $.Release.Namespace $port) }}
{{- end }}
{{- $doc := dict
  "cluster_ip" (get $svc "echo")
  "node_port" (int $v.nodePorts.cluster)
  "etp_local_node_port" (int $v.nodePorts.local)
  "health_check_node_port" (int $v.nodePorts.healthCheck)
  "affinity" (get $svc "echo-affinity")
  "no_endpoints" (get $svc "echo-none")
  "apiserver" "kubernetes.default.svc:443"
  "hostport" (int $v.echo.hostPort)
  "loopback" "127.0.0.1" -}}
{{- if and $v.loadBalancer.enabled $v.loadBalancer.address }}
{{- $_ := set $doc "loadbalancer" (printf "%s:%d" (contains ":" $v.loadBalancer.address | ternary (printf "[%s]" $v.loadBalancer.address) $v.loadBalancer.address) $port) }}
{{- end }}
{{- $nodes := list -}}
{{- range $v.nodes }}
{{- $nodes = append $nodes (dict
  "name" .name
  "datapath" (get . "datapath" | default "kube-proxy")
  "addresses" .addresses
  "etp_local_endpoints" (hasKey . "etpLocalEndpoints" | ternary (get . "etpLocalEndpoints") 1 | int)
  "hostport" (hasKey . "hostport" | ternary (get . "hostport") true)) }}
{{- end }}
{{- $_ := set $doc "nodes" $nodes -}}
{{- toYaml $doc }}
{{- end }}

{{/* The node ports and the echo's hostPort all open on every node: they must differ. */}}
{{- define "kpr-exporter.verificationPortsCheck" -}}
{{- $p := .Values.verification.nodePorts -}}
{{- $ports := list (int $p.cluster) (int $p.local) (int $p.healthCheck) (int .Values.verification.echo.hostPort) -}}
{{- if ne (len ($ports | uniq)) 4 }}
{{- fail (printf "verification: nodePorts.cluster, nodePorts.local, nodePorts.healthCheck and echo.hostPort open on every node and must be four different ports, got %v" $ports) }}
{{- end }}
{{- end }}
