"""Scenarios of the simulated Cilium cluster, as data.

A ``Scenario`` says what the cluster looks like (nodes, pods, Services, which
clients talk to which Service and how often), how each datapath behaves
(handshake latency, refused / timed-out / dropped attempts, HTTP latency and
codes), when each node switches datapath (and back), when Hubble Relay is
unreachable and when events are lost. It also states what the SLIs should show
per datapath (``expected``) and how a judge should rule (``outcomes``), so
end-to-end tests compare against the scenario instead of magic numbers.

Pure module: frozen dataclasses and the named catalogue ``SCENARIOS``. The behaviour of a
datapath is :mod:`exporter.simulator.profiles`, the cluster layout
:mod:`exporter.simulator.layout`; both are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from exporter.model import EBPF, KUBE_PROXY
from exporter.simulator.layout import (
    DEFAULT_CLUSTER,
    Client,
    Cluster,
    Node,
    Pod,
    Service,
    Target,
)
from exporter.simulator.profiles import (
    MAX_LATENCY_S,
    DatapathProfile,
    ExpectedSli,
    HttpProfile,
    Latency,
    Outcome,
)

__all__ = [
    "CANARY_AT_S", "CANARY_NODE", "DEFAULT_CLUSTER", "EBPF_BACKEND_NOT_FOUND", "EBPF_IMPROVED",
    "EBPF_REGRESSED", "KUBE_PROXY_PROFILE", "MAX_LATENCY_S", "SCENARIOS", "SCENARIO_NAMES",
    "Client", "Cluster", "DatapathProfile", "ExpectedSli", "HttpProfile", "Latency",
    "LostBurst", "Node", "Outage", "Outcome", "Pod", "Scenario", "Service", "ServiceProfile",
    "Switch", "Target", "UnknownScenario", "get_scenario",
]

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


#: Today's kube-proxy (iptables) behaviour: the reference every scenario starts from.
KUBE_PROXY_PROFILE: Final = DatapathProfile(connect=Latency(0.0008, 0.004))
#: eBPF socket-LB as hoped: about 30 % faster handshakes, same error rates, an agent
#: using less CPU than kube-proxy did, Services programmed in milliseconds, 35 % more
#: payload per connection.
EBPF_IMPROVED: Final = DatapathProfile(connect=Latency(0.00055, 0.0028), service_cpu_cores=0.035,
                                       programming=Latency(0.004, 0.02),
                                       stream_bytes_per_s=KUBE_PROXY_PROFILE.stream_bytes_per_s
                                       * 1.35)
#: eBPF going wrong: slower handshakes and KPR-sensitive drops, a busier agent, slow
#: Service programming (a backed-up agent: seconds where kube-proxy takes about one, clear
#: even over the few bucket bounds kube-proxy's and Cilium's histograms share), 30 % less
#: payload per connection.
EBPF_REGRESSED: Final = DatapathProfile(
    connect=Latency(0.0016, 0.012),
    drops=((133, 0.002), (158, 0.010), (155, 0.003)),
    service_cpu_cores=0.09, programming=Latency(6.0, 20.0),
    stream_bytes_per_s=KUBE_PROXY_PROFILE.stream_bytes_per_s * 0.7,
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
