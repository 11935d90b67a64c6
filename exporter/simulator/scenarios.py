"""Scenarios of the simulated Cilium cluster, as data.

A ``Scenario`` says what the cluster looks like (nodes, pods, Services, which
clients talk to which Service and how often), how each datapath behaves
(handshake latency, refused / timed-out / dropped attempts, HTTP latency and
codes), when each node switches datapath (and back), when Hubble Relay is
unreachable and when events are lost. It also states what the SLIs should show
per datapath (``expected``) and how a judge should rule (``outcomes``), so
end-to-end tests compare against the scenario instead of magic numbers.

Pure module: frozen dataclasses and the named catalogue ``SCENARIOS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Final

from exporter.model import EBPF, KUBE_PROXY

#: z-score of the 99th percentile of the standard normal distribution.
_Z99: Final = 2.3263478740408408

#: Worst case any sampled latency is clamped to (keeps a connection inside a few seconds).
MAX_LATENCY_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Latency:
    """A log-normal latency distribution given by its median and 99th percentile (seconds)."""

    median_s: float
    p99_s: float

    @property
    def mu(self) -> float:
        return math.log(self.median_s)

    @property
    def sigma(self) -> float:
        return math.log(self.p99_s / self.median_s) / _Z99

    def scaled(self, factor: float) -> Latency:
        return Latency(self.median_s * factor, self.p99_s * factor)


@dataclass(frozen=True, slots=True)
class HttpProfile:
    """L7 HTTP behaviour of a Service: response latency and the mix of status codes."""

    latency: Latency
    codes: tuple[tuple[int, float], ...] = ((200, 0.97), (404, 0.02), (503, 0.01))
    method: str = "GET"
    path: str = "/"

    @property
    def error_ratio(self) -> float:
        """Share of 5xx responses."""
        total = sum(w for _, w in self.codes)
        return sum(w for c, w in self.codes if c >= 500) / total


@dataclass(frozen=True, slots=True)
class DatapathProfile:
    """How connections behave when the client's node runs one datapath.

    Ratios are per connection attempt. ``drops`` maps a Hubble ``DropReason``
    number to the share of attempts whose SYN is dropped on the client's node
    for that reason. ``service_cpu_cores`` is the CPU (seconds per second) of the
    process serving Services on such a node: kube-proxy for the kube-proxy profile, the
    whole Cilium agent for an eBPF one. ``programming`` is how long a Service or
    endpoint change takes to reach that datapath.
    """

    connect: Latency
    refused_ratio: float = 0.002
    timeout_ratio: float = 0.001
    drops: tuple[tuple[int, float], ...] = ((133, 0.002),)
    http: HttpProfile = HttpProfile(Latency(0.004, 0.020))
    service_cpu_cores: float = 0.05
    programming: Latency = Latency(1.2, 4.0)

    @property
    def drop_ratio(self) -> float:
        return sum(p for _, p in self.drops)

    def expected(self, datapath: str) -> ExpectedSli:
        """The SLI values this profile produces in the long run."""
        passed = 1.0 - self.drop_ratio
        return ExpectedSli(
            datapath=datapath,
            connect_median_s=self.connect.median_s,
            connect_p99_s=self.connect.p99_s,
            refused_ratio=passed * self.refused_ratio,
            timeout_ratio=passed * self.timeout_ratio,
            drop_ratios=self.drops,
            http_median_s=self.http.latency.median_s,
            http_error_ratio=self.http.error_ratio,
        )


@dataclass(frozen=True, slots=True)
class ExpectedSli:
    """What the SLIs of one datapath should converge to (ratios are per attempt)."""

    datapath: str
    connect_median_s: float
    connect_p99_s: float
    refused_ratio: float
    timeout_ratio: float
    drop_ratios: tuple[tuple[int, float], ...]
    http_median_s: float
    http_error_ratio: float

    def drop_ratio(self, reason: int) -> float:
        return sum(p for r, p in self.drop_ratios if r == reason)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a judge should rule on one SLI for one comparison once enough time has passed.

    ``verdict`` is ``better``, ``same``, ``worse`` or ``inconclusive``;
    ``comparison`` is ``canary-vs-control`` or ``after-vs-baseline``.
    """

    sli: str
    comparison: str
    verdict: str


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


