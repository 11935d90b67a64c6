"""What the probes aim at: the verification Services and the nodes (pure data).

Addresses are as a client sees them: ClusterIPs and load-balancer addresses are
virtual, node addresses are real. ``Endpoint`` is ``(host, port)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Endpoint = tuple[str, int]


def show(endpoint: Endpoint) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """One node as the probes see it.

    ``addresses``: every address its NodePorts must answer on (each family).
    ``etp_local_endpoints``: ready endpoints of the ``externalTrafficPolicy: Local``
    Service on this node, what its health check must report.
    ``hostport``: whether a pod with the verification hostPort runs there.
    """

    name: str
    datapath: str
    addresses: tuple[str, ...]
    etp_local_endpoints: int = 0
    hostport: bool = False


@dataclass(frozen=True, slots=True)
class ExtraService:
    """A user's Service added to the ClusterIP checks by label (``--probe.extra-service-
    selector``): ``name`` is ``namespace/name``, ``endpoint`` one ClusterIP and TCP port."""

    name: str
    endpoint: Endpoint

    def describe(self) -> str:
        return f"{show(self.endpoint)} (Service {self.name})"


@dataclass(frozen=True, slots=True)
class Targets:
    """The verification Services: ports and virtual addresses shared by all nodes.

    ``loadbalancer`` is None when the cluster assigns no load-balancer addresses;
    ``loopback`` is the address node-local clients use for NodePorts; ``extra`` the
    user's Services the ClusterIP checks reach besides the echo's (never in the file).
    """

    cluster_ip: Endpoint
    node_port: int
    loadbalancer: Endpoint | None
    etp_local_node_port: int
    health_check_node_port: int
    affinity: Endpoint
    no_endpoints: Endpoint
    apiserver: Endpoint
    hostport: int
    nodes: Mapping[str, NodeTarget] = field(default_factory=dict)
    loopback: str = "127.0.0.1"
    extra: tuple[ExtraService, ...] = ()

    def node(self, name: str) -> NodeTarget:
        return self.nodes[name]
