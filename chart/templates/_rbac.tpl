{{/*
The permission tables. Each entry is one RBAC rule plus the namespace it applies in ("" for
the ClusterRole). Every rule is something the exporter's code does, with the object names from
the effective config file; the chart tests compare these tables with the permissions the code
declares (exporter/rollback/permissions.py and the Kubernetes watchers), so a rule the code
does not use, or a use the chart does not grant, fails them. Rules name their objects
(resourceNames) wherever Kubernetes can check a name: not for create, and not for objects
whose names are only known at run time (CiliumNodeConfigs, agent pods, nodes).

  always:   the watchers' reads (nodes, Services, EndpointSlices, agent and kube-proxy pods,
            cilium-config, CiliumNodeConfigs, the kube-proxy DaemonSet and ConfigMap for
            their owners), the rollback planner's reads (it plans against
            the live cluster in dry-run too), and the baseline ConfigMap (baseline.store).
            Relay mode's one ServiceAccount; it is central + backendMap.
  central:  node mode's central Deployment: always without the Services and EndpointSlices
            (it attributes no flows).
  collect:  node mode's collectors (DaemonSet): only what collection reads: the datapath
            watcher's (nodes, agent and kube-proxy pods, cilium-config, CiliumNodeConfigs),
            the backend map's (Services, EndpointSlices), the agent and kube-proxy discovery.
            Never a write, in any rollback mode.
  probes:   with verification.enabled, listing the probe pods whose results the exporter
            collects; part of always (relay mode) and collect (node mode).
  kubeProxyScrape: listing the kube-proxy pods the scraper discovers (kube_proxy.*), when
            config.kube_proxy.namespace differs from the watchers' kube-proxy namespace (which
            already grants it); part of always and collect.
  rollback: rollback.mode=enforce only. The writes of the rollback steps and its bookkeeping
            (state ConfigMap, Lease, Events).
  migration: migration.enabled with rollback.mode=enforce: what the guided migration writes
            beyond the rollback (the kube-proxy DaemonSet's deletion, the CiliumNodeConfig, its
            state ConfigMap) and the preflight's reads it runs first; with migration.drain,
            evicting pods in every namespace. (migration.enabled in dry-run only adds reading
            the state ConfigMap, in central.)
  backup:   rbac.backup=true in dry-run, so `kpr-exporter backup` can run inside the pod
            (enforce mode grants it already).
*/}}

{{- define "kpr-exporter.rbac.always" -}}
{{- $central := include "kpr-exporter.rbac.central" . | fromYamlArray -}}
{{- concat (list (first $central)) (include "kpr-exporter.rbac.backendMap" . | fromYamlArray) (rest $central) (include "kpr-exporter.rbac.probes" . | fromYamlArray) (include "kpr-exporter.rbac.kubeProxyScrape" . | fromYamlArray) | toYaml }}
{{- end }}

{{/* The kube-proxy scraper's discovery, where the watchers' rule does not cover it. */}}
{{- define "kpr-exporter.rbac.kubeProxyScrape" -}}
{{- $cfg := include "kpr-exporter.effectiveConfig" . | fromYaml -}}
{{- $kp := $cfg.kube_proxy -}}
{{- if and (ne (toString $kp.enabled) "false") (not $kp.static) (ne $kp.namespace $cfg.kube.kube_proxy_namespace) }}
- namespace: {{ $kp.namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list]}
{{- end }}
{{- end }}

{{/* Collecting the verification probes' results: listing the probe pods (collection only). */}}
{{- define "kpr-exporter.rbac.probes" -}}
{{- $probes := (include "kpr-exporter.effectiveConfig" . | fromYaml).probes -}}
{{- if and $probes $probes.enabled (not $probes.static) }}
- namespace: {{ $probes.namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list]}
{{- end }}
{{- end }}

{{- define "kpr-exporter.rbac.backendMap" -}}
- namespace: ""
  rule: {apiGroups: [""], resources: [services], verbs: [list, watch]}
- namespace: ""
  rule: {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
{{- end }}

{{- define "kpr-exporter.rbac.collect" -}}
{{- $kube := (include "kpr-exporter.effectiveConfig" . | fromYaml).kube -}}
- namespace: ""
  rule: {apiGroups: [""], resources: [nodes], verbs: [list, watch]}
{{ include "kpr-exporter.rbac.backendMap" . }}
- namespace: {{ $kube.cilium_namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list, watch]}
- namespace: {{ $kube.cilium_namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $kube.cilium_config_name | quote }}], verbs: [list, watch]}
- namespace: {{ $kube.cilium_namespace | quote }}
  rule: {apiGroups: [cilium.io], resources: [ciliumnodeconfigs], verbs: [list, watch]}
- namespace: {{ $kube.kube_proxy_namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list, watch]}
{{ include "kpr-exporter.rbac.probes" . }}
{{ include "kpr-exporter.rbac.kubeProxyScrape" . }}
{{- end }}

{{- define "kpr-exporter.rbac.central" -}}
{{- $cfg := include "kpr-exporter.effectiveConfig" . | fromYaml -}}
{{- $kube := $cfg.kube -}}
{{- $rb := $cfg.rollback -}}
- namespace: ""
  rule: {apiGroups: [""], resources: [nodes], verbs: [get, list, watch]}
