"""Read flows from Hubble Relay or a Cilium agent (gRPC ``observer.Observer``).

``HubbleReader`` implements the ``FlowSource`` role: ``events()`` streams
``GetFlows(follow=true)`` with the configured allow/deny filters and yields
``model.Flow``, ``model.LostEvents`` and ``model.NodeStatus`` events; it never
ends on its own and never raises for transport problems. When the stream fails
(server down, refused, TLS mismatch, restart mid-stream, no message in time) it
logs one line with the address and gRPC status, drops readiness, waits a capped
exponential backoff with jitter and dials again, resuming with ``since`` = last
flow time minus a small overlap; flows already delivered are dropped by uuid.

Transport: plaintext, TLS or mTLS (CA, client cert/key, server-name override
for certificates like ``*.hubble-relay.cilium.io``), TCP or ``unix://``.

The reader composes small units: ``hubble_call`` (the channel and the stream read
by a worker thread), ``hubble_status`` (``ServerStatus``/``GetNodes`` and the
stream watchdog), ``hubble_replay`` (resume point and duplicate filter) and
``hubble_convert`` (wire messages to model events).

Self-metrics on the injected registry::

    kpr_hubble_up 1
    kpr_hubble_flows_received_total 81234567
    kpr_hubble_lost_events_total{source="HUBBLE_RING_BUFFER"} 7
    kpr_hubble_reconnects_total 2
    kpr_hubble_dial_failures_total 5
    kpr_hubble_nodes{state="NODE_CONNECTED"} 3

Reconnects and dial failures are told apart (``hubble_metrics``);
``kpr_hubble_nodes`` exists only while the stream is up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from prometheus_client import CollectorRegistry

from exporter._gen.observer import observer_pb2
from exporter.model import (
    LOST_SOURCE_NAMES,
    Event,
    Flow,
    LostEvents,
    NodeStatus,
    SourceStatus,
    enum_name,
)
from exporter.roles import Clock, system_clock
from exporter.sources.errors import MalformedMessage, SourceError
from exporter.sources.hubble_call import GET_FLOWS, ThreadedCall, flows_request, open_channel
from exporter.sources.hubble_convert import HubbleConverter
from exporter.sources.hubble_metrics import HubbleMetrics
from exporter.sources.hubble_replay import ReplayFilter
from exporter.sources.hubble_status import (
    CONNECTED,
    ERROR,
    UNAVAILABLE,
    RelayStatus,
    StreamWatchdog,
)
from exporter.sources.settings import HubbleSettings

__all__ = ["GET_FLOWS", "HubbleReader", "ThreadedCall"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]

_WARN_EVERY_SECONDS = 60.0


class HubbleReader:
    """A ``FlowSource`` over Hubble's GetFlows stream; see the module docstring.

    ``ready`` is set once a stream delivered its first message and cleared when
    it fails. ``sleep`` and ``rng`` drive the reconnect backoff (inject them in
    tests); ``clock`` stamps status changes.
    """

    def __init__(
        self,
        settings: HubbleSettings,
        *,
        registry: CollectorRegistry,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        converter: HubbleConverter | None = None,
    ) -> None:
        self.settings = settings
        self.ready = asyncio.Event()
        self.flows_received = 0
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._converter = converter or HubbleConverter()
        self._request = flows_request(settings)

        self._metrics = HubbleMetrics(registry, lambda: self.flows_received)
        self._status = RelayStatus(settings.address, registry)
        self._replay = ReplayFilter(settings.dedup_memory, settings.resume_overlap_seconds)
        self._watchdog = StreamWatchdog(settings, messages=self._messages, poll=self.poll_status)
        self._channel: grpc.Channel | None = None
        self._error = "not connected yet"
        self._error_key: tuple[str, str] | None = None
        self._changed_at = clock()
        self._running = False
        self._established = False  # the current attempt delivered its first message
        self._other_messages = 0
        self._warned_at: dict[str, float] = {}

    # -- FlowSource ------------------------------------------------------------
    async def events(self) -> AsyncIterator[Event]:
        """Stream events forever, reconnecting as needed (cancel or ``aclose()`` to stop)."""
        if self._running:
            raise RuntimeError("HubbleReader.events() is already being iterated")
        self._running = True
        watchdog = asyncio.create_task(self._watchdog.run(), name="hubble-status")
        failures = 0
        try:
            while True:
                self._established = False
                try:
                    self._channel = open_channel(self.settings)
                    async for event in self._stream(self._channel):
                        yield event
                    self._failed("OK", "stream ended by the server")
                except grpc.RpcError as exc:
                    if isinstance(exc, grpc.Call):
                        self._failed(exc.code().name, exc.details() or "")
                    else:
                        self._failed("UNKNOWN", str(exc))
                except asyncio.CancelledError:
                    reason = self._watchdog.end_call()
                    if reason is None or _being_cancelled():
                        raise
                    self._failed("DEADLINE_EXCEEDED", reason)
                except SourceError as exc:
                    self._failed("CLIENT", str(exc))
                finally:
                    self._watchdog.end_call()
                    await self._close_channel()
                if self._established:
                    self._metrics.reconnects.inc()
                    failures = 1
                else:
                    self._metrics.dial_failures.inc()
                    failures += 1
                await self._sleep(self.backoff_delay(failures))
        finally:
            watchdog.cancel()
            self._running = False
            self._set_down()
            await self._close_channel()

    def status(self) -> SourceStatus:
        nodes = self._status.nodes
        extras = dict(self._status.server)
        extras["mode"] = {True: "relay", False: "agent", None: "unknown"}[self._status.relay]
        extras["since"] = f"{self._changed_at:.3f}"
        return SourceStatus(
            up=self.ready.is_set(),
            address=self.settings.address,
            error="" if self.ready.is_set() else self._error,
            connected_nodes=tuple(sorted(n for n, s in nodes.items() if s == CONNECTED)),
            unavailable_nodes=tuple(
                sorted(n for n, s in nodes.items() if s in (UNAVAILABLE, ERROR))
            ),
            extras=extras,
        )

    def backoff_delay(self, failures: int) -> float:
        """Delay before dial number ``failures + 1``: doubling from the initial
        delay, capped, minus a random fraction (jitter)."""
        initial, cap, jitter = self.settings.backoff()
        delay = min(cap, initial * 2 ** min(failures - 1, 62))
        return delay * (1 - jitter * self._rng.random())

    async def poll_status(self) -> bool:
        """Ask the server for ``ServerStatus`` (and Relay for ``GetNodes``) once.

        Returns False when the server did not answer in time or is unreachable.
        """
        channel = self._channel
        if channel is None:
            return True
        return await self._status.poll(channel, self.settings.request_timeout_seconds)

    # -- the stream ----------------------------------------------------------------
    async def _stream(self, channel: grpc.Channel) -> AsyncIterator[Event]:
        request = observer_pb2.GetFlowsRequest()
        request.CopyFrom(self._request)
        since = self._replay.resume_since()
        if since is not None:
            request.since.FromNanoseconds(since)
        call = ThreadedCall(channel.unary_stream(
            GET_FLOWS, request_serializer=observer_pb2.GetFlowsRequest.SerializeToString
        ), request)
        self._watchdog.start_call(call)
        convert = self._converter.convert
        admit = self._replay.admit
        batches = aiter(call)
        try:
            async for batch in batches:
                if not self._established:
                    self._set_up()
                for raw in batch:
                    try:
                        event = convert(raw)
                    except MalformedMessage as exc:
                        self._warn_limited("malformed", "skipped a message: %s", exc)
                        continue
                    if event.__class__ is Flow:
                        self.flows_received += 1
                        if admit(event.time_ns, event.uuid):
                            yield event
                    elif event is not None:
                        self._observe(event)
                        yield event
        finally:
            await batches.aclose()

    def _messages(self) -> int:
        return self.flows_received + self._other_messages

    def _observe(self, event: Event) -> None:
        self._other_messages += 1
        if isinstance(event, LostEvents):
            source = enum_name(LOST_SOURCE_NAMES, event.source)
            self._metrics.lost.labels(source).inc(event.count)
            self._warn_limited(
                "lost", "%d events lost (%s) on %s; see kpr_hubble_lost_events_total",
                event.count, source, event.node_name or "?",
            )
        elif isinstance(event, NodeStatus):
            self._status.observe(event)

    def _warn_limited(self, key: str, message: str, *args: object) -> None:
        """Log a warning of this kind at most once a minute (debug otherwise)."""
        now = self._clock()
        level = logging.DEBUG
        if now - self._warned_at.get(key, float("-inf")) >= _WARN_EVERY_SECONDS:
            self._warned_at[key] = now
            level = logging.WARNING
        log.log(level, "hubble %s: " + message, self.settings.address, *args)

    # -- up / down ---------------------------------------------------------------------
    def _set_up(self) -> None:
        self._established = True
        self._watchdog.first_message()
        self._metrics.up.set(1)
        self.ready.set()
        self._changed_at = self._clock()
        self._error_key = None
        log.info("hubble %s: streaming flows", self.settings.address)
        self._status.set_up(True)

    def _set_down(self) -> None:
        self._metrics.up.set(0)
        self.ready.clear()
        self._status.set_up(False)

    def _failed(self, code: str, details: str) -> None:
        was_up = self.ready.is_set()
        self._set_down()
        self._error = f"{code}: {details}" if details else code
        if was_up:
            self._changed_at = self._clock()
        key = (code, details)
        level = logging.WARNING if key != self._error_key else logging.DEBUG
        self._error_key = key
        log.log(level, "hubble %s: GetFlows failed: %s (retrying with backoff)",
                self.settings.address, self._error,
                extra={"kv": {"address": self.settings.address, "code": code}})

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

