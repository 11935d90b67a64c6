"""Settings of the rollback executor, backup and preflight (section ``rollback``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.cilium import MIGRATION_LABEL
from exporter.config_constraints import at_least, non_negative, not_empty, port, positive
from exporter.rollback.roles import MODES


def _valid_selector(text: str) -> bool:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return bool(parts) and all("=" in p and p.split("=", 1)[0].strip() for p in parts)


@dataclass(frozen=True)
class CiliumObjects:
    """Where Cilium lives."""

    namespace: str = field(default="kube-system", metadata={
        "help": "Namespace of the Cilium agents, cilium-config and CiliumNodeConfigs.",
        "check": not_empty()})
    configmap: str = field(default="cilium-config", metadata={
        "help": "Cilium's main ConfigMap.", "check": not_empty()})
    daemonset: str = field(default="cilium", metadata={
        "help": "The Cilium agent DaemonSet.", "check": not_empty()})
    agent_selector: str = field(
        default="k8s-app=cilium", metadata={"help": "Label selector of the agent pods (name=value, comma list)."}
    )
    helm_release: str = field(
        default="cilium",
        metadata={"help": "Helm release name of Cilium (its revision is recorded from the "
                          "sh.helm.release.v1.<name>.v<N> Secrets)."},
    )

    def problems(self) -> list[str]:
        if not _valid_selector(self.agent_selector):
            return [f"rollback.cilium.agent_selector {self.agent_selector!r} is not name=value[,...]"]
        return []


@dataclass(frozen=True)
class KubeProxyObjects:
    """Where kube-proxy lives, and the per-node migration label."""

    namespace: str = field(default="kube-system", metadata={
        "help": "Namespace of kube-proxy.", "check": not_empty()})
    daemonset: str = field(default="kube-proxy", metadata={
        "help": "The kube-proxy DaemonSet.", "check": not_empty()})
    configmap: str = field(default="kube-proxy", metadata={
        "help": "The kube-proxy ConfigMap.", "check": not_empty()})
    pod_selector: str = field(
        default="k8s-app=kube-proxy", metadata={"help": "Label selector of the kube-proxy pods."}
    )
    migration_label: str = field(
        default=MIGRATION_LABEL,
        metadata={"help": "Node label of Cilium's per-node KPR migration procedure.",
                  "check": not_empty()},
    )

    def problems(self) -> list[str]:
        if not _valid_selector(self.pod_selector):
            return [f"rollback.kube_proxy.pod_selector {self.pod_selector!r} is not name=value[,...]"]
        return []


@dataclass(frozen=True)
class RollbackTimeouts:
    """How long each verified step may take before the rollback stops and reports."""

    kube_proxy_ready_seconds: float = field(
        default=300.0, metadata={"help": "Wait for kube-proxy pods to be ready on the affected nodes.",
                                 "check": positive()}
    )
    config_seconds: float = field(
        default=60.0, metadata={"help": "Apply and verify the KPR-off configuration.",
                                "check": positive()}
    )
    agent_ready_seconds: float = field(
        default=300.0, metadata={"help": "Per node: wait for the restarted Cilium agent to be ready.",
                                 "check": positive()}
    )
    poll_interval_seconds: float = field(
        default=2.0, metadata={"help": "Pause between checks while waiting.", "check": positive()}
    )


@dataclass(frozen=True)
class DatapathProof:
    """Proving each restored node on its datapath, not only in configuration."""

    enabled: bool = field(
        default=True, metadata={"help": "After the agent restart, require kube-proxy's health "
                                        "endpoint fresh and the agent's KPR gauge off on each node."})
    kube_proxy_health_port: int = field(
        default=10256, metadata={"help": "kube-proxy's health port on the node (/healthz).",
                                 "check": port()})
    agent_metrics_port: int = field(
        default=9962, metadata={"help": "The Cilium agent's metrics port (its feature gauge).",
                                "check": port()})
    max_age_seconds: float = field(
        default=60.0, metadata={"help": "kube-proxy's last rule sync may be at most this old.",
                                "check": positive()})
    timeout_seconds: float = field(
        default=300.0, metadata={"help": "Per node: how long the proof may take before the "
                                         "rollback stops.", "check": positive()})


@dataclass(frozen=True)
class RollbackSettings:
    """Guards and targets of the rollback; dry-run unless told otherwise."""

    mode: str = field(
        default="dry-run",
        metadata={"help": "dry-run logs and exports the plan and changes nothing; enforce acts.",
                  "flag": "--rollback.mode", "choices": MODES},
    )
    cooldown_seconds: float = field(
        default=3600.0, metadata={"help": "Minimum time between two rollbacks.",
                                  "check": non_negative()}
    )
    max_per_window: int = field(default=2, metadata={
        "help": "At most this many rollbacks per window.",
        "check": at_least(1, "use kill_switch to stop rollbacks")})
    window_seconds: float = field(default=86400.0, metadata={
        "help": "Length of that window.", "check": positive()})
    kill_switch: bool = field(default=False, metadata={"help": "Refuse every rollback (webhook)."})
    kill_switch_file: str = field(
        default="",
        metadata={"help": "Refuse rollbacks while this file exists (mount it from a ConfigMap "
                          "to flip the switch without a restart)."},
    )
    namespace: str = field(
        default="kube-system",
        metadata={"help": "Namespace of the exporter's own objects: backup and state ConfigMaps, "
                          "Lease, Events.", "check": not_empty()},
    )
    state_configmap: str = field(
        default="kpr-exporter-rollback",
        metadata={"help": "ConfigMap whose annotation keeps rollback progress (resume after restart).",
                  "check": not_empty()},
    )
    backup_configmap: str = field(
        default="kpr-exporter-backup", metadata={"help": "ConfigMap holding the pre-switch backup.",
                                                 "check": not_empty()}
    )
    backup_file: str = field(
        default="", metadata={"help": "Use this file for the backup instead of the ConfigMap."}
    )
    lease_name: str = field(
        default="kpr-exporter-rollback",
        metadata={"help": "coordination.k8s.io Lease that keeps replicas from rolling back at once.",
                  "check": not_empty()},
    )
    lease_seconds: int = field(default=60, metadata={
        "help": "Lease duration; renewed while running.", "check": at_least(5)})
    identity: str = field(
        default="", metadata={"help": "Lease holder identity (default: the host name, i.e. the pod)."}
    )
    argocd_namespace: str = field(
        default="argocd",
        metadata={"help": "Namespace of Argo CD Applications whose tracking label does not name it."})
    cilium: CiliumObjects = field(default_factory=CiliumObjects)
    kube_proxy: KubeProxyObjects = field(default_factory=KubeProxyObjects)
    timeouts: RollbackTimeouts = field(default_factory=RollbackTimeouts)
    proof: DatapathProof = field(default_factory=DatapathProof)
