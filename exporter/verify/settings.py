"""Settings of ``kpr-exporter echo`` (section ``echo``) and ``probe`` (section ``probe``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EchoSettings:
    listen_address: str = field(
        default=":8080",
        metadata={"help": "Address the echo answers on, TCP and HTTP on one port ([host]:port)."},
    )
    pod_name: str = field(
        default="",
        metadata={"help": "Pod name the echo reports (empty: the host name, which in a pod is "
                          "the pod's name; set it from the downward API)."},
    )
    node_name: str = field(
        default="",
        metadata={"help": "Node name the echo reports (set it from the downward API, "
                          "spec.nodeName)."},
    )

    def problems(self) -> list[str]:
        host, sep, port = self.listen_address.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            return [f"echo.listen_address {self.listen_address!r} is not [host]:port"]
        return []


@dataclass(frozen=True)
class ProbeSettings:
    """Settings of ``kpr-exporter probe`` (section ``probe``)."""

    node_name: str = field(
        default="",
        metadata={"help": "The node this probe runs on, as named in the target file (set it "
                          "from the downward API, spec.nodeName). Required by the probe."},
    )
    targets_file: str = field(
        default="",
        metadata={"help": "YAML or JSON file listing the verification Services and the "
                          "nodes (docs/verification.md); re-read every round. Required by "
                          "the probe."},
    )
    listen_address: str = field(
        default=":9978",
        metadata={"help": "Address of the probe's /metrics, /healthz and /readyz "
                          "([host]:port)."},
    )
    interval_seconds: float = field(
        default=30.0, metadata={"help": "Time between the starts of two rounds."},
    )
    sample_size: int = field(
        default=3,
        metadata={"help": "Other nodes checked per round besides the probe's own (k); every "
                          "node is covered in ceil((nodes - 1) / k) rounds."},
    )
    timeout_seconds: float = field(
        default=2.0, metadata={"help": "Longest wait for a handshake or an answer."},
    )
    host_address: str = field(
        default="",
        metadata={"help": "Source address of the host-network checks (empty: the kernel "
                          "picks; with host networking, the node's address)."},
    )
    pod_address: str = field(
        default="",
        metadata={"help": "Source address of the pod-network checks (empty: the kernel "
                          "picks; in the pod network, the pod's address)."},
    )
    checks: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Comma list of the checks this probe runs (empty: every check). "
                          "The pod-network and the host-network DaemonSets split them."},
    )

    extra_service_selector: str = field(
        default="",
        metadata={"help": "Label selector of your own Services to add to the clusterip-pod "
                          "and clusterip-host checks (a handshake with each ClusterIP and TCP "
                          "port), listed from the Kubernetes API every round (empty: off)."},
    )
    extra_service_namespace: str = field(
        default="",
        metadata={"help": "Only list those Services in this namespace (empty: all "
                          "namespaces)."},
    )
    kubeconfig: str = field(
        default="",
        metadata={"help": "Kubeconfig of the Service listing (empty: the in-cluster service "
                          "account, else $KUBECONFIG or ~/.kube/config)."},
    )

    def problems(self) -> list[str]:
        from exporter.kube.settings import is_label_selector
        from exporter.verify.results import CHECKS

        found = []
        host, sep, port = self.listen_address.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            found.append(f"probe.listen_address {self.listen_address!r} is not [host]:port")
        if self.interval_seconds <= 0:
            found.append("probe.interval_seconds must be above 0")
        if self.timeout_seconds <= 0:
            found.append("probe.timeout_seconds must be above 0")
        if self.sample_size < 1:
            found.append(f"probe.sample_size must be at least 1, got {self.sample_size}")
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown:
            found.append(f"probe.checks: unknown check(s) {', '.join(unknown)}; "
                         f"known: {', '.join(CHECKS)}")
        selector = self.extra_service_selector
        if selector and not is_label_selector(selector):
            found.append(f"probe.extra_service_selector {selector!r} is not a label selector")
        if self.extra_service_namespace and not selector:
            found.append("probe.extra_service_namespace needs probe.extra_service_selector")
        return found

    def missing(self) -> list[str]:
        """What the probe command needs beyond valid values."""
        return [f"--probe.{name.replace('_', '-')} is required"
                for name in ("node_name", "targets_file") if not getattr(self, name)]
