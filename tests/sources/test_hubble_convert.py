"""Conversion of Hubble wire messages into ``exporter.model`` events.

Matrix: the reference examples (kube-proxy handshake, KPR socket-LB trace-sock
events, a Service drop, an L7 response) field by field; is_reply true / false /
unset; deprecated drop_reason fallback; L4 kinds (TCP, UDP, SCTP, ICMP, a
oneof member we only know as "other"); DNS L7; aggregated flows; unknown enum
numbers; unknown fields at two depths; lost events; node status; unknown
response kinds; malformed bytes; cache sharing and bounds; Flow field order.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from exporter import model
from exporter._gen.flow import flow_pb2
from exporter._gen.observer import observer_pb2
from exporter._gen.relay import relay_pb2
from exporter.sources.errors import MalformedMessage, SourceError
from exporter.sources.hubble_convert import HubbleConverter

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "hubble" / "example-flows.jsonl"


def _examples() -> dict[str, flow_pb2.Flow]:
    out = {}
    for line in EXAMPLES.read_text().splitlines():
        if line.strip():
            flow = json_format.ParseDict(json.loads(line)["flow"], flow_pb2.Flow())
            out[flow.uuid[-2:]] = flow
    return out


FLOWS = _examples()


def convert_flow(flow: flow_pb2.Flow, converter: HubbleConverter | None = None) -> model.Flow:
    resp = observer_pb2.GetFlowsResponse(flow=flow, node_name=flow.node_name, time=flow.time)
    event = (converter or HubbleConverter()).convert(resp.SerializeToString())
    assert isinstance(event, model.Flow)
    return event


def test_flow_field_order_is_pinned() -> None:
    # The converter builds model.Flow positionally for speed.
    assert [f.name for f in dataclasses.fields(model.Flow)] == [
        "time_ns", "node_name", "verdict", "type", "event_type", "event_sub_type", "src_ip",
        "dst_ip", "protocol", "src_port", "dst_port", "tcp_flags", "source", "destination",
        "source_service", "destination_service", "is_reply", "traffic_direction",
        "observation_point", "drop_reason", "sock_xlate_point", "socket_cookie", "uuid", "l7",
        "count",
    ]
    assert [f.name for f in dataclasses.fields(model.Endpoint)] == [
        "namespace", "pod_name", "identity", "endpoint_id", "workload", "labels",
    ]


def test_kube_proxy_syn_to_cluster_ip() -> None:
    flow = convert_flow(FLOWS["01"])
    assert flow == model.Flow(
        time_ns=1764000000049999952,
        node_name="node-a",
        verdict=model.FORWARDED,
        type=model.L3_L4,
        event_type=model.EVENT_TRACE,
        event_sub_type=3,
        src_ip="10.0.1.5",
        dst_ip="10.96.10.10",
        protocol=model.TCP,
        src_port=40001,
        dst_port=8080,
        tcp_flags=model.SYN,
        source=model.Endpoint(
            "shop", "web-a-5d9f", 30001, 101, "web-a",
            ("k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"),
        ),
        destination=None,
        source_service=None,
        destination_service=model.ServiceRef("shop", "cart"),
        is_reply=False,
        traffic_direction=model.EGRESS,
        observation_point=model.TO_STACK,
        uuid="00000000-0000-4000-8000-000000000001",
    )


@pytest.mark.parametrize(
    ("uuid", "node", "src", "dst", "flags", "is_reply", "point", "src_svc", "dst_svc"),
    [
        ("02", "node-a", "10.0.1.5", "10.0.2.21", model.SYN, False, model.TO_OVERLAY, None, None),
        ("03", "node-b", "10.0.1.5", "10.0.2.21", model.SYN, False, model.TO_ENDPOINT, None, None),
        ("04", "node-b", "10.0.2.21", "10.0.1.5", model.SYN | model.ACK, True, model.TO_OVERLAY,
         None, None),
        ("05", "node-a", "10.96.10.10", "10.0.1.5", model.SYN | model.ACK, True,
         model.TO_ENDPOINT, ("shop", "cart"), None),
        ("08", "node-b", "10.0.2.5", "10.0.1.22", model.SYN, False, model.TO_OVERLAY, None, None),
        ("11", "node-b", "10.0.1.22", "10.0.2.5", model.SYN | model.ACK, True, model.TO_ENDPOINT,
         None, None),
    ],
)
def test_handshake_examples(uuid, node, src, dst, flags, is_reply, point, src_svc, dst_svc) -> None:
    flow = convert_flow(FLOWS[uuid])
    assert (flow.node_name, flow.src_ip, flow.dst_ip) == (node, src, dst)
    assert (flow.protocol, flow.tcp_flags, flow.is_reply) == (model.TCP, flags, is_reply)
    assert flow.observation_point == point
    assert flow.source_service == (model.ServiceRef(*src_svc) if src_svc else None)
    assert flow.destination_service == (model.ServiceRef(*dst_svc) if dst_svc else None)
    assert flow.uuid.endswith(uuid) and flow.count == 1 and flow.l7 is None


def test_kpr_trace_sock_pre_and_post_translation() -> None:
    pre, post = convert_flow(FLOWS["06"]), convert_flow(FLOWS["07"])
    for flow in (pre, post):
        assert (flow.type, flow.verdict, flow.event_type) == (
            model.SOCK, model.TRACED, model.EVENT_TRACE_SOCK)
        assert flow.socket_cookie == 90001 and flow.src_port == 0 and flow.dst_port == 8080
        assert flow.is_reply is None and flow.tcp_flags == 0
        assert flow.source.pod_name == "web-b-7c2e"
    assert (pre.sock_xlate_point, pre.dst_ip) == (model.SOCK_XLATE_PRE_FWD, "10.96.10.10")
    assert pre.destination_service == model.ServiceRef("shop", "cart") and pre.destination is None
    assert (post.sock_xlate_point, post.dst_ip) == (model.SOCK_XLATE_POST_FWD, "10.0.1.22")
    assert post.destination_service is None and post.destination.workload == "cart-2"


def test_drop_example() -> None:
    flow = convert_flow(FLOWS["12"])
    assert (flow.verdict, flow.drop_reason, flow.event_type, flow.event_sub_type) == (
        model.DROPPED, 158, model.EVENT_DROP, 158)
    assert model.enum_name(model.DROP_REASON_NAMES, flow.drop_reason) == "SERVICE_BACKEND_NOT_FOUND"
    assert flow.is_reply is None
    assert flow.destination_service == model.ServiceRef("shop", "empty")


def test_l7_http_response_example() -> None:
    flow = convert_flow(FLOWS["13"])
    assert flow.type == model.L7 and flow.event_type == model.EVENT_L7
    assert flow.l7 == model.L7Http(model.L7_RESPONSE, 5_000_000, 200, "GET", "http")
    assert flow.is_reply is True and flow.protocol == model.PROTO_UNKNOWN
    assert flow.traffic_direction == model.EGRESS


def test_forwarded_flow_has_no_drop_reason_and_drop_falls_back_to_raw_code() -> None:
    forwarded = flow_pb2.Flow(verdict=flow_pb2.FORWARDED, drop_reason=158)
    assert convert_flow(forwarded).drop_reason == 0
    dropped = flow_pb2.Flow(verdict=flow_pb2.DROPPED, drop_reason=169)
    assert convert_flow(dropped).drop_reason == 169


@pytest.mark.parametrize(
    ("l4", "protocol", "ports"),
    [
        (flow_pb2.Layer4(UDP=flow_pb2.UDP(source_port=53000, destination_port=53)), model.UDP,
         (53000, 53)),
        (flow_pb2.Layer4(SCTP=flow_pb2.SCTP(source_port=1, destination_port=2)), model.SCTP,
         (1, 2)),
        (flow_pb2.Layer4(ICMPv4=flow_pb2.ICMPv4(type=8)), model.ICMP4, (0, 0)),
        (flow_pb2.Layer4(ICMPv6=flow_pb2.ICMPv6(type=128)), model.ICMP6, (0, 0)),
        (flow_pb2.Layer4(VRRP=flow_pb2.VRRP(vrid=3)), model.PROTO_UNKNOWN, (0, 0)),
        (flow_pb2.Layer4(), model.PROTO_UNKNOWN, (0, 0)),
    ],
)
def test_l4_kinds(l4, protocol, ports) -> None:
    flow = convert_flow(flow_pb2.Flow(l4=l4))
    assert (flow.protocol, (flow.src_port, flow.dst_port), flow.tcp_flags) == (protocol, ports, 0)


def test_every_tcp_flag() -> None:
    flags = flow_pb2.TCPFlags(FIN=True, SYN=True, RST=True, PSH=True, ACK=True, URG=True,
                              ECE=True, CWR=True, NS=True)
    flow = convert_flow(flow_pb2.Flow(l4=flow_pb2.Layer4(TCP=flow_pb2.TCP(flags=flags))))
    assert flow.tcp_flags == sum(model.TCP_FLAG_BITS.values())
    rst = flow_pb2.Layer4(TCP=flow_pb2.TCP(flags=flow_pb2.TCPFlags(RST=True, ACK=True)))
    assert convert_flow(flow_pb2.Flow(l4=rst)).tcp_flags == model.RST | model.ACK


def test_is_reply_wrapper_true_false_unset() -> None:
    from google.protobuf.wrappers_pb2 import BoolValue

    assert convert_flow(flow_pb2.Flow(is_reply=BoolValue(value=True))).is_reply is True
    assert convert_flow(flow_pb2.Flow(is_reply=BoolValue(value=False))).is_reply is False
    assert convert_flow(flow_pb2.Flow(reply=True)).is_reply is None


def test_dns_record() -> None:
    l7 = flow_pb2.Layer7(type=flow_pb2.RESPONSE, dns=flow_pb2.DNS(query="cart.shop.", rcode=3))
    flow = convert_flow(flow_pb2.Flow(Type=flow_pb2.L7, l7=l7))
    assert flow.l7 == model.L7Http(model.L7_RESPONSE, 0, 3, "", "dns")


def test_aggregated_flow_counts_as_the_sum() -> None:
    agg = flow_pb2.Aggregate(ingress_flow_count=3, egress_flow_count=2,
                             unknown_direction_flow_count=1)
    assert convert_flow(flow_pb2.Flow(aggregate=agg)).count == 6
    assert convert_flow(flow_pb2.Flow(aggregate=flow_pb2.Aggregate())).count == 1


def test_unknown_enum_numbers_are_kept_as_numbers() -> None:
    flow = flow_pb2.Flow(
        verdict=42, Type=9, drop_reason_desc=206, trace_observation_point=77,
        traffic_direction=5, sock_xlate_point=9,
    )
    flow.verdict = flow_pb2.DROPPED
    got = convert_flow(flow)
    assert (got.type, got.drop_reason, got.observation_point, got.traffic_direction) == (
        9, 206, 77, 5)
    assert model.enum_name(model.DROP_REASON_NAMES, got.drop_reason) == "206"
    assert convert_flow(flow_pb2.Flow(verdict=42)).verdict == 42
    l7 = flow_pb2.Layer7(type=7, latency_ns=1)
    assert convert_flow(flow_pb2.Flow(Type=flow_pb2.L7, l7=l7)).l7.type == 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2), encoded by hand."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_unknown_fields_are_tolerated() -> None:
    base = flow_pb2.Flow()
    base.CopyFrom(FLOWS["01"])
    # unknown field 60 (a future message) in Flow and field 15 inside the source Endpoint
    source = base.source.SerializeToString() + _field(15, b"future")
    base.ClearField("source")
    flow_bytes = base.SerializeToString() + _field(60, b"\x08\x01") + _field(8, source)
    resp = _field(1, flow_bytes) + _field(77, b"x")
    event = HubbleConverter().convert(resp)
    assert isinstance(event, model.Flow)
    assert event.source.pod_name == "web-a-5d9f" and event.src_port == 40001
    assert event.destination_service == model.ServiceRef("shop", "cart")


def test_lost_events() -> None:
    resp = observer_pb2.GetFlowsResponse(
        lost_events=flow_pb2.LostEvent(source=flow_pb2.HUBBLE_RING_BUFFER, num_events_lost=7),
        node_name="node-b",
    )
    resp.time.FromNanoseconds(1_700_000_000_123_000_000)
    event = HubbleConverter().convert_message(resp)
    assert event == model.LostEvents("node-b", 3, 7, 1_700_000_000_123_000_000)


def test_node_status() -> None:
    resp = observer_pb2.GetFlowsResponse(
        node_status=relay_pb2.NodeStatusEvent(
            state_change=relay_pb2.NODE_UNAVAILABLE, node_names=["node-c"], message="dial"),
        node_name="relay",
    )
    assert HubbleConverter().convert_message(resp) == model.NodeStatus(
        2, ("node-c",), "dial", 0)


def test_unknown_response_kind_is_none() -> None:
    assert HubbleConverter().convert(_field(4, b"\x08\x01")) is None
    assert HubbleConverter().convert(b"") is None


def test_flow_time_and_node_fall_back_to_the_response() -> None:
    resp = observer_pb2.GetFlowsResponse(flow=flow_pb2.Flow(uuid="u"), node_name="node-z")
    resp.time.FromNanoseconds(5_000_000_001)
    flow = HubbleConverter().convert_message(resp)
    assert (flow.time_ns, flow.node_name) == (5_000_000_001, "node-z")


def test_malformed_bytes_raise_our_error() -> None:
    with pytest.raises(MalformedMessage) as err:
        HubbleConverter().convert(b"\x0a\x05\x01")
    assert isinstance(err.value, SourceError) and err.value.__cause__ is not None
    bad_endpoint = _field(1, _field(8, b"\xff\xff"))
    with pytest.raises(MalformedMessage):
        HubbleConverter().convert(bad_endpoint)


def test_endpoints_are_cached_and_shared_within_bounds() -> None:
    conv = HubbleConverter(cache_size=2)
    first = convert_flow(FLOWS["01"], conv)
    again = convert_flow(FLOWS["01"], conv)
    assert again.source is first.source
    for uuid in ("04", "06", "13"):  # more distinct endpoints than the cache holds
        convert_flow(FLOWS[uuid], conv)
    later = convert_flow(FLOWS["01"], conv)
    assert later.source == first.source and later.source is not first.source


def test_flow_helper_takes_a_real_flow_message() -> None:
    flow = HubbleConverter().flow(FLOWS["08"])
    assert flow.src_port == 41001 and flow.node_name == "node-b"
