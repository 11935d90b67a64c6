"""The packets of one simulated connection as Hubble would show them.

``TickEmitter`` builds the flows of one one-second tick — the trace-sock events, the SYN
at every observation point, the answer, a drop, an HTTP request and response — shaped by
the datapath of the client's node (kube-proxy: the ClusterIP, then its DNAT-ed copy;
eBPF socket-LB: trace-sock events, then the backend pod only). Pure and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from exporter.model import (
    ACK,
    DROPPED,
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
    ServiceRef,
)
from exporter.simulator.layout import Pod

if TYPE_CHECKING:
    from exporter.simulator.flows import FlowGenerator

#: Linux retransmits an unanswered SYN after one second.
SYN_RETRY_NS: Final = 1_000_000_000

_SOCK_LEAD_NS: Final = 20_000  # trace-sock events precede the first SYN by 20 µs
_HTTP_SUB_TYPE: Final = 0
_SUB_TYPE: Final = {TO_STACK: 3, TO_OVERLAY: 4, TO_ENDPOINT: 0}

# Outcomes of one attempt.
ESTABLISHED: Final = "established"
REFUSED: Final = "refused"
TIMEOUT: Final = "timeout"


@dataclass(slots=True)
class Peer:
    """A pod seen from its own node (``local``) and from elsewhere (``remote``)."""

    pod: Pod
    local: Endpoint
    remote: Endpoint

    def seen_from(self, node: str) -> Endpoint:
        return self.local if node == self.pod.node else self.remote


@dataclass(slots=True)
class Pair:
    """One client's traffic to one Service, with everything precomputed."""

    client: Peer
    client_index: int
    service: ServiceRef
    vip: str
    port: int
    backends: tuple[Peer, ...]
    http: bool
    rate: float


def peer(pod: Pod) -> Peer:
    def ep(endpoint_id: int) -> Endpoint:
        return Endpoint(namespace=pod.namespace, pod_name=pod.name, identity=pod.identity,
                        endpoint_id=endpoint_id, workload=pod.workload, labels=pod.labels)
    return Peer(pod, ep(pod.endpoint_id), ep(0))


class TickEmitter:
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

    def drop(self, pair: Pair, t: int, port: int, reason: int) -> None:
        c = pair.client
        self.add(t, Flow(
            time_ns=t, node_name=c.pod.node, verdict=DROPPED, type=L3_L4, event_type=EVENT_DROP,
            event_sub_type=reason, src_ip=c.pod.ip, dst_ip=pair.vip, protocol=TCP, src_port=port,
            dst_port=pair.port, tcp_flags=SYN, source=c.local, destination_service=pair.service,
            drop_reason=reason, uuid=self._uuid()))

    def sock(self, pair: Pair, backend: Peer, t: int, cookie: int) -> None:
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

    def syn(self, pair: Pair, backend: Peer, t0: int, latency: int, port: int, kpr: bool) -> None:
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

    def answer(self, pair: Pair, backend: Peer, t0: int, latency: int, port: int, kpr: bool,
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

    def connection(self, pair: Pair, backend: Peer, t0: int, port: int, latency: int,
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

    def http(self, pair: Pair, backend: Peer, t_req: int, latency: int, code: int,
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
