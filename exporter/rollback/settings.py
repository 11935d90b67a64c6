"""Settings of the rollback executor, backup and preflight (section ``rollback``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.rollback.api import MODES


def _valid_selector(text: str) -> bool:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return bool(parts) and all("=" in p and p.split("=", 1)[0].strip() for p in parts)


@dataclass(frozen=True)
class CiliumObjects:
    """Where Cilium lives."""

    namespace: str = field(default="kube-system", metadata={"help": "Namespace of the Cilium agents, cilium-config and CiliumNodeConfigs."})
    configmap: str = field(default="cilium-config", metadata={"help": "Cilium's main ConfigMap."})
    daemonset: str = field(default="cilium", metadata={"help": "The Cilium agent DaemonSet."})
    agent_selector: str = field(
        default="k8s-app=cilium", metadata={"help": "Label selector of the agent pods (name=value, comma list)."}
    )
    helm_release: str = field(
        default="cilium",
        metadata={"help": "Helm release name of Cilium (its revision is recorded from the "
                          "sh.helm.release.v1.<name>.v<N> Secrets)."},
    )

    def problems(self) -> list[str]:
        found = [f"rollback.cilium.{n} must not be empty"
                 for n in ("namespace", "configmap", "daemonset") if not getattr(self, n)]
        if not _valid_selector(self.agent_selector):
            found.append(f"rollback.cilium.agent_selector {self.agent_selector!r} is not name=value[,...]")
        return found


@dataclass(frozen=True)
class KubeProxyObjects:
    """Where kube-proxy lives, and the per-node migration label."""

    namespace: str = field(default="kube-system", metadata={"help": "Namespace of kube-proxy."})
    daemonset: str = field(default="kube-proxy", metadata={"help": "The kube-proxy DaemonSet."})
    configmap: str = field(default="kube-proxy", metadata={"help": "The kube-proxy ConfigMap."})
    pod_selector: str = field(
        default="k8s-app=kube-proxy", metadata={"help": "Label selector of the kube-proxy pods."}
    )
    migration_label: str = field(
        default="io.cilium.migration/kube-proxy-replacement",
        metadata={"help": "Node label of Cilium's per-node KPR migration procedure."},
    )

    def problems(self) -> list[str]:
        found = [f"rollback.kube_proxy.{n} must not be empty"
                 for n in ("namespace", "daemonset", "configmap", "migration_label") if not getattr(self, n)]
        if not _valid_selector(self.pod_selector):
            found.append(f"rollback.kube_proxy.pod_selector {self.pod_selector!r} is not name=value[,...]")
        return found


@dataclass(frozen=True)
class RollbackTimeouts:
    """How long each verified step may take before the rollback stops and reports."""

    kube_proxy_ready_seconds: float = field(
        default=300.0, metadata={"help": "Wait for kube-proxy pods to be ready on the affected nodes."}
    )
    config_seconds: float = field(
        default=60.0, metadata={"help": "Apply and verify the KPR-off configuration."}
    )
    agent_ready_seconds: float = field(
        default=300.0, metadata={"help": "Per node: wait for the restarted Cilium agent to be ready."}
    )
    poll_interval_seconds: float = field(
        default=2.0, metadata={"help": "Pause between checks while waiting."}
    )

    def problems(self) -> list[str]:
        return [f"rollback.timeouts.{n} must be positive"
                for n in ("kube_proxy_ready_seconds", "config_seconds", "agent_ready_seconds",
                          "poll_interval_seconds") if getattr(self, n) <= 0]


@dataclass(frozen=True)
class DatapathProof:
    """Proving each restored node on its datapath, not only in configuration."""

    enabled: bool = field(
        default=True, metadata={"help": "After the agent restart, require kube-proxy's health "
                                        "endpoint fresh and the agent's KPR gauge off on each node."})
    kube_proxy_health_port: int = field(
        default=10256, metadata={"help": "kube-proxy's health port on the node (/healthz)."})
    agent_metrics_port: int = field(
        default=9962, metadata={"help": "The Cilium agent's metrics port (its feature gauge)."})
    max_age_seconds: float = field(
        default=60.0, metadata={"help": "kube-proxy's last rule sync may be at most this old."})
    timeout_seconds: float = field(
        default=300.0, metadata={"help": "Per node: how long the proof may take before the "
                                         "rollback stops."})

    def problems(self) -> list[str]:
        found = [f"rollback.proof.{n} must be between 1 and 65535"
                 for n in ("kube_proxy_health_port", "agent_metrics_port")
                 if not 0 < getattr(self, n) < 65536]
        return found + [f"rollback.proof.{n} must be positive"
                        for n in ("max_age_seconds", "timeout_seconds") if getattr(self, n) <= 0]


@dataclass(frozen=True)
class RollbackSettings:
    """Guards and targets of the rollback; dry-run unless told otherwise."""

    mode: str = field(
        default="dry-run",
        metadata={"help": "dry-run logs and exports the plan and changes nothing; enforce acts.",
                  "flag": "--rollback.mode", "choices": MODES},
    )
    cooldown_seconds: float = field(
        default=3600.0, metadata={"help": "Minimum time between two rollbacks."}
    )
    max_per_window: int = field(default=2, metadata={"help": "At most this many rollbacks per window."})
    window_seconds: float = field(default=86400.0, metadata={"help": "Length of that window."})
    kill_switch: bool = field(default=False, metadata={"help": "Refuse every rollback (webhook)."})
    kill_switch_file: str = field(
        default="",
        metadata={"help": "Refuse rollbacks while this file exists (mount it from a ConfigMap "
                          "to flip the switch without a restart)."},
    )
    namespace: str = field(
        default="kube-system",
        metadata={"help": "Namespace of the exporter's own objects: backup and state ConfigMaps, "
                          "Lease, Events."},
    )
    state_configmap: str = field(
        default="kpr-exporter-rollback",
        metadata={"help": "ConfigMap whose annotation keeps rollback progress (resume after restart)."},
    )
    backup_configmap: str = field(
        default="kpr-exporter-backup", metadata={"help": "ConfigMap holding the pre-switch backup."}
    )
    backup_file: str = field(
        default="", metadata={"help": "Use this file for the backup instead of the ConfigMap."}
    )
    lease_name: str = field(
        default="kpr-exporter-rollback",
        metadata={"help": "coordination.k8s.io Lease that keeps replicas from rolling back at once."},
    )
    lease_seconds: int = field(default=60, metadata={"help": "Lease duration; renewed while running."})
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

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.mode not in MODES:
            found.append(f"rollback.mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.cooldown_seconds < 0:
            found.append("rollback.cooldown_seconds must not be negative")
        if self.max_per_window < 1:
            found.append("rollback.max_per_window must be at least 1 (use kill_switch to stop rollbacks)")
        if self.window_seconds <= 0:
            found.append("rollback.window_seconds must be positive")
        if self.lease_seconds < 5:
            found.append("rollback.lease_seconds must be at least 5")
        for name in ("namespace", "state_configmap", "backup_configmap", "lease_name"):
            if not getattr(self, name):
                found.append(f"rollback.{name} must not be empty")
        return found
