"""Every dial's channel is released: TCP connects counted on the server side per reader attempt.

A closed sync channel whose single-threaded stream left a completion unread keeps its
call, and the call keeps the channel's subchannel, which goes on dialling by itself
(gRPC's own reconnect backoff, about 1 s at first). ``CountingListener`` stands in
front of (or instead of) the server and counts what reaches it; the reader's own
backoff is held by the injected ``StepSleep``, so between two attempts only a leaked
channel could connect.
"""

from __future__ import annotations

import grpc
import pytest

from .conftest import HOLD, WAIT, Abort, FakeHubble, flow_response
from .tcp_counter import CountingListener
from .test_hubble import T0, make_reader, value

#: How long a held reader is watched for connects it did not make. A leaked channel
#: dials again after gRPC's initial reconnect backoff (1 s, +-20 %), so this window
#: would see at least one extra connect per leaked channel.
LEAK_WINDOW = 2.5


@pytest.fixture
async def not_a_relay():
    listener = CountingListener()  # closes every connection: the handshake fails
    await listener.start()
    yield listener
    await listener.stop()


async def test_each_failed_dial_connects_once_and_leaves_no_channel_behind(
        not_a_relay, registry, step_sleep, consumers) -> None:
    reader = make_reader(not_a_relay.address, registry, step_sleep)
    consumers(reader)
    for attempt in (1, 2, 3):
        await step_sleep.next_call()
        assert not_a_relay.connects == attempt
        if attempt < 3:
            step_sleep.release()
    # The reader sleeps in its third backoff: any further connect is a leaked channel's.
    with pytest.raises(TimeoutError):
        await not_a_relay.wait_until(lambda listener: listener.connects > 3, LEAK_WINDOW)
    assert not_a_relay.connects == 3
    assert value(registry, "kpr_hubble_dial_failures_total") == 3
    assert value(registry, "kpr_hubble_reconnects_total") == 0


async def test_a_lost_stream_closes_its_connection_before_the_next_dial(
        observer, registry, step_sleep, consumers) -> None:
    server = FakeHubble(observer)
    await server.start()
    proxy = CountingListener(upstream=server.port)
    await proxy.start()
    observer.scripts = [
        [flow_response("f1", T0), Abort(grpc.StatusCode.INTERNAL, "relay restarting")],
        [flow_response("f2", T0 + 1)],  # ended by the server
        [flow_response("f3", T0 + 2), HOLD],
    ]
    try:
        reader = make_reader(proxy.address, registry, step_sleep)
        consumer = consumers(reader)
        for attempt in (1, 2):
            await step_sleep.next_call()
            # the attempt's channel is closed: its connection goes away, nothing redials
            await proxy.wait_until(lambda p: p.open == 0, WAIT)
            assert proxy.connects == attempt
            step_sleep.release()
        assert [e.uuid for e in await consumer.wait_count(3)] == ["f1", "f2", "f3"]
        assert proxy.connects == 3 and proxy.open == 1
        assert value(registry, "kpr_hubble_reconnects_total") == 2
        assert value(registry, "kpr_hubble_dial_failures_total") == 0
    finally:
        await proxy.stop()
        await server.stop()
