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
from dataclasses import dataclass
from typing import Final

from exporter.model import (
    ACK,
    DROPPED,
    EBPF,
    EGRESS,
    EVENT_DROP,
    EVENT_L7,
    EVENT_TRACE,
    EVENT_TRACE_SOCK,
    FORWARDED,
    INGRESS,
    L3_L4,
    L7,
    L7_REQUEST,
    L7_RESPONSE,
    RST,
    SOCK,
    SOCK_XLATE_POST_FWD,
    SOCK_XLATE_PRE_FWD,
    SYN,
    TCP,
    TO_ENDPOINT,
    TO_OVERLAY,
    TO_STACK,
    TRACED,
    Endpoint,
    Event,
    Flow,
    L7Http,
    LostEvents,
    ServiceRef,
)
from exporter.simulator.scenarios import MAX_LATENCY_S, DatapathProfile, Pod, Scenario

#: Scenario time 0 unless told otherwise: 2025-11-24T16:00:00Z, as in the examples.
DEFAULT_EPOCH_NS: Final = 1_764_000_000 * 1_000_000_000

#: A connection's events all fall within this many ticks of its start.
MAX_SPAN_TICKS: Final = 5

#: Linux retransmits an unanswered SYN after one second.
SYN_RETRY_NS: Final = 1_000_000_000

_NS: Final = 1_000_000_000
_SOCK_LEAD_NS: Final = 20_000  # trace-sock events precede the first SYN by 20 µs
_L7_GAP_NS: Final = 100_000  # request leaves 100 µs after the handshake
_PORT_BASE: Final = 32768
_PORT_SPAN: Final = 28232
_HTTP_SUB_TYPE: Final = 0
_SUB_TYPE: Final = {TO_STACK: 3, TO_OVERLAY: 4, TO_ENDPOINT: 0}

SERVICE_BACKEND_NOT_FOUND: Final = 158

# Outcomes of one attempt.
ESTABLISHED: Final = "established"
REFUSED: Final = "refused"
TIMEOUT: Final = "timeout"


@dataclass(slots=True)
class _Peer:
    """A pod seen from its own node (``local``) and from elsewhere (``remote``)."""

    pod: Pod
    local: Endpoint
    remote: Endpoint

    def seen_from(self, node: str) -> Endpoint:
        return self.local if node == self.pod.node else self.remote


@dataclass(slots=True)
class _Pair:
    """One client's traffic to one Service, with everything precomputed."""

    client: _Peer
    client_index: int
    service: ServiceRef
    vip: str
    port: int
    backends: tuple[_Peer, ...]
    http: bool
    rate: float


