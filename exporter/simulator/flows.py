"""Turns a scenario into the flows Hubble would emit: pure and deterministic.

Scenario time is cut into one-second ticks. Every tick has its own random
generator seeded from ``(seed, tick)``, so the events of a tick never depend on
which window was asked for: ``generate(s, seed, 0, 20)`` equals the
concatenation of ``generate(s, seed, 0, 10)`` and ``generate(s, seed, 10, 20)``.

For each client and target Service a tick draws a Poisson number of connection
attempts; each attempt is dropped on the client's node, refused (RST), timed out
(SYN, retransmitted SYN, nothing back) or established, and connections to
Services with L7 visibility carry one HTTP request/response. The packets are
shaped by the datapath of the client's node at the time of the attempt
(see ``reference/example-flows.jsonl``):

* kube-proxy: on the client's node the SYN to the ClusterIP (``TO_STACK``,
  ``destination_service``), then its DNAT-ed copy; on the server's node the
  DNAT-ed SYN (``TO_ENDPOINT``) and the SYN-ACK; on the client's node the SYN-ACK
  from the ClusterIP (``source_service``, ``TO_ENDPOINT``).
* eBPF socket-LB: two trace-sock events at ``connect()`` (pre- and
  post-translation, same socket cookie, source port 0), then packets addressed to
  the backend pod only, without any Service on them.

The handshake seen at the client's node (first SYN observation there to the
SYN-ACK's delivery to the client) equals the latency drawn from the profile.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_right
from collections.abc import Iterator
from typing import Final

from exporter.metrics_contract import DROP_REASON_CODES
from exporter.model import EBPF, Event, Flow, LostEvents, ServiceRef
from exporter.simulator.packets import (
    ESTABLISHED,
    REFUSED,
    SYN_RETRY_NS,
    TIMEOUT,
    Pair,
    TickEmitter,
    peer,
)
from exporter.simulator.scenarios import MAX_LATENCY_S, DatapathProfile, Scenario

__all__ = [
    "DEFAULT_EPOCH_NS", "ESTABLISHED", "MAX_SPAN_TICKS", "REFUSED", "SERVICE_BACKEND_NOT_FOUND",
    "SYN_RETRY_NS", "TIMEOUT", "FlowGenerator", "generate", "generate_flows",
]

#: Scenario time 0 unless told otherwise: 2025-11-24T16:00:00Z, as in the examples.
DEFAULT_EPOCH_NS: Final = 1_764_000_000 * 1_000_000_000

#: A connection's events all fall within this many ticks of its start.
MAX_SPAN_TICKS: Final = 5

_NS: Final = 1_000_000_000
_L7_GAP_NS: Final = 100_000  # request leaves 100 µs after the handshake
_PORT_BASE: Final = 32768
_PORT_SPAN: Final = 28232

SERVICE_BACKEND_NOT_FOUND: Final = DROP_REASON_CODES["SERVICE_BACKEND_NOT_FOUND"]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam > 30.0:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _latency_ns(rng: random.Random, mu: float, sigma: float) -> int:
    return max(1_000, int(min(rng.lognormvariate(mu, sigma), MAX_LATENCY_S) * _NS))


class FlowGenerator:
    """Generates one scenario's events tick by tick; same ``(scenario, seed)``, same events."""

    def __init__(self, scenario: Scenario, seed: int, *, epoch_ns: int = DEFAULT_EPOCH_NS) -> None:
        self.scenario = scenario
        self.seed = seed
        self.epoch_ns = epoch_ns
        self._uuid_prefix = f"{zlib.crc32(f'kpr-sim/{seed}'.encode()):08x}"
        cluster = scenario.cluster
        peers = {(p.namespace, p.name): peer(p) for p in cluster.pods}
        services = {s.key: s for s in cluster.services}
        self._pairs: list[Pair] = []
        for index, client in enumerate(cluster.clients):
            for target in client.targets:
                svc = services[(target.namespace, target.service)]
                self._pairs.append(Pair(
                    client=peers[(client.namespace, client.pod)], client_index=index,
                    service=ServiceRef(svc.namespace, svc.name), vip=svc.cluster_ip, port=svc.port,
                    backends=tuple(peers[(svc.namespace, b)] for b in svc.backends),
                    http=svc.http, rate=target.rate * scenario.rate_scale))
        self._switches: dict[str, tuple[list[float], list[str]]] = {}
        for node in cluster.nodes:
            times, modes = [float("-inf")], [node.datapath]
            for sw in sorted(scenario.switches, key=lambda s: s.at_s):
                if sw.node == node.name:
                    times.append(sw.at_s)
                    modes.append(sw.datapath)
            self._switches[node.name] = (times, modes)
        self._profiles: dict[tuple[str, ServiceRef], DatapathProfile] = {}

    # -- public --------------------------------------------------------------

    def datapath(self, node: str, at_s: float) -> str:
        times, modes = self._switches[node]
        return modes[bisect_right(times, at_s) - 1]

    def tick(self, tick: int) -> list[tuple[int, int, Event]]:
        """Events of connections starting in ``[tick, tick + 1)``, as ``(time_ns, seq, event)``.

        Sorted by time; ``seq`` breaks ties and is unique across ticks.
        """
        rng = random.Random(f"{self.seed}/{tick}")
        emitter = TickEmitter(self, tick)
        tick_ns = self.epoch_ns + tick * _NS
        ports: dict[int, int] = {}
        for pair in self._pairs:
            for _ in range(_poisson(rng, pair.rate)):
                start_ns = tick_ns + int(rng.random() * _NS)
                port_index = ports.get(pair.client_index, 0)
                ports[pair.client_index] = port_index + 1
                port = _PORT_BASE + (tick * 256 + port_index) % _PORT_SPAN
                self._attempt(rng, emitter, pair, start_ns, port)
        for burst in self.scenario.lost:
            if math.floor(burst.at_s) == tick:
                at_ns = self.epoch_ns + int(burst.at_s * _NS)
                emitter.add(at_ns, LostEvents(node_name=burst.node, source=burst.source,
                                              count=burst.count, time_ns=at_ns))
        emitter.out.sort(key=lambda item: (item[0], item[1]))
        return emitter.out

    def events(self, start_s: float, end_s: float) -> list[Event]:
        """Every event with a time in ``[start_s, end_s)`` (scenario seconds), time-ordered."""
        lo = self.epoch_ns + int(start_s * _NS)
        hi = self.epoch_ns + int(end_s * _NS)
        items: list[tuple[int, int, Event]] = []
        for tick in range(math.floor(start_s) - MAX_SPAN_TICKS, math.ceil(end_s)):
            items.extend(item for item in self.tick(tick) if lo <= item[0] < hi)
        items.sort(key=lambda item: (item[0], item[1]))
        return [event for _, _, event in items]

    def iter_ticks(self, first: int = 0) -> Iterator[list[tuple[int, int, Event]]]:
        tick = first
        while True:
            yield self.tick(tick)
            tick += 1

    # -- one attempt -----------------------------------------------------------

    def _profile(self, datapath: str, service: ServiceRef) -> DatapathProfile:
        key = (datapath, service)
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profiles[key] = self.scenario.profile(datapath, *service)
        return profile

    def _attempt(self, rng: random.Random, em: TickEmitter, pair: Pair, t0: int,
                 port: int) -> None:
        datapath = self.datapath(pair.client.pod.node, (t0 - self.epoch_ns) / _NS)
        profile = self._profile(datapath, pair.service)
        backend = pair.backends[rng.randrange(len(pair.backends))] if pair.backends else None
        latency = _latency_ns(rng, profile.connect.mu, profile.connect.sigma)
        u = rng.random()
        for reason, ratio in profile.drops:
            if u < ratio:
                em.drop(pair, t0, port, reason)
                return
            u -= ratio
        if backend is None:  # a Service without endpoints
            em.drop(pair, t0, port, SERVICE_BACKEND_NOT_FOUND)
            return
        v = rng.random()
        if v < profile.timeout_ratio:
            outcome = TIMEOUT
        elif v < profile.timeout_ratio + profile.refused_ratio:
            outcome = REFUSED
        else:
            outcome = ESTABLISHED
        em.connection(pair, backend, t0, port, latency, outcome, datapath == EBPF)
        if outcome == ESTABLISHED and pair.http:
            http = profile.http
            l7_latency = _latency_ns(rng, http.latency.mu, http.latency.sigma)
            w = rng.random() * sum(weight for _, weight in http.codes)
            code = http.codes[-1][0]
            for candidate, weight in http.codes:
                if w < weight:
                    code = candidate
                    break
                w -= weight
            em.http(pair, backend, t0 + latency + _L7_GAP_NS, l7_latency, code, http.method)


def generate(scenario: Scenario, seed: int, start_s: float, end_s: float, *,
             epoch_ns: int = DEFAULT_EPOCH_NS) -> list[Event]:
    """The events Hubble would emit in ``[start_s, end_s)`` of ``scenario``, time-ordered."""
    return FlowGenerator(scenario, seed, epoch_ns=epoch_ns).events(start_s, end_s)


def generate_flows(scenario: Scenario, seed: int, start_s: float, end_s: float, *,
                   epoch_ns: int = DEFAULT_EPOCH_NS) -> list[Flow]:
    """Like ``generate`` but flows only (no lost events)."""
    return [e for e in generate(scenario, seed, start_s, end_s, epoch_ns=epoch_ns)
            if isinstance(e, Flow)]
