"""The layout of the simulated cluster: nodes, pods, Services and which clients talk to
which Service how often, with the default three-node cluster every scenario uses (names and
addresses follow the reference example flows). Pure: frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from exporter.model import KUBE_PROXY


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod of the simulated cluster."""

    namespace: str
    name: str
    workload: str
    node: str
    ip: str
    identity: int
    endpoint_id: int
    app: str

    @property
    def labels(self) -> tuple[str, ...]:
        return (f"k8s:app={self.app}", f"k8s:io.kubernetes.pod.namespace={self.namespace}")


@dataclass(frozen=True, slots=True)
class Service:
    """A ClusterIP Service and the pods backing it."""

    namespace: str
    name: str
    cluster_ip: str
    port: int
    backends: tuple[str, ...]  # pod names (namespace of the Service)
    http: bool = False  # L7 visibility on (HTTP flows are emitted by the client-side proxy)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Target:
    """A client's traffic to one Service: new connections per second."""

    namespace: str
    service: str
    rate: float


@dataclass(frozen=True, slots=True)
class Client:
    """A pod that opens connections to Services."""

    namespace: str
    pod: str
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    datapath: str = KUBE_PROXY  # at scenario time 0


@dataclass(frozen=True, slots=True)
class Cluster:
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    services: tuple[Service, ...]
    clients: tuple[Client, ...]

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @property
    def namespaces(self) -> tuple[str, ...]:
        names = {p.namespace for p in self.pods} | {s.namespace for s in self.services}
        return tuple(sorted(names))

    def pod(self, namespace: str, name: str) -> Pod:
        for p in self.pods:
            if p.namespace == namespace and p.name == name:
                return p
        raise KeyError(f"{namespace}/{name}")

    def service(self, namespace: str, name: str) -> Service:
        for s in self.services:
            if s.namespace == namespace and s.name == name:
                return s
        raise KeyError(f"{namespace}/{name}")


# --- the default cluster (names and addresses follow reference/example-flows) ----

def _pod(ns: str, name: str, node: str, ip: str, identity: int, ep: int, app: str) -> Pod:
    return Pod(ns, name, name.rsplit("-", 1)[0], node, ip, identity, ep, app)


DEFAULT_CLUSTER: Final = Cluster(
    nodes=(Node("node-a"), Node("node-b"), Node("node-c")),
    pods=(
        _pod("shop", "web-a-5d9f", "node-a", "10.0.1.5", 30001, 101, "web"),
        _pod("shop", "web-b-7c2e", "node-b", "10.0.2.5", 30001, 201, "web"),
        _pod("shop", "web-c-3k8m", "node-c", "10.0.3.5", 30001, 301, "web"),
        _pod("shop", "cart-2-x1", "node-a", "10.0.1.22", 30002, 102, "cart"),
        _pod("shop", "cart-1-y9", "node-b", "10.0.2.21", 30002, 202, "cart"),
        _pod("shop", "catalog-1-q4", "node-c", "10.0.3.31", 30003, 302, "catalog"),
        _pod("shop", "catalog-2-w7", "node-a", "10.0.1.31", 30003, 103, "catalog"),
        _pod("payments", "checkout-a-8h2", "node-a", "10.0.1.40", 30011, 104, "checkout"),
        _pod("payments", "checkout-c-5n1", "node-c", "10.0.3.40", 30011, 303, "checkout"),
        _pod("payments", "payments-api-1-r2", "node-b", "10.0.2.41", 30010, 203, "payments-api"),
        _pod("payments", "payments-api-2-t6", "node-c", "10.0.3.41", 30010, 304, "payments-api"),
        _pod("platform", "auth-1-m3", "node-c", "10.0.3.51", 30020, 305, "auth"),
        _pod("platform", "auth-2-p8", "node-b", "10.0.2.51", 30020, 204, "auth"),
    ),
    services=(
        Service("shop", "cart", "10.96.10.10", 8080, ("cart-1-y9", "cart-2-x1"), http=True),
        Service("shop", "catalog", "10.96.10.30", 8080, ("catalog-1-q4", "catalog-2-w7")),
        Service("payments", "payments-api", "10.96.20.10", 8443,
                ("payments-api-1-r2", "payments-api-2-t6")),
        Service("platform", "auth", "10.96.30.10", 8080, ("auth-1-m3", "auth-2-p8")),
    ),
    clients=tuple(
        Client("shop", pod, (Target("shop", "cart", 3.0), Target("shop", "catalog", 2.0),
                             Target("platform", "auth", 1.0)))
        for pod in ("web-a-5d9f", "web-b-7c2e", "web-c-3k8m")
    ) + tuple(
        Client("payments", pod, (Target("payments", "payments-api", 2.0),
                                 Target("shop", "cart", 1.0), Target("platform", "auth", 1.0)))
        for pod in ("checkout-a-8h2", "checkout-c-5n1")
    ),
)