def _peer(pod: Pod) -> _Peer:
    def ep(endpoint_id: int) -> Endpoint:
        return Endpoint(namespace=pod.namespace, pod_name=pod.name, identity=pod.identity,
                        endpoint_id=endpoint_id, workload=pod.workload, labels=pod.labels)
    return _Peer(pod, ep(pod.endpoint_id), ep(0))


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
        peers = {(p.namespace, p.name): _peer(p) for p in cluster.pods}
        services = {s.key: s for s in cluster.services}
        self._pairs: list[_Pair] = []
        for index, client in enumerate(cluster.clients):
            for target in client.targets:
                svc = services[(target.namespace, target.service)]
                self._pairs.append(_Pair(
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
        emitter = _TickEmitter(self, tick)
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

    def _attempt(self, rng: random.Random, em: _TickEmitter, pair: _Pair, t0: int,
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


class _TickEmitter:
    """Builds the flows of one tick; numbers them for ordering and uuids."""

    __slots__ = ("gen", "tick", "out", "_n", "_uuid_head")

    def __init__(self, gen: FlowGenerator, tick: int) -> None:
        self.gen = gen
        self.tick = tick
        self.out: list[tuple[int, int, Event]] = []
        self._n = 0
        t = tick & 0xFFFFFFF
        self._uuid_head = f"{gen._uuid_prefix}-{t >> 12:04x}-4{t & 0xFFF:03x}-8"

    def add(self, time_ns: int, event: Event) -> None:
        self.out.append((time_ns, (self.tick << 32) | self._n, event))
        self._n += 1

    def _uuid(self) -> str:
        n = self._n
        return f"{self._uuid_head}{(n >> 48) & 0xFFF:03x}-{n & 0xFFFFFFFFFFFF:012x}"

    def tcp(self, t: int, node: str, src_ip: str, sport: int, dst_ip: str, dport: int, flags: int,
            source: Endpoint | None, destination: Endpoint | None, direction: int, point: int,
            reply: bool, *, src_svc: ServiceRef | None = None,
            dst_svc: ServiceRef | None = None) -> None:
        self.add(t, Flow(
            time_ns=t, node_name=node, verdict=FORWARDED, type=L3_L4, event_type=EVENT_TRACE,
            event_sub_type=_SUB_TYPE[point], src_ip=src_ip, dst_ip=dst_ip, protocol=TCP,
            src_port=sport, dst_port=dport, tcp_flags=flags, source=source,
            destination=destination, source_service=src_svc, destination_service=dst_svc,
            is_reply=reply, traffic_direction=direction, observation_point=point,
            uuid=self._uuid()))

    def drop(self, pair: _Pair, t: int, port: int, reason: int) -> None:
        c = pair.client
        self.add(t, Flow(
            time_ns=t, node_name=c.pod.node, verdict=DROPPED, type=L3_L4, event_type=EVENT_DROP,
            event_sub_type=reason, src_ip=c.pod.ip, dst_ip=pair.vip, protocol=TCP, src_port=port,
            dst_port=pair.port, tcp_flags=SYN, source=c.local, destination_service=pair.service,
            drop_reason=reason, uuid=self._uuid()))

    def sock(self, pair: _Pair, backend: _Peer, t: int, cookie: int) -> None:
        c = pair.client
        node = c.pod.node
        for point, dst_ip, destination, svc in (
            (SOCK_XLATE_PRE_FWD, pair.vip, None, pair.service),
            (SOCK_XLATE_POST_FWD, backend.pod.ip, backend.seen_from(node), None),
        ):
            self.add(t, Flow(
                time_ns=t, node_name=node, verdict=TRACED, type=SOCK, event_type=EVENT_TRACE_SOCK,
                event_sub_type=point, src_ip=c.pod.ip, dst_ip=dst_ip, protocol=TCP, src_port=0,
                dst_port=pair.port, source=c.local, destination=destination,
                destination_service=svc, sock_xlate_point=point, socket_cookie=cookie,
                uuid=self._uuid()))

    def syn(self, pair: _Pair, backend: _Peer, t0: int, latency: int, port: int, kpr: bool) -> None:
        """The client's SYN at every observation point (client's node first)."""
        c, b = pair.client, backend
        cn, bn = c.pod.node, b.pod.node
        at_server = t0 + latency * 35 // 100
        if not kpr:
            self.tcp(t0, cn, c.pod.ip, port, pair.vip, pair.port, SYN, c.local, None, EGRESS,
                     TO_STACK, False, dst_svc=pair.service)
        if cn != bn:
            t_overlay = t0 + latency * 5 // 100 if not kpr else t0
            self.tcp(t_overlay, cn, c.pod.ip, port, b.pod.ip, pair.port, SYN, c.local, b.remote,
                     EGRESS, TO_OVERLAY, False)
            self.tcp(at_server, bn, c.pod.ip, port, b.pod.ip, pair.port, SYN, c.remote, b.local,
                     INGRESS, TO_ENDPOINT, False)
        else:
            self.tcp(t0 if kpr else at_server, bn, c.pod.ip, port, b.pod.ip, pair.port, SYN,
                     c.local, b.local, INGRESS, TO_ENDPOINT, False)

    def answer(self, pair: _Pair, backend: _Peer, t0: int, latency: int, port: int, kpr: bool,
               flags: int) -> None:
        """The server's SYN-ACK (or RST) going back; reaches the client at ``t0 + latency``."""
        c, b = pair.client, backend
        cn, bn = c.pod.node, b.pod.node
        t_end = t0 + latency
        if cn != bn:
            self.tcp(t0 + latency * 60 // 100, bn, b.pod.ip, pair.port, c.pod.ip, port, flags,
                     b.local, c.remote, INGRESS, TO_OVERLAY, True)
        elif not kpr:
            self.tcp(t0 + latency * 60 // 100, bn, b.pod.ip, pair.port, c.pod.ip, port, flags,
                     b.local, c.local, INGRESS, TO_STACK, True)
        if kpr:
            self.tcp(t_end, cn, b.pod.ip, pair.port, c.pod.ip, port, flags, b.seen_from(cn),
                     c.local, EGRESS, TO_ENDPOINT, True)
        else:
            self.tcp(t_end, cn, pair.vip, pair.port, c.pod.ip, port, flags, None, c.local, EGRESS,
                     TO_ENDPOINT, True, src_svc=pair.service)

    def connection(self, pair: _Pair, backend: _Peer, t0: int, port: int, latency: int,
                   outcome: str, kpr: bool) -> None:
        if kpr:
            cookie = ((self.tick & 0xFFFFFFFFF) << 24 | self._n) + 1  # unique per socket
            self.sock(pair, backend, t0 - _SOCK_LEAD_NS, cookie)
        self.syn(pair, backend, t0, latency, port, kpr)
        if outcome == TIMEOUT:
            self.syn(pair, backend, t0 + SYN_RETRY_NS, latency, port, kpr)
            return
        flags = SYN | ACK if outcome == ESTABLISHED else RST | ACK
        self.answer(pair, backend, t0, latency, port, kpr, flags)

    def http(self, pair: _Pair, backend: _Peer, t_req: int, latency: int, code: int,
             method: str) -> None:
        c, b = pair.client, backend
        node = c.pod.node
        server = b.seen_from(node)
        self.add(t_req, Flow(
            time_ns=t_req, node_name=node, verdict=FORWARDED, type=L7, event_type=EVENT_L7,
            event_sub_type=_HTTP_SUB_TYPE, src_ip=c.pod.ip, dst_ip=b.pod.ip, source=c.local,
            destination=server, destination_service=pair.service, is_reply=False,
            traffic_direction=EGRESS, uuid=self._uuid(),
            l7=L7Http(type=L7_REQUEST, method=method, protocol="http")))
        t_resp = t_req + latency
        self.add(t_resp, Flow(
            time_ns=t_resp, node_name=node, verdict=FORWARDED, type=L7, event_type=EVENT_L7,
            event_sub_type=_HTTP_SUB_TYPE, src_ip=b.pod.ip, dst_ip=c.pod.ip, source=server,
            destination=c.local, source_service=pair.service, is_reply=True,
            traffic_direction=EGRESS, uuid=self._uuid(),
            l7=L7Http(type=L7_RESPONSE, latency_ns=latency, code=code, method=method,
                      protocol="http")))


def generate(scenario: Scenario, seed: int, start_s: float, end_s: float, *,
             epoch_ns: int = DEFAULT_EPOCH_NS) -> list[Event]:
    """The events Hubble would emit in ``[start_s, end_s)`` of ``scenario``, time-ordered."""
    return FlowGenerator(scenario, seed, epoch_ns=epoch_ns).events(start_s, end_s)


def generate_flows(scenario: Scenario, seed: int, start_s: float, end_s: float, *,
                   epoch_ns: int = DEFAULT_EPOCH_NS) -> list[Flow]:
    """Like ``generate`` but flows only (no lost events)."""
    return [e for e in generate(scenario, seed, start_s, end_s, epoch_ns=epoch_ns)
            if isinstance(e, Flow)]
