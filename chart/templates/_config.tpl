{{/*
The exporter's effective config file: the settings the chart derives from its values (where
Cilium and kube-proxy run, where the exporter keeps its own objects), overlaid by
.Values.config. configmap.yaml writes it; the RBAC tables read the same object names from it, so
the permissions always follow the configuration the pod runs with.
*/}}
{{- define "kpr-exporter.effectiveConfig" -}}
{{- $derived := dict
      "kube" (dict
        "cilium_namespace" .Values.cilium.namespace
        "cilium_config_name" .Values.cilium.configMapName
        "agent_selector" .Values.cilium.agentSelector
        "kube_proxy_namespace" .Values.kubeProxy.namespace
        "kube_proxy_selector" .Values.kubeProxy.podSelector)
      "agents" (dict
        "namespace" .Values.cilium.namespace
        "selector" .Values.cilium.agentSelector
        "port" (int .Values.cilium.agentMetricsPort))
      "kube_proxy" (dict
        "namespace" .Values.kubeProxy.namespace
        "selector" .Values.kubeProxy.podSelector)
      "baseline" (eq .Values.baseline.store "configmap" | ternary
        (dict "store" "configmap" "configmap" (dict "namespace" .Release.Namespace "name" "kpr-exporter-baseline"))
        (dict "store" "file" "file" "/var/lib/kpr-exporter/baseline.json"))
      "rollback" (dict
        "namespace" .Release.Namespace
        "state_configmap" "kpr-exporter-rollback"
        "backup_configmap" "kpr-exporter-backup"
        "lease_name" "kpr-exporter-rollback"
        "kill_switch" .Values.rollback.killSwitch
        "kill_switch_file" (printf "%s/kill-switch/engaged" (include "kpr-exporter.configDir" .))
        "cilium" (dict
          "namespace" .Values.cilium.namespace
          "configmap" .Values.cilium.configMapName
          "daemonset" .Values.cilium.daemonSetName
          "agent_selector" .Values.cilium.agentSelector
          "helm_release" .Values.cilium.helmRelease)
        "kube_proxy" (dict
          "namespace" .Values.kubeProxy.namespace
          "daemonset" .Values.kubeProxy.daemonSetName
          "configmap" .Values.kubeProxy.configMapName
          "pod_selector" .Values.kubeProxy.podSelector))
-}}
{{- if .Values.verification.enabled }}
{{- /* collect the verification probes' results (node mode: each collector its node's) */}}
{{- $_ := set $derived "probes" (dict
      "enabled" true
      "namespace" .Release.Namespace
      "selector" (include "kpr-exporter.verificationSelector" .)) }}
{{- end }}
{{- if .Values.migration.enabled }}
{{- /* the guided migration's controller (it acts only with rollback.mode=enforce) */}}
{{- $_ := set $derived "migrate" (dict "enabled" true "state_configmap" "kpr-exporter-migration") }}
{{- end }}
{{- toYaml (mergeOverwrite $derived (deepCopy .Values.config)) }}
{{- end }}
