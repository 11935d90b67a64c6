"""``exporter.model`` events -> Hubble protobuf messages, as Hubble Relay would send them.

The inverse of ``sources.hubble_convert`` for what the simulator produces. Fields
the model does not carry are filled the way Cilium fills them: ``drop_reason``
mirrors ``drop_reason_desc``, the deprecated ``reply`` mirrors ``is_reply``,
each endpoint gets one ``Deployment`` workload, HTTP records speak HTTP/1.1.
Endpoints and Services are encoded once and merged from bytes afterwards.
"""

from __future__ import annotations

from typing import Final

from exporter._gen.flow import flow_pb2
from exporter._gen.observer import observer_pb2
from exporter.model import (
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

_NS: Final = 1_000_000_000
_IPV4: Final = 1
_IPV6: Final = 2
_HTTP_VERSION: Final = "HTTP/1.1"

_endpoint_cache: dict[int, tuple[Endpoint, bytes]] = {}
_service_cache: dict[ServiceRef, bytes] = {}
_flags_cache: dict[int, bytes] = {}


def _endpoint_bytes(ep: Endpoint) -> bytes:
    hit = _endpoint_cache.get(id(ep))
    if hit is not None and hit[0] is ep:
        return hit[1]
    msg = flow_pb2.Endpoint(ID=ep.endpoint_id, identity=ep.identity, namespace=ep.namespace,
                            labels=list(ep.labels), pod_name=ep.pod_name)
    if ep.workload:
        msg.workloads.add(name=ep.workload, kind="Deployment")
    raw = msg.SerializeToString()
    if len(_endpoint_cache) > 4096:
        _endpoint_cache.clear()
    _endpoint_cache[id(ep)] = (ep, raw)  # keeps ep alive, so its id stays unique
    return raw


def _service_bytes(svc: ServiceRef) -> bytes:
    raw = _service_cache.get(svc)
    if raw is None:
        if len(_service_cache) > 4096:
            _service_cache.clear()
        raw = _service_cache[svc] = flow_pb2.Service(
            name=svc.name, namespace=svc.namespace).SerializeToString()
    return raw


def _flags_bytes(flags: int) -> bytes:
    raw = _flags_cache.get(flags)
    if raw is None:
        names = {name: True for name, bit in TCP_FLAG_BITS.items() if flags & bit}
        msg = flow_pb2.TCPFlags(**names)
        raw = _flags_cache[flags] = msg.SerializeToString()
    return raw


def _set_time(ts: object, time_ns: int) -> None:
    ts.seconds, ts.nanos = divmod(time_ns, _NS)  # type: ignore[attr-defined]


def _l7(msg: flow_pb2.Layer7, l7: L7Http, service: ServiceRef | None) -> None:
    msg.type = l7.type
    msg.latency_ns = l7.latency_ns
    if l7.protocol == "http":
        http = msg.http
        http.code = l7.code
        http.method = l7.method
        http.protocol = _HTTP_VERSION
        url = getattr(l7, "url", "")
        if not url and service is not None:
            url = f"http://{service.name}.{service.namespace}/"
        http.url = url


def encode_flow(flow: Flow) -> flow_pb2.Flow:
    """One model flow as a ``flow.Flow`` message."""
    f = flow_pb2.Flow()
    _set_time(f.time, flow.time_ns)
    f.verdict = flow.verdict
    if flow.drop_reason:
        f.drop_reason = flow.drop_reason
        f.drop_reason_desc = flow.drop_reason
    if flow.src_ip or flow.dst_ip:
        ip = f.IP
        ip.source = flow.src_ip
        ip.destination = flow.dst_ip
        ip.ipVersion = _IPV6 if ":" in flow.src_ip else _IPV4
    if flow.protocol == TCP:
        tcp = f.l4.TCP
        tcp.SetInParent()
        tcp.source_port = flow.src_port
        tcp.destination_port = flow.dst_port
        if flow.tcp_flags:
            tcp.flags.MergeFromString(_flags_bytes(flow.tcp_flags))
    elif flow.protocol == UDP:
        udp = f.l4.UDP
        udp.SetInParent()
        udp.source_port = flow.src_port
        udp.destination_port = flow.dst_port
    if flow.source is not None:
        f.source.MergeFromString(_endpoint_bytes(flow.source))
    if flow.destination is not None:
        f.destination.MergeFromString(_endpoint_bytes(flow.destination))
    f.Type = flow.type
    f.node_name = flow.node_name
    if flow.l7 is not None:
        _l7(f.l7, flow.l7, flow.source_service or flow.destination_service)
    if flow.is_reply is not None:
        f.is_reply.value = flow.is_reply
        f.reply = flow.is_reply
    if flow.event_type or flow.event_sub_type:
        f.event_type.type = flow.event_type
        f.event_type.sub_type = flow.event_sub_type
    if flow.source_service is not None:
        f.source_service.MergeFromString(_service_bytes(flow.source_service))
    if flow.destination_service is not None:
        f.destination_service.MergeFromString(_service_bytes(flow.destination_service))
    f.traffic_direction = flow.traffic_direction
    f.trace_observation_point = flow.observation_point
    f.sock_xlate_point = flow.sock_xlate_point
    f.socket_cookie = flow.socket_cookie
    f.uuid = flow.uuid
    if flow.count > 1:
        f.aggregate.unknown_direction_flow_count = flow.count
    return f


def encode_response(event: Event, *, relay_node: str = "") -> observer_pb2.GetFlowsResponse:
    """One model event as a ``GetFlowsResponse`` (node_status carries ``relay_node``)."""
    resp = observer_pb2.GetFlowsResponse()
    if isinstance(event, Flow):
        resp.flow.CopyFrom(encode_flow(event))
        resp.node_name = event.node_name
        _set_time(resp.time, event.time_ns)
    elif isinstance(event, LostEvents):
        lost = resp.lost_events
        lost.source = event.source
        lost.num_events_lost = event.count
        resp.node_name = event.node_name
        _set_time(resp.time, event.time_ns)
    elif isinstance(event, NodeStatus):
        status = resp.node_status
        status.state_change = event.state
        status.node_names.extend(event.node_names)
        status.message = event.message
        resp.node_name = relay_node
        _set_time(resp.time, event.time_ns)
    else:
        raise TypeError(f"cannot encode {type(event).__name__}")
    return resp


def response_bytes(event: Event, *, relay_node: str = "") -> bytes:
    """``encode_response`` serialised."""
    return encode_response(event, relay_node=relay_node).SerializeToString()


def node_status(state: int, nodes: tuple[str, ...], time_ns: int, message: str = "") -> bytes:
    """A serialised relay ``node_status`` message."""
    return response_bytes(NodeStatus(state, nodes, message, time_ns), relay_node="hubble-relay")