@dataclass(frozen=True, slots=True)
class Switch:
    """Node ``node`` runs ``datapath`` from scenario second ``at_s`` on."""

    node: str
    at_s: float
    datapath: str


@dataclass(frozen=True, slots=True)
class Outage:
    """Hubble Relay is unreachable in ``[start_s, end_s)``: streams break, new ones are refused."""

    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class LostBurst:
    """At ``at_s``, ``node`` reports ``count`` lost events (source 3 = HUBBLE_RING_BUFFER)."""

    at_s: float
    node: str
    count: int
    source: int = 3


@dataclass(frozen=True, slots=True)
class ServiceProfile:
    """Overrides the behaviour of one Service on one datapath."""

    namespace: str
    service: str
    datapath: str
    profile: DatapathProfile


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything the simulator needs to know, and what the SLIs should show."""

    name: str
    description: str
    cluster: Cluster
    kube_proxy: DatapathProfile
    ebpf: DatapathProfile
    switches: tuple[Switch, ...] = ()
    service_profiles: tuple[ServiceProfile, ...] = ()
    outages: tuple[Outage, ...] = ()
    lost: tuple[LostBurst, ...] = ()
    rate_scale: float = 1.0  # multiplies every Target.rate
    duration_s: float = 1200.0  # how long the story takes; traffic goes on afterwards
    outcomes: tuple[Outcome, ...] = ()
    expected: tuple[ExpectedSli, ...] = field(default=())

    def profile(self, datapath: str, namespace: str = "", service: str = "") -> DatapathProfile:
        for sp in self.service_profiles:
            if sp.datapath == datapath and sp.namespace == namespace and sp.service == service:
                return sp.profile
        return self.ebpf if datapath == EBPF else self.kube_proxy

    def datapath_at(self, node: str, at_s: float) -> str:
        """The datapath ``node`` runs at scenario second ``at_s``."""
        mode = next((n.datapath for n in self.cluster.nodes if n.name == node), KUBE_PROXY)
        for sw in sorted(self.switches, key=lambda s: s.at_s):
            if sw.node == node and sw.at_s <= at_s:
                mode = sw.datapath
        return mode

    def outage_at(self, at_s: float) -> Outage | None:
        for o in self.outages:
            if o.start_s <= at_s < o.end_s:
                return o
        return None

    def expectation(self, datapath: str) -> ExpectedSli:
        for e in self.expected:
            if e.datapath == datapath:
                return e
        raise KeyError(datapath)


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

#: Today's kube-proxy (iptables) behaviour: the reference every scenario starts from.
KUBE_PROXY_PROFILE: Final = DatapathProfile(connect=Latency(0.0008, 0.004))
#: eBPF socket-LB as hoped: about 30 % faster handshakes, same error rates, an agent
#: using less CPU than kube-proxy did, Services programmed in milliseconds.
EBPF_IMPROVED: Final = DatapathProfile(connect=Latency(0.00055, 0.0028), service_cpu_cores=0.035,
                                       programming=Latency(0.004, 0.02))
#: eBPF going wrong: slower handshakes and KPR-sensitive drops, a busier agent, slow
#: Service programming.
EBPF_REGRESSED: Final = DatapathProfile(
    connect=Latency(0.0016, 0.012),
    drops=((133, 0.002), (158, 0.010), (155, 0.003)),
    service_cpu_cores=0.09, programming=Latency(2.0, 8.0),
)
#: eBPF with an LB map out of sync: "Service backend not found" rises, latency unchanged.
EBPF_BACKEND_NOT_FOUND: Final = DatapathProfile(
    connect=Latency(0.0008, 0.004),
    drops=((133, 0.002), (158, 0.03)),
)

CANARY_NODE: Final = "node-b"
CANARY_AT_S: Final = 300.0


def _scenario(name: str, description: str, *, ebpf: DatapathProfile = EBPF_IMPROVED,
              **kwargs: object) -> Scenario:
    base = Scenario(name=name, description=description, cluster=DEFAULT_CLUSTER,
                    kube_proxy=KUBE_PROXY_PROFILE, ebpf=ebpf)
    scenario = replace(base, **kwargs)  # type: ignore[arg-type]
    return replace(scenario, expected=(scenario.kube_proxy.expected(KUBE_PROXY),
                                       scenario.ebpf.expected(EBPF)))


def _canary(at_s: float = CANARY_AT_S) -> tuple[Switch, ...]:
    return (Switch(CANARY_NODE, at_s, EBPF),)


def _both(sli: str, verdict: str) -> tuple[Outcome, ...]:
    return (Outcome(sli, "canary-vs-control", verdict), Outcome(sli, "after-vs-baseline", verdict))


_ALL_SCENARIOS: Final = (
    _scenario(
        "baseline", "All nodes on kube-proxy; steady traffic, nothing changes.",
        outcomes=(Outcome("connect_duration", "canary-vs-control", "inconclusive"),),
    ),
    _scenario(
        "canary-improvement",
        f"{CANARY_NODE} switches to eBPF at {CANARY_AT_S:.0f}s; its handshakes get ~30 % faster.",
        switches=_canary(),
        outcomes=_both("connect_duration", "better") + _both("drops", "same"),
    ),
    _scenario(
        "canary-regression",
        f"{CANARY_NODE} switches to eBPF at {CANARY_AT_S:.0f}s; its handshakes get slower and "
        "KPR-sensitive drops (Service backend not found, CT map insertion failed) appear.",
        ebpf=EBPF_REGRESSED, switches=_canary(),
        outcomes=_both("connect_duration", "worse") + _both("drops", "worse"),
    ),
    _scenario(
        "full-improvement",
        "Every node switches to eBPF, one after another (300s, 600s, 900s); faster handshakes.",
        switches=(Switch("node-a", 300.0, EBPF), Switch("node-b", 600.0, EBPF),
                  Switch("node-c", 900.0, EBPF)),
        outcomes=(Outcome("connect_duration", "after-vs-baseline", "better"),
                  Outcome("drops", "after-vs-baseline", "same")),
    ),
    _scenario(
        "drop-regression",
        f"{CANARY_NODE} switches to eBPF at {CANARY_AT_S:.0f}s; "
        "'Service backend not found' drops rise, latency unchanged.",
        ebpf=EBPF_BACKEND_NOT_FOUND, switches=_canary(),
        outcomes=_both("drops", "worse") + _both("connect_duration", "same"),
    ),
    _scenario(
        "relay-outage",
        "All kube-proxy; Hubble Relay is unreachable 60-90s and 300-320s, "
        "and a slow reader loses events after each outage.",
        outages=(Outage(60.0, 90.0), Outage(300.0, 320.0)),
        lost=(LostBurst(90.5, "node-a", 120), LostBurst(320.5, "node-c", 40)),
        outcomes=(Outcome("connect_duration", "canary-vs-control", "inconclusive"),),
    ),
    _scenario(
        "low-traffic",
        f"{CANARY_NODE} switches to eBPF at {CANARY_AT_S:.0f}s, but there is too little "
        "traffic (a connection every few minutes per client) to judge anything.",
        switches=_canary(), rate_scale=0.002,
        outcomes=_both("connect_duration", "inconclusive") + _both("drops", "inconclusive"),
    ),
    _scenario(
        "canary-rollback",
        f"{CANARY_NODE} switches to eBPF at {CANARY_AT_S:.0f}s with a regression and is "
        "rolled back to kube-proxy at 900s.",
        ebpf=EBPF_REGRESSED,
        switches=_canary() + (Switch(CANARY_NODE, 900.0, KUBE_PROXY),),
        outcomes=_both("connect_duration", "worse") + _both("drops", "worse"),
    ),
)

#: Every known scenario by name.
SCENARIOS: Final[dict[str, Scenario]] = {s.name: s for s in _ALL_SCENARIOS}
SCENARIO_NAMES: Final = tuple(SCENARIOS)


class UnknownScenario(KeyError):
    """No scenario has that name."""


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIO_NAMES)
        raise UnknownScenario(f"unknown scenario {name!r}; known: {known}") from None
