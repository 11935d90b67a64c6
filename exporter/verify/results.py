"""The check vocabulary and the typed result of one check against one target (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CLUSTERIP_POD: Final = "clusterip-pod"
CLUSTERIP_HOST: Final = "clusterip-host"
NODEPORT_LOCAL: Final = "nodeport-local"
NODEPORT_REMOTE: Final = "nodeport-remote"
NODEPORT_LOOPBACK: Final = "nodeport-loopback"
LOADBALANCER: Final = "loadbalancer"
ETP_LOCAL_SOURCE_IP: Final = "etp-local-source-ip"
ETP_LOCAL_HEALTHCHECK: Final = "etp-local-healthcheck"
SESSION_AFFINITY: Final = "session-affinity"
NO_ENDPOINTS_REJECT: Final = "no-endpoints-reject"
HOSTPORT: Final = "hostport"
APISERVER_FROM_HOST: Final = "apiserver-from-host"
LONG_LIVED_CONNECTION: Final = "long-lived-connection"

#: The fixed vocabulary, in the order a probe runs it.
CHECKS: Final = (
    CLUSTERIP_POD, CLUSTERIP_HOST, NODEPORT_LOCAL, NODEPORT_REMOTE, NODEPORT_LOOPBACK,
    LOADBALANCER, ETP_LOCAL_SOURCE_IP, ETP_LOCAL_HEALTHCHECK, SESSION_AFFINITY,
    NO_ENDPOINTS_REJECT, HOSTPORT, APISERVER_FROM_HOST, LONG_LIVED_CONNECTION,
)

PASS: Final = "pass"
FAIL: Final = "fail"
ERROR: Final = "error"
#: ``pass``: observed what was expected. ``fail``: the datapath answered otherwise.
#: ``error``: the probe could not run the check (its own bind failed, a bug): no verdict.
RESULTS: Final = (PASS, FAIL, ERROR)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check from one node against one target.

    ``node`` and ``datapath`` are the probing node's; ``target`` names the node whose
    address was probed ("" for a cluster-wide address such as a ClusterIP) and
    ``target_datapath`` that node's datapath.
    ``connect_seconds`` is the TCP handshake time, None when no handshake completed.
    """

    check: str
    node: str
    datapath: str
    target: str
    address: str
    result: str
    expected: str
    observed: str
    connect_seconds: float | None = None
    target_datapath: str = ""

    @property
    def failed(self) -> bool:
        return self.result == FAIL

    @property
    def served_by(self) -> tuple[str, str]:
        """The node whose datapath handled the path, and its datapath: the target node for
        a check aimed at a node (NodePort, hostPort, eTP=Local), else the probing node
        (ClusterIP, load balancer and API server are translated where the client is)."""
        if self.target:
            return self.target, self.target_datapath or self.datapath
        return self.node, self.datapath

    def describe(self) -> str:
        """The log line of a failure: address, expected and observed outcome."""
        where = f" (node {self.target})" if self.target else ""
        return (f"{self.check} from {self.node} [{self.datapath}] to {self.address}{where}: "
                f"{self.result}: expected {self.expected}, observed {self.observed}")
