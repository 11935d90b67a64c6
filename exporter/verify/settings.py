"""Settings of ``kpr-exporter echo`` (section ``echo``) and ``probe`` (section ``probe``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import at_least, capped, listen_address, positive

#: Hard caps of the load option and the programming chase (validation rejects more): a
#: measurement, not a stress test.
LOAD_MAX_CONNECTIONS_PER_SECOND = 50.0
LOAD_MAX_BYTES_PER_SECOND = 4 * 1024 * 1024
LOAD_MAX_SECONDS = 20.0
PROGRAMMING_MAX_POLLS_PER_SECOND = 50.0
PROGRAMMING_MAX_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class EchoSettings:
    listen_address: str = field(
        default=":8080",
        metadata={"help": "Address the echo answers on, TCP and HTTP on one port ([host]:port).",
                  "check": listen_address()},
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
                          "([host]:port).", "check": listen_address()},
    )
    interval_seconds: float = field(
        default=30.0, metadata={"help": "Time between the starts of two rounds.",
                                "check": positive()},
    )
    sample_size: int = field(
        default=3,
        metadata={"help": "Other nodes checked per round besides the probe's own (k); every "
                          "node is covered in ceil((nodes - 1) / k) rounds.",
                  "check": at_least(1)},
    )
    timeout_seconds: float = field(
        default=2.0, metadata={"help": "Longest wait for a handshake or an answer.",
                               "check": positive()},
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

    load_enabled: bool = field(
        default=False,
        metadata={"help": "After each round, open and close connections to the echo's "
                          "ClusterIP at load_connections_per_second and stream "
                          "load_bytes_per_second to it, each for load_seconds "
                          "(docs/verification.md). Off by default."},
    )
    load_connections_per_second: float = field(
        default=5.0,
        metadata={"help": "Connections per second of the load option (0: none; at most "
                          f"{LOAD_MAX_CONNECTIONS_PER_SECOND:g}).",
                  "check": capped(LOAD_MAX_CONNECTIONS_PER_SECOND, zero=True)},
    )
    load_bytes_per_second: int = field(
        default=256 * 1024,
        metadata={"help": "Payload bytes per second the load option streams (0: no stream; "
                          f"at most {LOAD_MAX_BYTES_PER_SECOND}).",
                  "check": capped(LOAD_MAX_BYTES_PER_SECOND, zero=True)},
    )
    load_seconds: float = field(
        default=5.0,
        metadata={"help": "Length of each of the load option's two phases (at most "
                          f"{LOAD_MAX_SECONDS:g}s, and both together at most half the "
                          "interval).", "check": capped(LOAD_MAX_SECONDS)},
    )
    programming_service: str = field(
        default="",
        metadata={"help": "namespace/name of the echo Service whose EndpointSlices the probe "
                          "watches to measure programming latency: each new ready endpoint is "
                          "chased through the ClusterIP until it answers (empty: off)."},
    )
    programming_polls_per_second: float = field(
        default=10.0,
        metadata={"help": "Connections per second to the ClusterIP while a new endpoint is "
                          f"chased (at most {PROGRAMMING_MAX_POLLS_PER_SECOND:g}).",
                  "check": capped(PROGRAMMING_MAX_POLLS_PER_SECOND)},
    )
    programming_timeout_seconds: float = field(
        default=30.0,
        metadata={"help": "Longest chase of a new endpoint; one not reached by then counts "
                          "in kpr_probe_programming_missed_total (at most "
                          f"{PROGRAMMING_MAX_TIMEOUT_SECONDS:g}s).",
                  "check": capped(PROGRAMMING_MAX_TIMEOUT_SECONDS)},
    )

    def load_problems(self) -> list[str]:
        """The rules spanning several of the load option's and the chase's fields (each
        value's own cap is its field's constraint)."""
        found = []
        if self.load_enabled and 2 * self.load_seconds > self.interval_seconds / 2:
            found.append(f"probe.load_seconds {self.load_seconds:g}: its two phases take "
                         f"{2 * self.load_seconds:g}s, more than half the "
                         f"{self.interval_seconds:g}s interval")
        namespace, sep, name = self.programming_service.partition("/")
        if self.programming_service and not (sep and namespace and name and "/" not in name):
            found.append(f"probe.programming_service {self.programming_service!r} is not "
                         "namespace/name")
        return found

    def problems(self) -> list[str]:
        from exporter.kube.settings import is_label_selector
        from exporter.verify.results import CHECKS

        found = []
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown:
            found.append(f"probe.checks: unknown check(s) {', '.join(unknown)}; "
                         f"known: {', '.join(CHECKS)}")
        selector = self.extra_service_selector
        if selector and not is_label_selector(selector):
            found.append(f"probe.extra_service_selector {selector!r} is not a label selector")
        if self.extra_service_namespace and not selector:
            found.append("probe.extra_service_namespace needs probe.extra_service_selector")
        return found + self.load_problems()

    def missing(self) -> list[str]:
        """What the probe command needs beyond valid values."""
        return [f"--probe.{name.replace('_', '-')} is required"
                for name in ("node_name", "targets_file") if not getattr(self, name)]
