"""Hubble wire messages -> ``exporter.model`` events (the per-flow hot path).

Pure apart from the generated protobuf types: no I/O, no logging, no
metrics. ``HubbleConverter`` turns serialized ``observer.GetFlowsResponse``
messages into ``model.Flow``, ``model.LostEvents`` or ``model.NodeStatus``.

How it stays at a few microseconds per flow:

* messages are parsed into ``hubbleview.Response``, a read-only view with the
  real field numbers in which sub-messages that repeat across flows
  (endpoints, services, IP pair, event type, TCP flags) are plain ``bytes``.
  Those bytes are cache keys: a repeated endpoint costs one dict lookup instead
  of a Python wrapper object and half a dozen attribute reads. A miss parses the
  bytes with the real ``flow`` message type;
* enum fields stay plain ints, so numbers newer than our generated code survive
  unchanged and no name lookup happens per flow;
* caches are small bounded dicts (cleared when full). Cached ``Endpoint``
  objects are shared between flows: consumers treat them as read-only;
* ``model.Flow`` is built positionally (a test pins the field order).
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from google.protobuf.wrappers_pb2 import BoolValue

from exporter._gen.flow import flow_pb2
from exporter._gen.hubbleview import hubbleview_pb2
from exporter._gen.relay import relay_pb2
from exporter.model import (
    DROPPED,
    ICMP4,
    ICMP6,
    L7,
    PROTO_UNKNOWN,
    SCTP,
    SOCK,
    TCP,
    TCP_FLAG_BITS,
    UDP,
    Endpoint,
    Event,
    Flow,
    L7Http,
    LostEvents,
    NodeStatus,
    ServiceRef,
)
from exporter.sources.errors import MalformedMessage

__all__ = ["HubbleConverter", "timestamp_ns"]

_NS = 1_000_000_000
_OTHER_L4 = {"ICMPv4": ICMP4, "ICMPv6": ICMP6}  # VRRP, IGMP and newer: PROTO_UNKNOWN
_TRUE = b"\x08\x01"  # google.protobuf.BoolValue{value: true}
_MISS = object()
_parse_view = hubbleview_pb2.Response.FromString


def timestamp_ns(ts) -> int:
    """Nanoseconds since the epoch of a ``google.protobuf.Timestamp``."""
    return ts.seconds * _NS + ts.nanos


class _Cache(dict):
    """A dict that forgets everything once it holds ``limit`` entries (cheap, bounded)."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key, value):
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


