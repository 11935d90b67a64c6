"""HubbleReader against a real grpc.aio Observer on 127.0.0.1.

Matrix: streaming (request shape, filters, flows, readiness, up, counter);
lost events; relay node status and GetNodes; agent mode; unknown enum numbers
and unknown fields on the wire; relay unreachable at start (up 0, not ready,
one log line with address and status, backoff from the injected sleep, then
recovery); server restart mid-stream (reconnect, resume with since, no
duplicate); a stream aborted by the server; a stream ended by the server;
plaintext against TLS and TLS against plaintext; TLS with server-name
override; mTLS with and without a client certificate; unix socket target;
backoff arithmetic with and without jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import tempfile
from pathlib import Path

import grpc
import pytest
from google.protobuf.wrappers_pb2 import UInt32Value

from exporter import model
from exporter._gen.flow import flow_pb2
from exporter._gen.observer import observer_pb2
from exporter._gen.relay import relay_pb2
from exporter.roles import FlowSource
from exporter.sources.hubble import HubbleReader
from exporter.sources.settings import HubbleSettings, HubbleTLSSettings

from .conftest import (
    HOLD,
    Abort,
    FakeHubble,
    flow_response,
    lost_response,
    node_status_response,
)

LOGGER = "exporter.sources.hubble"
T0 = 1_764_000_000_000_000_000


def make_reader(address: str, registry, step_sleep=None, **overrides) -> HubbleReader:
    settings = HubbleSettings(address=address, **overrides)
    kwargs = {"sleep": step_sleep} if step_sleep is not None else {}
    return HubbleReader(settings, registry=registry, rng=random.Random(7), **kwargs)


def value(registry, name: str, **labels) -> float | None:
    return registry.get_sample_value(name, labels)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_reader_is_a_flow_source(registry) -> None:
    reader = make_reader("127.0.0.1:1", registry)
    assert isinstance(reader, FlowSource)
    assert value(registry, "kpr_hubble_up") == 0
    assert value(registry, "kpr_hubble_flows_received_total") == 0
    for source in ("UNKNOWN_LOST_EVENT_SOURCE", "PERF_EVENT_RING_BUFFER", "OBSERVER_EVENTS_QUEUE",
                   "HUBBLE_RING_BUFFER"):  # pre-initialised: rate() works from the first scrape
        assert value(registry, "kpr_hubble_lost_events_total", source=source) == 0
    status = reader.status()
    assert not status.up and status.address == "127.0.0.1:1" and status.error


async def test_streams_flows_with_filters(fake_hubble, observer, registry, consumers) -> None:
    observer.scripts = [[flow_response("f1", T0), flow_response("f2", T0 + 1000), HOLD]]
    reader = make_reader(
        fake_hubble.address, registry,
        allowlist=("verdict=DROPPED destination_pod=shop/", "event_type=7:1"),
        denylist=("reply=true",),
    )
    assert not reader.ready.is_set()
    events = await consumers(reader).wait_count(2)
    assert [e.uuid for e in events] == ["f1", "f2"]
    assert events[1].time_ns == T0 + 1000 and events[0].node_name == "node-a"
    assert reader.ready.is_set() and reader.status().up
    assert value(registry, "kpr_hubble_up") == 1
    assert value(registry, "kpr_hubble_flows_received_total") == 2
    assert value(registry, "kpr_hubble_reconnects_total") == 0

    request = observer.requests[0]
    assert request.follow and not request.first and request.number == 0
    assert not request.HasField("since")
    assert list(request.whitelist[0].verdict) == [flow_pb2.DROPPED]
    assert list(request.whitelist[0].destination_pod) == ["shop/"]
    assert request.whitelist[1].event_type[0] == flow_pb2.EventTypeFilter(
        type=7, match_sub_type=True, sub_type=1)
    assert list(request.blacklist[0].reply) == [True]


async def test_lost_events_are_counted_and_yielded(fake_hubble, observer, registry,
                                                   consumers) -> None:
    observer.scripts = [[
        lost_response(flow_pb2.HUBBLE_RING_BUFFER, 7),
        lost_response(flow_pb2.PERF_EVENT_RING_BUFFER, 2),
        lost_response(9, 1),  # a source newer than us
        flow_response("f1", T0),
        HOLD,
    ]]
    reader = make_reader(fake_hubble.address, registry)
    events = await consumers(reader).wait_count(4)
    assert events[0] == model.LostEvents("node-a", 3, 7, 0)
    assert value(registry, "kpr_hubble_lost_events_total", source="HUBBLE_RING_BUFFER") == 7
    assert value(registry, "kpr_hubble_lost_events_total", source="PERF_EVENT_RING_BUFFER") == 2
    assert value(registry, "kpr_hubble_lost_events_total", source="9") == 1
    assert value(registry, "kpr_hubble_flows_received_total") == 1


async def test_relay_node_status_and_get_nodes(fake_hubble, observer, registry,
                                               consumers) -> None:
    observer.scripts = [[
        node_status_response(relay_pb2.NODE_CONNECTED, "node-a", "node-b", "node-c"),
        node_status_response(relay_pb2.NODE_UNAVAILABLE, "node-c", message="dial timeout"),
        flow_response("f1", T0),
        HOLD,
    ]]
    observer.status.num_connected_nodes.CopyFrom(UInt32Value(value=3))
    observer.status.num_unavailable_nodes.CopyFrom(UInt32Value(value=1))
    observer.nodes = observer_pb2.GetNodesResponse(nodes=[
        observer_pb2.Node(name="node-a", state=relay_pb2.NODE_CONNECTED),
        observer_pb2.Node(name="node-b", state=relay_pb2.NODE_CONNECTED),
        observer_pb2.Node(name="node-c", state=relay_pb2.NODE_CONNECTED),
        observer_pb2.Node(name="node-d", state=relay_pb2.NODE_UNAVAILABLE),
        observer_pb2.Node(name="node-e", state=relay_pb2.NODE_GONE),
    ])
    reader = make_reader(fake_hubble.address, registry, status_interval_seconds=3600)
    consumer = consumers(reader)
    events = await consumer.wait_count(3)
    assert events[1] == model.NodeStatus(2, ("node-c",), "dial timeout", 0)
    await reader.poll_status()  # deterministic: the background poll may have raced the events
    status = reader.status()
    assert status.connected_nodes == ("node-a", "node-b", "node-c")
    assert status.unavailable_nodes == ("node-d",)
    assert status.extras["num_connected_nodes"] == "3" and status.extras["version"] == "1.19.4"
    assert value(registry, "kpr_hubble_nodes", state="NODE_CONNECTED") == 3
    assert value(registry, "kpr_hubble_nodes", state="NODE_UNAVAILABLE") == 1
    assert value(registry, "kpr_hubble_nodes", state="NODE_GONE") == 0


async def test_node_status_events_update_nodes_between_polls(fake_hubble, observer, registry,
                                                             consumers) -> None:
    observer.scripts = [[
        node_status_response(relay_pb2.NODE_CONNECTED, "node-a", "node-b"),
        node_status_response(relay_pb2.NODE_ERROR, "node-b", message="EOF"),
        node_status_response(relay_pb2.NODE_CONNECTED, "node-c"),
        node_status_response(relay_pb2.NODE_GONE, "node-a"),
        HOLD,
    ]]
    observer.status = observer_pb2.ServerStatusResponse()  # agent-like status: no GetNodes
    observer.status.num_connected_nodes.value = 2
    reader = make_reader(fake_hubble.address, registry, status_interval_seconds=3600)
    await consumers(reader).wait_count(4)
    assert value(registry, "kpr_hubble_nodes", state="NODE_CONNECTED") == 1
    assert value(registry, "kpr_hubble_nodes", state="NODE_ERROR") == 1
    assert reader.status().unavailable_nodes == ("node-b",)


async def test_agent_counts_as_one_connected_node(fake_hubble, observer, registry,
                                                  consumers) -> None:
    observer.scripts = [[flow_response("f1", T0), HOLD]]
    reader = make_reader(fake_hubble.address, registry, status_interval_seconds=3600)
    consumer = consumers(reader)
    await consumer.wait_count(1)
    await reader.poll_status()
    assert reader.status().extras["mode"] == "agent"
    assert value(registry, "kpr_hubble_nodes", state="NODE_CONNECTED") == 1


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


async def test_unknown_enums_and_unknown_fields_on_the_wire(fake_hubble, observer, registry,
                                                            consumers) -> None:
    resp = flow_response("f1", T0, verdict=flow_pb2.DROPPED, drop_reason_desc=206,
                         trace_observation_point=77)
    unknown_in_flow = _varint(60 << 3 | 2) + _varint(2) + b"\x08\x01"
    flow_bytes = resp.flow.SerializeToString() + unknown_in_flow
    raw = (_varint(1 << 3 | 2) + _varint(len(flow_bytes)) + flow_bytes
           + _varint(2000 << 3 | 0) + _varint(5))  # unknown varint field in the response
    observer.scripts = [[observer_pb2.GetFlowsResponse.FromString(raw),
                         flow_response("f2", T0 + 1, verdict=42), HOLD]]
    reader = make_reader(fake_hubble.address, registry)
    events = await consumers(reader).wait_count(2)
    assert (events[0].uuid, events[0].drop_reason, events[0].observation_point) == ("f1", 206, 77)
    assert events[1].verdict == 42


async def test_unreachable_at_start_then_recovers(registry, observer, step_sleep, consumers,
                                                  caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    port = free_port()
    reader = make_reader(f"127.0.0.1:{port}", registry, step_sleep,
                         backoff_initial_seconds=1, backoff_max_seconds=4, backoff_jitter=0)
    consumers(reader)
    delays = []
    for _ in range(4):
        delays.append(await step_sleep.next_call())
        assert not reader.ready.is_set()
        assert value(registry, "kpr_hubble_up") == 0
        step_sleep.release()
    assert delays == [1, 2, 4, 4]
    assert await step_sleep.next_call() == 4
    # five failed dials, no stream was ever established: nothing to reconnect
    assert value(registry, "kpr_hubble_dial_failures_total") == 5
    assert value(registry, "kpr_hubble_reconnects_total") == 0
    status = reader.status()
    assert not status.up and status.error.startswith("UNAVAILABLE")

    failures = [r for r in caplog.records if "GetFlows failed" in r.getMessage()]
    assert len(failures) == 5
    warnings = [r for r in failures if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2  # same error again is logged at debug level only
    assert f"127.0.0.1:{port}" in warnings[0].getMessage()
    assert "UNAVAILABLE" in warnings[0].getMessage()

    observer.scripts = [[flow_response("f1", T0), HOLD]]
    server = FakeHubble(observer)
    server.port = port
    await server.start()
    try:
        step_sleep.release()
        await asyncio.wait_for(reader.ready.wait(), 5)
        assert value(registry, "kpr_hubble_up") == 1
    finally:
        await server.stop()


async def test_server_restart_mid_stream_resumes_without_duplicates(
        observer, registry, step_sleep, consumers) -> None:
    server = FakeHubble(observer)
    await server.start()
    observer.scripts = [[flow_response(f"f{i}", T0 + i * 1000) for i in range(1, 4)] + [HOLD]]
    reader = make_reader(server.address, registry, step_sleep, resume_overlap_seconds=2)
    consumer = consumers(reader)
    await consumer.wait_count(3)

    await server.stop()
    await step_sleep.next_call()
    assert not reader.ready.is_set() and value(registry, "kpr_hubble_up") == 0

    # the new server replays what falls in the overlap, slightly out of order, then new flows
    observer.scripts = [[
        flow_response("f2", T0 + 2000), flow_response("f1", T0 + 1000),
        flow_response("f3", T0 + 3000), flow_response("f5", T0 + 5000),
        flow_response("f4", T0 + 4000), HOLD,
    ]]
    await server.start()
    try:
        step_sleep.release()
        events = await consumer.wait_count(5)
        assert [e.uuid for e in events] == ["f1", "f2", "f3", "f5", "f4"]
        since = observer.requests[-1].since.ToNanoseconds()
        assert since == T0 + 3000 - 2 * 10**9
        assert value(registry, "kpr_hubble_reconnects_total") == 1
        assert value(registry, "kpr_hubble_flows_received_total") == 8  # messages, dups included
    finally:
        await server.stop()


async def test_abort_and_end_of_stream_reconnect(fake_hubble, observer, registry, step_sleep,
                                                 consumers, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    observer.scripts = [
        [flow_response("f1", T0), Abort(grpc.StatusCode.INTERNAL, "boom")],
        [flow_response("f2", T0 + 1)],  # ends normally: follow streams should not end
        [flow_response("f3", T0 + 2), HOLD],
    ]
    reader = make_reader(fake_hubble.address, registry, step_sleep)
    consumer = consumers(reader)
    assert await step_sleep.next_call() == 0.5 * (1 - 0.2 * random.Random(7).random())
    assert "INTERNAL: boom" in caplog.text and fake_hubble.address in caplog.text
    step_sleep.release()
    await step_sleep.next_call()
    assert "stream ended by the server" in caplog.text
    step_sleep.release()
    events = await consumer.wait_count(3)
    assert [e.uuid for e in events] == ["f1", "f2", "f3"]
    assert value(registry, "kpr_hubble_reconnects_total") == 2


async def test_plaintext_client_against_tls_server(observer, registry, step_sleep, consumers,
                                                   tls_files, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    server = FakeHubble(observer, tls_files.server_credentials())
    await server.start()
    try:
        reader = make_reader(server.address, registry, step_sleep)
        consumers(reader)
        await step_sleep.next_call()
        assert not reader.ready.is_set() and value(registry, "kpr_hubble_up") == 0
        [line] = [r.getMessage() for r in caplog.records]
        assert server.address in line and "UNAVAILABLE" in line
    finally:
        await server.stop()


async def test_tls_client_against_plaintext_server(fake_hubble, registry, step_sleep,
                                                   consumers, tls_files) -> None:
    reader = make_reader(fake_hubble.address, registry, step_sleep,
                         tls=HubbleTLSSettings(ca_file=str(tls_files.ca)))
    consumers(reader)
    await step_sleep.next_call()
    assert reader.status().error.startswith("UNAVAILABLE")


@pytest.mark.parametrize(("server_name", "ca", "works"), [
    ("instance.hubble-relay.cilium.io", "ca", True),
    ("", "ca", False),  # 127.0.0.1 is not in *.hubble-relay.cilium.io
    ("instance.hubble-relay.cilium.io", "other_ca", False),
])
async def test_tls_with_server_name(observer, registry, step_sleep, consumers, tls_files,
                                    server_name, ca, works) -> None:
    observer.scripts = [[flow_response("f1", T0), HOLD]]
    server = FakeHubble(observer, tls_files.server_credentials())
    await server.start()
    try:
        reader = make_reader(
            server.address, registry, step_sleep,
            tls=HubbleTLSSettings(ca_file=str(getattr(tls_files, ca)), server_name=server_name))
        consumer = consumers(reader)
        if works:
            [event] = await consumer.wait_count(1)
            assert event.uuid == "f1"
        else:
            await step_sleep.next_call()
            assert reader.status().error.startswith("UNAVAILABLE")
    finally:
        await server.stop()


@pytest.mark.parametrize("with_client_cert", [True, False])
async def test_mtls(observer, registry, step_sleep, consumers, tls_files,
                    with_client_cert) -> None:
    observer.scripts = [[flow_response("f1", T0), HOLD]]
    server = FakeHubble(observer, tls_files.server_credentials(require_client_auth=True))
    await server.start()
    client = (dict(cert_file=str(tls_files.client_cert), key_file=str(tls_files.client_key))
              if with_client_cert else {})
    try:
        reader = make_reader(
            f"tls://{server.address}", registry, step_sleep,
            tls=HubbleTLSSettings(ca_file=str(tls_files.ca),
                                  server_name="ui.hubble-relay.cilium.io", **client))
        consumer = consumers(reader)
        if with_client_cert:
            await consumer.wait_count(1)
            assert value(registry, "kpr_hubble_up") == 1
        else:
            await step_sleep.next_call()
            assert value(registry, "kpr_hubble_up") == 0 and not reader.ready.is_set()
    finally:
        await server.stop()


async def test_missing_certificate_file_is_retried_not_raised(registry, step_sleep, consumers,
                                                              tmp_path) -> None:
    reader = make_reader("127.0.0.1:1", registry, step_sleep,
                         tls=HubbleTLSSettings(ca_file=str(tmp_path / "missing.crt")))
    consumer = consumers(reader)
    await step_sleep.next_call()
    assert not consumer.task.done()
    assert "TLS files" in reader.status().error


async def test_unix_socket(observer, registry, consumers) -> None:
    observer.scripts = [[flow_response("f1", T0), HOLD]]
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = Path(d) / "hubble.sock"
        server = FakeHubble(observer)
        await server.start(f"unix://{path}")
        try:
            reader = make_reader(f"unix://{path}", registry)
            [event] = await consumers(reader).wait_count(1)
            assert event.uuid == "f1"
        finally:
            await server.stop()


def test_backoff_doubles_caps_and_jitters(registry) -> None:
    reader = make_reader("h:1", registry, backoff_initial_seconds=0.5, backoff_max_seconds=8,
                         backoff_jitter=0)
    assert [reader.backoff_delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert reader.backoff_delay(500) == 8
    jittery = HubbleReader(HubbleSettings(backoff_initial_seconds=1, backoff_max_seconds=8,
                                          backoff_jitter=0.5),
                           registry=type(registry)(), rng=random.Random(1))
    delays = [jittery.backoff_delay(4) for _ in range(200)]
    assert all(4 <= d <= 8 for d in delays) and len(set(delays)) > 100


async def test_events_cannot_be_iterated_twice(fake_hubble, registry, consumers) -> None:
    reader = make_reader(fake_hubble.address, registry)
    consumers(reader)
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await reader.events().__anext__()


async def test_stalled_stream_is_cancelled_by_the_watchdog(fake_hubble, observer, registry,
                                                           step_sleep, consumers) -> None:
    observer.scripts = [[flow_response("f1", T0), HOLD], [flow_response("f2", T0 + 1), HOLD]]
    observer.status_hangs = True
    reader = make_reader(fake_hubble.address, registry, step_sleep,
                         status_interval_seconds=0.01, request_timeout_seconds=0.02)
    consumer = consumers(reader)
    await consumer.wait_count(1)
    await step_sleep.next_call()  # two unanswered polls, nothing streamed in between
    assert reader.status().error.startswith("DEADLINE_EXCEEDED: stream stalled")
    assert not consumer.task.done()
    observer.status_hangs = False
    step_sleep.release()
    assert [e.uuid for e in await consumer.wait_count(2)] == ["f1", "f2"]


async def test_quiet_stream_with_a_live_server_stays_up(fake_hubble, observer, registry,
                                                        step_sleep, consumers) -> None:
    observer.scripts = [[flow_response("f1", T0), HOLD]]
    reader = make_reader(fake_hubble.address, registry, step_sleep,
                         status_interval_seconds=0.005, request_timeout_seconds=1)
    await consumers(reader).wait_count(1)
    async with asyncio.timeout(5):
        while observer.status_calls < 4:
            await observer.status_called.wait()
            observer.status_called.clear()
    assert reader.ready.is_set() and step_sleep.delays == []