- namespace: {{ $kube.cilium_namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list, watch]}
- namespace: {{ $kube.cilium_namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $kube.cilium_config_name | quote }}], verbs: [get, list, watch]}
- namespace: {{ $kube.cilium_namespace | quote }}
  rule: {apiGroups: [cilium.io], resources: [ciliumnodeconfigs], verbs: [get, list, watch]}
{{- if ne $rb.cilium.namespace $kube.cilium_namespace }}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list]}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [cilium.io], resources: [ciliumnodeconfigs], verbs: [get, list]}
{{- end }}
{{- if or (ne $rb.cilium.namespace $kube.cilium_namespace) (ne $rb.cilium.configmap $kube.cilium_config_name) }}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $rb.cilium.configmap | quote }}], verbs: [get]}
{{- end }}
- namespace: {{ $kube.kube_proxy_namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list, watch]}
{{- if ne $rb.kube_proxy.namespace $kube.kube_proxy_namespace }}
- namespace: {{ $rb.kube_proxy.namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [list]}
{{- end }}
- namespace: {{ $rb.kube_proxy.namespace | quote }}
  rule: {apiGroups: [apps], resources: [daemonsets], resourceNames: [{{ $rb.kube_proxy.daemonset | quote }}], verbs: [get, list, watch]}
- namespace: {{ $rb.kube_proxy.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $rb.kube_proxy.configmap | quote }}], verbs: [get, list, watch]}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $rb.state_configmap | quote }}, {{ $rb.backup_configmap | quote }}{{ if .Values.migration.enabled }}, {{ $cfg.migrate.state_configmap | quote }}{{ end }}], verbs: [get]}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [{{ $rb.lease_name | quote }}], verbs: [get]}
{{- if eq $cfg.baseline.store "configmap" }}
- namespace: {{ $cfg.baseline.configmap.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $cfg.baseline.configmap.name | quote }}], verbs: [get, update]}
- namespace: {{ $cfg.baseline.configmap.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], verbs: [create]}
{{- end }}
{{- end }}

{{- define "kpr-exporter.rbac.rollback" -}}
{{- $rb := (include "kpr-exporter.effectiveConfig" . | fromYaml).rollback -}}
- namespace: ""
  rule: {apiGroups: [""], resources: [nodes], verbs: [patch]}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $rb.cilium.configmap | quote }}], verbs: [patch]}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [cilium.io], resources: [ciliumnodeconfigs], verbs: [update, delete]}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [""], resources: [pods], verbs: [delete]}
- namespace: {{ $rb.kube_proxy.namespace | quote }}
  rule: {apiGroups: [apps], resources: [daemonsets], resourceNames: [{{ $rb.kube_proxy.daemonset | quote }}], verbs: [patch]}
- namespace: {{ $rb.kube_proxy.namespace | quote }}
  rule: {apiGroups: [apps], resources: [daemonsets], verbs: [create]}
- namespace: {{ $rb.kube_proxy.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], verbs: [create]}
{{ include "kpr-exporter.rbac.ownWrites" . }}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [{{ $rb.lease_name | quote }}], verbs: [update]}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create]}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [""], resources: [events], verbs: [create]}
{{- end }}

{{- define "kpr-exporter.rbac.migration" -}}
{{- $cfg := include "kpr-exporter.effectiveConfig" . | fromYaml -}}
{{- $rb := $cfg.rollback -}}
- namespace: ""
  rule: {apiGroups: [""], resources: [services, pods], verbs: [list]}
- namespace: ""
  rule: {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list]}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [apps], resources: [daemonsets], resourceNames: [{{ $rb.cilium.daemonset | quote }}], verbs: [get]}
- namespace: {{ $rb.cilium.namespace | quote }}
  rule: {apiGroups: [cilium.io], resources: [ciliumnodeconfigs], verbs: [create]}
- namespace: {{ $rb.kube_proxy.namespace | quote }}
  rule: {apiGroups: [apps], resources: [daemonsets], resourceNames: [{{ $rb.kube_proxy.daemonset | quote }}], verbs: [delete]}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $cfg.migrate.state_configmap | quote }}], verbs: [update]}
{{- if .Values.migration.drain }}
- namespace: ""
  rule: {apiGroups: [""], resources: [pods/eviction], verbs: [create]}
{{- end }}
{{- end }}

{{- define "kpr-exporter.rbac.backup" -}}
{{ include "kpr-exporter.rbac.ownWrites" . }}
{{- end }}

{{/* Writing the exporter's own state and backup ConfigMaps (rollback and backup). */}}
{{- define "kpr-exporter.rbac.ownWrites" -}}
{{- $rb := (include "kpr-exporter.effectiveConfig" . | fromYaml).rollback -}}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], resourceNames: [{{ $rb.state_configmap | quote }}, {{ $rb.backup_configmap | quote }}], verbs: [update, patch]}
- namespace: {{ $rb.namespace | quote }}
  rule: {apiGroups: [""], resources: [configmaps], verbs: [create]}
{{- end }}
