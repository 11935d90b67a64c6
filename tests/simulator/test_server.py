"""The simulated Hubble Relay over real gRPC on 127.0.0.1.

Matrix: GetFlows history (number per node, first, number=0, since/until),
follow (live only, with history, ring overrun -> lost events), first+follow
rejected, filters (whitelist, blacklist, unsupported field), node_status first,
hubble-relay-version header, relay outage (stream aborted, new calls refused,
back afterwards), ServerStatus, GetNodes, GetNamespaces, unimplemented agent
events, grpc health, pre-serialised streaming (grpc server and raw HTTP/2).
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from exporter._gen.flow import flow_pb2
from exporter._gen.observer import observer_pb2
from exporter.model import DROPPED, Flow
from bench.fastpath import RawStreamServer
from bench.prebuilt import PrebuiltObserver, prebuilt_responses
from exporter.simulator.server import start_grpc_server

NODES = ["node-a", "node-b", "node-c"]
NS = 1_000_000_000


async def read(call, limit: int | None = None) -> list[observer_pb2.GetFlowsResponse]:
    out = []
    async for msg in call:
        out.append(msg)
        if limit is not None and len(out) >= limit:
            break
    return out


def flows_of(msgs) -> list[flow_pb2.Flow]:
    return [m.flow for m in msgs if m.HasField("flow")]


def ts(time_ns: int) -> Timestamp:
    return Timestamp(seconds=time_ns // NS, nanos=time_ns % NS)


def timeline_flows(sim) -> list[Flow]:
    tl = sim.timeline
    return [e for _, e in tl.range(tl.first_seq) if isinstance(e, Flow)]


async def test_history_starts_with_node_status_and_sends_the_version_header(
        make_sim, channel_to) -> None:
    sim = await make_sim()
    sim.advance_to(20)
    call = channel_to(sim).GetFlows(observer_pb2.GetFlowsRequest(number=5))
    metadata = dict(await call.initial_metadata())
    assert metadata["hubble-relay-version"] == "1.19.4"
    msgs = await read(call)
    assert msgs[0].node_status.state_change == 1 and list(msgs[0].node_status.node_names) == NODES
    assert msgs[0].node_name == "hubble-relay"
    flows = flows_of(msgs[1:])
    assert len(flows) == 15  # number is per node, as through Relay
    for node in NODES:
        newest = [f.uuid for f in timeline_flows(sim) if f.node_name == node][-5:]
        assert [f.uuid for f in flows if f.node_name == node] == newest
    times = [m.time.ToNanoseconds() for m in msgs[1:]]
    assert times == sorted(times)
    assert all(m.node_name == m.flow.node_name for m in msgs[1:])


async def test_first_and_everything(make_sim, channel_to) -> None:
    sim = await make_sim()
    sim.advance_to(10)
    stub = channel_to(sim)
    flows = flows_of(await read(stub.GetFlows(observer_pb2.GetFlowsRequest(number=3, first=True))))
    for node in NODES:
        oldest = [f.uuid for f in timeline_flows(sim) if f.node_name == node][:3]
        assert [f.uuid for f in flows if f.node_name == node] == oldest
    everything = flows_of(await read(stub.GetFlows(observer_pb2.GetFlowsRequest())))
    assert [f.uuid for f in everything] == [f.uuid for f in timeline_flows(sim)]


async def test_since_and_until(make_sim, channel_to) -> None:
    sim = await make_sim()
    sim.advance_to(20)
    lo, hi = sim.timeline.epoch_ns + 10 * NS, sim.timeline.epoch_ns + 12 * NS
    request = observer_pb2.GetFlowsRequest(number=2, since=ts(lo), until=ts(hi))
    flows = flows_of(await read(channel_to(sim).GetFlows(request)))
    assert len(flows) == 6 and all(lo <= f.time.ToNanoseconds() <= hi for f in flows)
    window = observer_pb2.GetFlowsRequest(since=ts(lo), until=ts(hi))
    flows = flows_of(await read(channel_to(sim).GetFlows(window)))
    expected = [f.uuid for f in timeline_flows(sim) if lo <= f.time_ns <= hi]
    assert [f.uuid for f in flows] == expected and len(expected) > 100


async def test_follow_streams_what_the_timeline_releases(make_sim, channel_to) -> None:
    sim = await make_sim()
    sim.advance_to(5)
    call = channel_to(sim).GetFlows(observer_pb2.GetFlowsRequest(follow=True))
    first = await read(call, 1)
    assert first[0].HasField("node_status")
    start = sim.timeline.total
    sim.advance_to(6)
    expected = [e.uuid for _, e in sim.timeline.range(start) if isinstance(e, Flow)]
    got = flows_of(await asyncio.wait_for(read(call, len(expected)), 10))
    assert [f.uuid for f in got] == expected and expected
    call.cancel()


async def test_follow_with_history_then_until_ends_the_stream(make_sim, channel_to) -> None:
    sim = await make_sim()
    sim.advance_to(5)
    until = sim.timeline.epoch_ns + int(5.5 * NS)
    request = observer_pb2.GetFlowsRequest(number=1, follow=True, until=ts(until))
    call = channel_to(sim).GetFlows(request)
    head = await read(call, 4)
    assert len(flows_of(head)) == 3
    sim.advance_to(6)
    rest = flows_of(await asyncio.wait_for(read(call), 10))  # ends by itself
    assert rest and all(f.time.ToNanoseconds() <= until for f in rest)
    assert rest[-1].uuid == [f.uuid for f in timeline_flows(sim) if f.time_ns <= until][-1]


async def test_first_with_follow_is_invalid(make_sim, channel_to) -> None:
    sim = await make_sim()
    call = channel_to(sim).GetFlows(observer_pb2.GetFlowsRequest(first=True, follow=True))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read(call)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "first cannot be specified with follow"


async def test_filters(make_sim, channel_to) -> None:
    sim = await make_sim("canary-regression", capacity=6000)
    sim.advance_to(340)
    stub = channel_to(sim)

    async def uuids(**kwargs) -> list[str]:
        msgs = await read(stub.GetFlows(observer_pb2.GetFlowsRequest(**kwargs)))
        return [f.uuid for f in flows_of(msgs)]

    drops = await uuids(whitelist=[flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED],
                                                       node_name=["node-b"])])
    assert drops and drops == [f.uuid for f in timeline_flows(sim)
                               if f.verdict == DROPPED and f.node_name == "node-b"]
    web_a = await uuids(whitelist=[flow_pb2.FlowFilter(source_pod=["shop/web-a"],
                                                       protocol=["tcp"])])
    assert web_a and web_a == [f.uuid for f in timeline_flows(sim) if f.source
                               and f.source.pod_name.startswith("web-a") and f.protocol == 6]
    http_not_200 = await uuids(whitelist=[flow_pb2.FlowFilter(protocol=["http"])],
                               blacklist=[flow_pb2.FlowFilter(http_status_code=["200"])])
    assert http_not_200 == [f.uuid for f in timeline_flows(sim) if f.l7 and f.l7.code != 200]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await uuids(whitelist=[flow_pb2.FlowFilter(http_method=["GET"])])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "http_method" in err.value.details()


async def test_lost_events_pass_filters_and_slow_followers_lose_events(
        make_sim, channel_to) -> None:
    sim = await make_sim("relay-outage", capacity=200)
    sim.advance_to(91)
    request = observer_pb2.GetFlowsRequest(
        number=1, whitelist=[flow_pb2.FlowFilter(node_name=["node-b"])])
    msgs = await read(channel_to(sim).GetFlows(request))
    lost = [m for m in msgs if m.HasField("lost_events")]
    assert [(m.node_name, m.lost_events.source, m.lost_events.num_events_lost) for m in lost] == \
        [("node-a", flow_pb2.HUBBLE_RING_BUFFER, 120)]

    call = channel_to(sim).GetFlows(observer_pb2.GetFlowsRequest(follow=True))
    await read(call, 1)
    start = sim.timeline.total
    sim.advance_to(100)  # far more than the ring holds, before the stream reads any of it
    overrun = sim.timeline.first_seq - start
    assert overrun > 0
    msg = (await asyncio.wait_for(read(call, 1), 10))[0]
    assert msg.lost_events.source == flow_pb2.HUBBLE_RING_BUFFER
    assert msg.lost_events.num_events_lost == overrun
    call.cancel()


async def test_outage_breaks_streams_and_refuses_calls_until_it_ends(make_sim, channel_to) -> None:
    sim = await make_sim("relay-outage")
    sim.advance_to(55)
    stub = channel_to(sim)
    call = stub.GetFlows(observer_pb2.GetFlowsRequest(follow=True))
    await read(call, 1)
    sim.advance_to(61)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(read(call), 10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    for rpc in (stub.GetFlows(observer_pb2.GetFlowsRequest(number=1)),):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read(rpc)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ServerStatus(observer_pb2.ServerStatusRequest())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await health(sim, "hubble.server.Observer") == b"\x08\x02"  # NOT_SERVING
    sim.advance_to(91)
    msgs = await read(stub.GetFlows(observer_pb2.GetFlowsRequest(number=1)))
    assert msgs[0].HasField("node_status") and len(msgs) > 1


async def test_status_nodes_and_namespaces(make_sim, channel_to) -> None:
    sim = await make_sim()
    sim.advance_to(10)
    stub = channel_to(sim)
    status = await stub.ServerStatus(observer_pb2.ServerStatusRequest())
    assert status.num_connected_nodes.value == 3 and status.HasField("num_unavailable_nodes")
    assert status.num_unavailable_nodes.value == 0
    assert status.seen_flows == sim.timeline.total == status.num_flows > 0
    nodes = await stub.GetNodes(observer_pb2.GetNodesRequest())
    assert [n.name for n in nodes.nodes] == NODES and all(n.state == 1 for n in nodes.nodes)
    assert sum(n.seen_flows for n in nodes.nodes) == sum(
        1 for _, e in sim.timeline.range(0) if isinstance(e, Flow))
    namespaces = await stub.GetNamespaces(observer_pb2.GetNamespacesRequest())
    assert [n.namespace for n in namespaces.namespaces] == ["payments", "platform", "shop"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read(stub.GetAgentEvents(observer_pb2.GetAgentEventsRequest()))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def health(sim, service: str) -> bytes:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{sim.ports.grpc}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        name = service.encode()
        return await check(b"\x0a" + bytes([len(name)]) + name if name else b"")


async def test_health_check(make_sim) -> None:
    sim = await make_sim()
    assert await health(sim, "hubble.server.Observer") == b"\x08\x01"  # SERVING
    assert await health(sim, "") == b"\x08\x01"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await health(sim, "nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_prebuilt_messages_stream_as_given() -> None:
    messages = prebuilt_responses(300)
    assert len(messages) == 300 and 200 < sum(map(len, messages)) / 300 < 450
    parsed = observer_pb2.GetFlowsResponse.FromString(messages[0])
    assert parsed.flow.uuid and parsed.node_name == parsed.flow.node_name
    server, port = await start_grpc_server(PrebuiltObserver(messages, repeat=2).generic_handlers())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream(
                "/observer.Observer/GetFlows",
                request_serializer=observer_pb2.GetFlowsRequest.SerializeToString)
            got = [raw async for raw in call(observer_pb2.GetFlowsRequest(follow=True))]
        assert got == messages * 2
    finally:
        await server.stop(None)



async def test_raw_http2_streamer_speaks_grpc() -> None:
    messages = prebuilt_responses(500)  # ~170 KB: more than the default flow-control window
    server = RawStreamServer(messages, repeat=3)
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            get_flows = channel.unary_stream(
                "/observer.Observer/GetFlows",
                request_serializer=observer_pb2.GetFlowsRequest.SerializeToString,
                response_deserializer=observer_pb2.GetFlowsResponse.FromString)
            call = get_flows(observer_pb2.GetFlowsRequest(follow=True))
            assert dict(await call.initial_metadata())["hubble-relay-version"] == "1.19.4"
            got = [m.SerializeToString() async for m in call]
            assert got == messages * 3
            assert await call.code() == grpc.StatusCode.OK
            endless = RawStreamServer(messages, repeat=0)
            endless_port = await endless.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{endless_port}") as other:
                    call = other.unary_stream("/observer.Observer/GetFlows")(b"")
                    assert len(await read(call, 2000)) == 2000
                    call.cancel()
            finally:
                await endless.stop()
    finally:
        await server.stop()