class HubbleConverter:
    """Converts Hubble stream messages; keeps small caches, so keep one per reader.

    ``convert(raw)`` takes the serialized message as received from gRPC;
    ``convert_message(msg)`` takes a real ``observer.GetFlowsResponse`` (tests,
    tools). Both return ``None`` for a response kind this code does not know.
    """

    __slots__ = ("_endpoints", "_services", "_ips", "_events", "_flags")

    def __init__(self, *, cache_size: int = 8192) -> None:
        self._endpoints = _Cache(cache_size)
        self._services = _Cache(cache_size)
        self._ips = _Cache(cache_size)
        self._events = _Cache(1024)
        self._flags = _Cache(1024)

    def convert(self, raw: bytes) -> Event | None:
        """One serialized ``GetFlowsResponse`` as a model event."""
        try:
            resp = _parse_view(raw)
        except DecodeError as exc:
            raise MalformedMessage(f"undecodable GetFlowsResponse ({len(raw)} bytes)") from exc
        if resp.HasField("flow"):
            return self._flow(resp.flow, resp)
        return self._other(resp)

    def convert_message(self, msg) -> Event | None:
        """A real ``observer.GetFlowsResponse`` message as a model event."""
        return self.convert(msg.SerializeToString())

    def flow(self, msg) -> Flow:
        """A real ``flow.Flow`` message as a ``model.Flow``."""
        return self._flow(hubbleview_pb2.Flow.FromString(msg.SerializeToString()), None)

    # -- the hot path ----------------------------------------------------------
    def _flow(self, f, resp) -> Flow:
        ts = f.time
        time_ns = ts.seconds * _NS + ts.nanos
        node_name = f.node_name
        if resp is not None:
            if not time_ns:
                time_ns = timestamp_ns(resp.time)
            if not node_name:
                node_name = resp.node_name

        l4 = f.l4
        which = l4.WhichOneof("protocol")
        src_port = dst_port = flags = 0
        if which == "TCP":
            tcp = l4.TCP
            src_port = tcp.source_port
            dst_port = tcp.destination_port
            raw = tcp.flags
            cached = self._flags.get(raw)
            flags = self._flags.put(raw, _tcp_flags(raw)) if cached is None else cached
            protocol = TCP
        elif which == "UDP":
            udp = l4.UDP
            src_port = udp.source_port
            dst_port = udp.destination_port
            protocol = UDP
        elif which == "SCTP":
            sctp = l4.SCTP
            src_port = sctp.source_port
            dst_port = sctp.destination_port
            protocol = SCTP
        else:
            protocol = _OTHER_L4.get(which, PROTO_UNKNOWN)

        verdict = f.verdict
        drop_reason = 0
        if verdict == DROPPED:
            drop_reason = f.drop_reason_desc or f.drop_reason
        ftype = f.Type
        l7 = None
        sock_point = cookie = 0
        if ftype == L7:
            l7 = _l7(f.l7)
        elif ftype == SOCK:
            sock_point = f.sock_xlate_point
            cookie = f.socket_cookie

        raw = f.IP
        ips = self._ips.get(raw)
        if ips is None:
            ips = self._ips.put(raw, _ip_pair(raw))
        raw = f.event_type
        event = self._events.get(raw)
        if event is None:
            event = self._events.put(raw, _event_type(raw))

        endpoints = self._endpoints
        raw = f.source
        if raw:
            source = endpoints.get(raw)
            if source is None:
                source = endpoints.put(raw, _endpoint(raw))
        else:
            source = None
        raw = f.destination
        if raw:
            destination = endpoints.get(raw)
            if destination is None:
                destination = endpoints.put(raw, _endpoint(raw))
        else:
            destination = None

        services = self._services
        raw = f.source_service
        if raw:
            source_service = services.get(raw, _MISS)
            if source_service is _MISS:
                source_service = services.put(raw, _service(raw))
        else:
            source_service = None
        raw = f.destination_service
        if raw:
            destination_service = services.get(raw, _MISS)
            if destination_service is _MISS:
                destination_service = services.put(raw, _service(raw))
        else:
            destination_service = None

        raw = f.aggregate
        count = _aggregate_count(raw) if raw else 1

        return Flow(
            time_ns=time_ns,
            node_name=node_name,
            verdict=verdict,
            type=ftype,
            event_type=event[0],
            event_sub_type=event[1],
            src_ip=ips[0],
            dst_ip=ips[1],
            protocol=protocol,
            src_port=src_port,
            dst_port=dst_port,
            tcp_flags=flags,
            source=source,
            destination=destination,
            source_service=source_service,
            destination_service=destination_service,
            is_reply=((f.is_reply == _TRUE or _bool_value(f.is_reply))
                      if f.HasField("is_reply") else None),
            traffic_direction=f.traffic_direction,
            observation_point=f.trace_observation_point,
            drop_reason=drop_reason,
            sock_xlate_point=sock_point,
            socket_cookie=cookie,
            uuid=f.uuid,
            l7=l7,
            count=count,
        )

    @staticmethod
    def _other(resp) -> Event | None:
        kind = resp.WhichOneof("response_types")
        try:
            if kind == "lost_events":
                lost = flow_pb2.LostEvent.FromString(resp.lost_events)
                return LostEvents(
                    resp.node_name, lost.source, lost.num_events_lost, timestamp_ns(resp.time)
                )
            if kind == "node_status":
                status = relay_pb2.NodeStatusEvent.FromString(resp.node_status)
                return NodeStatus(
                    status.state_change,
                    tuple(status.node_names),
                    status.message,
                    timestamp_ns(resp.time),
                )
        except DecodeError as exc:
            raise MalformedMessage(f"undecodable {kind} event") from exc
        return None


# -- cache misses: parse the bytes with the real message types -----------------
def _decode(message_type, raw: bytes):
    try:
        return message_type.FromString(raw)
    except DecodeError as exc:
        raise MalformedMessage(f"undecodable flow.{message_type.__name__}") from exc


def _endpoint(raw: bytes) -> Endpoint:
    ep = _decode(flow_pb2.Endpoint, raw)
    workloads = ep.workloads
    return Endpoint(
        ep.namespace,
        ep.pod_name,
        ep.identity,
        ep.ID,
        workloads[0].name if workloads else "",
        tuple(ep.labels),
    )


def _service(raw: bytes) -> ServiceRef | None:
    svc = _decode(flow_pb2.Service, raw)
    if not svc.name:
        return None
    return ServiceRef(svc.namespace, svc.name)


def _ip_pair(raw: bytes) -> tuple[str, str]:
    if not raw:
        return ("", "")
    ip = _decode(flow_pb2.IP, raw)
    return (ip.source, ip.destination)


def _event_type(raw: bytes) -> tuple[int, int]:
    if not raw:
        return (0, 0)
    event = _decode(flow_pb2.CiliumEventType, raw)
    return (event.type, event.sub_type)


def _tcp_flags(raw: bytes) -> int:
    if not raw:
        return 0
    msg = _decode(flow_pb2.TCPFlags, raw)
    bits = 0
    for name, bit in TCP_FLAG_BITS.items():
        if getattr(msg, name):
            bits |= bit
    return bits


def _bool_value(raw: bytes) -> bool:
    return bool(raw) and _decode(BoolValue, raw).value


def _aggregate_count(raw: bytes) -> int:
    agg = _decode(flow_pb2.Aggregate, raw)
    total = agg.ingress_flow_count + agg.egress_flow_count + agg.unknown_direction_flow_count
    return total or 1


def _l7(l7) -> L7Http:
    record = l7.WhichOneof("record")
    code = 0
    method = ""
    protocol = ""
    if record == "http":
        http = l7.http
        code = http.code
        method = http.method
        protocol = "http"
    elif record == "dns":
        code = _decode(flow_pb2.DNS, l7.dns).rcode
        protocol = "dns"
    elif record == "kafka":
        protocol = "kafka"
    return L7Http(l7.type, l7.latency_ns, code, method, protocol)
