"""The stream watchdog from the moment GetFlows starts: a server that accepts the call
and never sends is redialled after ``first_message_timeout_seconds``; a first
message (a Relay node status too) hands over to the ServerStatus polls."""

from __future__ import annotations

import asyncio
import logging

from exporter._gen.relay import relay_pb2
from exporter.sources.hubble_status import StreamWatchdog
from exporter.sources.settings import HubbleSettings

from .conftest import HOLD, WAIT, flow_response, node_status_response
from .test_hubble import LOGGER, T0, make_reader, value


async def test_a_relay_that_never_sends_is_redialled_with_backoff(
        fake_hubble, observer, registry, step_sleep, consumers, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    observer.scripts = [[HOLD], [flow_response("f1", T0), HOLD]]
    reader = make_reader(fake_hubble.address, registry, step_sleep,
                         first_message_timeout_seconds=0.5, backoff_jitter=0)
    consumer = consumers(reader)
    assert await step_sleep.next_call() == 0.5  # the first backoff delay
    assert len(observer.requests) == 1 and not reader.ready.is_set()
    assert reader.status().error == (
        "DEADLINE_EXCEEDED: no message within 0.5s of starting GetFlows")
    [line] = [r for r in caplog.records if "GetFlows failed" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert fake_hubble.address in line.getMessage() and "no message within" in line.getMessage()
    assert value(registry, "kpr_hubble_dial_failures_total") == 1
    assert value(registry, "kpr_hubble_reconnects_total") == 0

    step_sleep.release()
    [event] = await consumer.wait_count(1)
    assert event.uuid == "f1" and reader.ready.is_set()
    assert len(observer.requests) == 2


async def test_a_node_status_is_a_first_message(fake_hubble, observer, registry, step_sleep,
                                                consumers) -> None:
    observer.scripts = [[node_status_response(relay_pb2.NODE_CONNECTED, "node-a"), HOLD]]
    reader = make_reader(fake_hubble.address, registry, step_sleep,
                         first_message_timeout_seconds=0.5, status_interval_seconds=0.005)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await consumers(reader).wait_count(1)
    # the answered polls (5 ms apart) are the clock: watch until twice the timeout
    async with asyncio.timeout(WAIT):
        while loop.time() - started < 1.0:
            observer.status_called.clear()
            await observer.status_called.wait()
    assert reader.ready.is_set() and step_sleep.delays == []
    assert len(observer.requests) == 1
    assert value(registry, "kpr_hubble_dial_failures_total") == 0


class _Call:
    def __init__(self) -> None:
        self.cancelled = 0
        self.cancel_seen = asyncio.Event()

    def cancel(self) -> None:
        self.cancelled += 1
        self.cancel_seen.set()


async def _no_poll() -> bool:
    return True


async def test_the_timeout_cancels_only_the_call_it_was_armed_for() -> None:
    watchdog = StreamWatchdog(HubbleSettings(first_message_timeout_seconds=0.01),
                              messages=lambda: 0, poll=_no_poll)
    old, new = _Call(), _Call()
    watchdog.start_call(old)
    assert watchdog.end_call() is None  # ended by itself: not the watchdog's doing
    watchdog.start_call(new)
    await asyncio.wait_for(new.cancel_seen.wait(), WAIT)
    assert (old.cancelled, new.cancelled) == (0, 1)
    assert watchdog.end_call() == "no message within 0.01s of starting GetFlows"


def test_zero_turns_the_first_message_timeout_off() -> None:
    watchdog = StreamWatchdog(HubbleSettings(first_message_timeout_seconds=0),
                              messages=lambda: 0, poll=_no_poll)
    call = _Call()
    watchdog.start_call(call)  # needs no loop: nothing is armed
    assert watchdog.end_call() is None and call.cancelled == 0
