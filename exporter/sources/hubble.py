"""Read flows from Hubble Relay or a Cilium agent (gRPC ``observer.Observer``).

``HubbleReader`` implements the ``FlowSource`` role: ``events()`` streams
``GetFlows(follow=true)`` with the configured allow/deny filters and yields
``model.Flow``, ``model.LostEvents`` and ``model.NodeStatus`` events; it never
ends on its own and never raises for transport problems. When the stream fails
(server down, refused, TLS mismatch, restart mid-stream) it logs one line with
the address and gRPC status, drops readiness, waits a capped exponential
backoff with jitter and dials again, resuming with ``since`` = last flow time
minus a small overlap; flows already delivered are dropped by uuid.

Transport: plaintext, TLS or mTLS (CA, client cert/key, server-name override
for certificates like ``*.hubble-relay.cilium.io``), TCP or ``unix://``.
A fresh channel is dialled for every attempt, so certificate files are re-read
and the reconnect timing is ours, not the gRPC library's.

Receiving: grpc.aio spends two event-loop turns and a hand-off from its poller
thread on every message, more than converting and accounting the flow. The
stream is therefore read by a worker thread with the sync API in
``SingleThreadedUnaryStream`` mode (it polls the completion queue itself) and
handed to the event loop in batches of raw messages (``ThreadedCall``);
conversion and everything after it stay on the loop. ``bench.bench_e2e``
measures both paths.

Self-metrics on the injected registry::

    kpr_hubble_up 1
    kpr_hubble_flows_received_total 81234567
    kpr_hubble_lost_events_total{source="HUBBLE_RING_BUFFER"} 7
    kpr_hubble_reconnects_total 2
    kpr_hubble_nodes{state="NODE_CONNECTED"} 3

``kpr_hubble_nodes`` exists only while the stream is up (no data is not zero):
Relay's peers from ``GetNodes`` (polled with ``ServerStatus``) and the
``node_status`` events in between; an agent counts as one connected node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import grpc.experimental
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily

from exporter._gen.flow import flow_pb2
from exporter._gen.observer import observer_pb2, observer_pb2_grpc
from exporter.model import (
    LOST_SOURCE_NAMES,
    NODE_STATE_NAMES,
    Event,
    Flow,
    LostEvents,
    NodeStatus,
    SourceStatus,
    enum_name,
)
from exporter.roles import Clock, system_clock
from exporter.sources.errors import HubbleError, MalformedMessage, SourceError
from exporter.sources.hubble_convert import HubbleConverter
from exporter.sources.settings import HubbleSettings, parse_filter

log = logging.getLogger(__name__)

GET_FLOWS = "/observer.Observer/GetFlows"
Sleep = Callable[[float], Awaitable[None]]

_CONNECTED, _UNAVAILABLE, _GONE, _ERROR = 1, 2, 3, 4
_NS = 1_000_000_000
_WARN_EVERY_SECONDS = 60.0
#: Sync channels whose streams are read by one thread, each with its own
#: connection (no backoff state shared with an earlier attempt's channel).
_CHANNEL_OPTIONS: list[tuple[str, str | int]] = [
    (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
    ("grpc.use_local_subchannel_pool", 1),
]


class _FlowsReceived:
    """``kpr_hubble_flows_received_total`` read from a plain int at scrape time
    (a ``Counter.inc()`` per flow would cost more than the flow's conversion)."""

    NAME = "kpr_hubble_flows_received"
    HELP = "Flow messages received from Hubble."

    def __init__(self, reader: HubbleReader) -> None:
        self._reader = reader

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.NAME, self.HELP)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.NAME, self.HELP)
        family.add_metric([], self._reader.flows_received)
        yield family


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
        self._request = self._build_request()

        self._up = Gauge(
            "kpr_hubble_up", "1 while the Hubble GetFlows stream is connected.", registry=registry
        )
        self._lost = Counter(
            "kpr_hubble_lost_events", "Events Hubble reported lost, by where they were lost.",
            ["source"], registry=registry,
        )
        self._reconnects = Counter(
            "kpr_hubble_reconnects", "Hubble stream reconnections.", registry=registry
        )
        self._nodes_gauge = Gauge(
            "kpr_hubble_nodes", "Hubble Relay peers by state (an agent counts as one node).",
            ["state"], registry=registry,
        )
        registry.register(_FlowsReceived(self))
        for name in LOST_SOURCE_NAMES.values():
            self._lost.labels(name)

        self._channel: grpc.Channel | None = None
        self._nodes: dict[str, int] = {}
        self._relay: bool | None = None  # None until ServerStatus told us
        self._server: dict[str, str] = {}
        self._error = "not connected yet"
        self._error_key: tuple[str, str] | None = None
        self._changed_at = clock()
        self._last_ns = 0  # newest flow time seen, for resuming
        self._replay_until = 0  # flows at or before this time may be duplicates
        self._seen: dict[str, None] = {}
        self._seen_old: dict[str, None] = {}
        self._running = False
        self._connected = asyncio.Event()  # a new stream delivered its first message
        self._call: ThreadedCall | None = None
        self._stalled = False
        self._other_messages = 0
        self._warned_at: dict[str, float] = {}

    # -- FlowSource ------------------------------------------------------------
    async def events(self) -> AsyncIterator[Event]:
        """Stream events forever, reconnecting as needed (cancel or ``aclose()`` to stop)."""
        if self._running:
            raise RuntimeError("HubbleReader.events() is already being iterated")
        self._running = True
        poller = asyncio.create_task(self._poll_forever(), name="hubble-status")
        failures = 0
        try:
            while True:
                if failures or self._last_ns:
                    self._reconnects.inc()
                delivered = False
                try:
                    self._channel = self._open_channel()
                    async for event in self._stream(self._channel):
                        delivered = True
                        yield event
                    self._failed("OK", "stream ended by the server")
                except grpc.aio.AioRpcError as exc:
                    self._failed(exc.code().name, exc.details() or "")
                except grpc.RpcError as exc:
                    if isinstance(exc, grpc.Call):
                        self._failed(exc.code().name, exc.details() or "")
                    else:
                        self._failed("UNKNOWN", str(exc))
                except asyncio.CancelledError:
                    if not self._stalled or _being_cancelled():
                        raise
                    self._failed("DEADLINE_EXCEEDED",
                                 "stream stalled: no message and no ServerStatus reply")
                except SourceError as exc:
                    self._failed("CLIENT", str(exc))
                finally:
                    self._stalled = False
                    self._call = None
                    await self._close_channel()
                failures = 1 if delivered else failures + 1
                await self._sleep(self.backoff_delay(failures))
        finally:
            poller.cancel()
            self._running = False
            self._set_down()
            await self._close_channel()

    def status(self) -> SourceStatus:
        nodes = self._nodes
        extras = dict(self._server)
        extras["mode"] = {True: "relay", False: "agent", None: "unknown"}[self._relay]
        extras["since"] = f"{self._changed_at:.3f}"
        return SourceStatus(
            up=self.ready.is_set(),
            address=self.settings.address,
            error="" if self.ready.is_set() else self._error,
            connected_nodes=tuple(sorted(n for n, s in nodes.items() if s == _CONNECTED)),
            unavailable_nodes=tuple(
                sorted(n for n, s in nodes.items() if s in (_UNAVAILABLE, _ERROR))
            ),
            extras=extras,
        )

    def backoff_delay(self, failures: int) -> float:
        """Delay before dial number ``failures + 1``: doubling from the initial
        delay, capped, minus a random fraction (jitter)."""
        initial, cap, jitter = self.settings.backoff()
        delay = min(cap, initial * 2 ** min(failures - 1, 62))
        return delay * (1 - jitter * self._rng.random())

    # -- the stream ----------------------------------------------------------------
    async def _stream(self, channel: grpc.Channel) -> AsyncIterator[Event]:
        request = observer_pb2.GetFlowsRequest()
        request.CopyFrom(self._request)
        self._replay_until = self._last_ns
        if self._last_ns:
            since = max(0, self._last_ns - int(self.settings.resume_overlap_seconds * _NS))
            request.since.FromNanoseconds(since)
        call = ThreadedCall(channel.unary_stream(
            GET_FLOWS, request_serializer=observer_pb2.GetFlowsRequest.SerializeToString
        ), request)
        self._call = call
        convert = self._converter.convert
        memory = self.settings.dedup_memory
        half = max(1, memory // 2)
        seen = self._seen
        first = True
        batches = aiter(call)
        try:
            async for batch in batches:
                if first:
                    first = False
                    self._set_up()
                for raw in batch:
                    try:
                        event = convert(raw)
                    except MalformedMessage as exc:
                        self._warn_limited("malformed", "skipped a message: %s", exc)
                        continue
                    if event.__class__ is Flow:
                        self.flows_received += 1
                        t = event.time_ns
                        uuid = event.uuid
                        if t <= self._replay_until and (
                            not memory or not uuid or uuid in seen or uuid in self._seen_old
                        ):
                            continue  # delivered before the reconnect
                        if t > self._last_ns:
                            self._last_ns = t
                        if memory and uuid:
                            seen[uuid] = None
                            if len(seen) >= half:
                                self._seen_old, self._seen = seen, {}
                                seen = self._seen
                        yield event
                    elif event is None:
                        continue
                    else:
                        self._observe(event)
                        yield event
        finally:
            await batches.aclose()

    def _observe(self, event: Event) -> None:
        self._other_messages += 1
        if isinstance(event, LostEvents):
            source = enum_name(LOST_SOURCE_NAMES, event.source)
            self._lost.labels(source).inc(event.count)
            self._warn_limited(
                "lost", "%d events lost (%s) on %s; see kpr_hubble_lost_events_total",
                event.count, source, event.node_name or "?",
            )
        elif isinstance(event, NodeStatus):
            for name in event.node_names:
                if event.state == _GONE:
                    self._nodes.pop(name, None)
                else:
                    self._nodes[name] = event.state
            if event.state in (_UNAVAILABLE, _ERROR):
                log.warning(
                    "hubble %s: nodes %s: %s %s", self.settings.address,
                    enum_name(NODE_STATE_NAMES, event.state), ",".join(event.node_names),
                    event.message,
                )
            self._export_nodes()

    def _build_request(self) -> observer_pb2.GetFlowsRequest:
        request = observer_pb2.GetFlowsRequest(follow=True)
        for entry in self.settings.allowlist:
            _fill_filter(request.whitelist.add(), entry)
        for entry in self.settings.denylist:
            _fill_filter(request.blacklist.add(), entry)
        return request

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
        self._up.set(1)
        self.ready.set()
        self._connected.set()
        self._changed_at = self._clock()
        self._error_key = None
        log.info("hubble %s: streaming flows", self.settings.address)
        if self._relay is False:
            self._export_nodes()

    def _set_down(self) -> None:
        self._up.set(0)
        self.ready.clear()
        self._nodes.clear()
        self._nodes_gauge.clear()

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

    # -- nodes and ServerStatus ------------------------------------------------------------
    def _export_nodes(self) -> None:
        if not self.ready.is_set():
            return
        counts = dict.fromkeys(NODE_STATE_NAMES, 0)
        if self._relay is False:
            counts[_CONNECTED] = 1
        else:
            for state in self._nodes.values():
                counts[state] = counts.get(state, 0) + 1
        for state, count in counts.items():
            self._nodes_gauge.labels(enum_name(NODE_STATE_NAMES, state)).set(count)

    async def poll_status(self) -> bool:
        """Ask the server for ``ServerStatus`` (and Relay for ``GetNodes``) once.

        Returns False when the server did not answer in time or is unreachable.
        Failures are logged at debug level; the stream decides ``up``.
        """
        channel = self._channel
        if channel is None:
            return True
        stub = observer_pb2_grpc.ObserverStub(channel)
        timeout = self.settings.request_timeout_seconds
        try:
            status = await asyncio.to_thread(
                stub.ServerStatus, observer_pb2.ServerStatusRequest(), timeout=timeout
            )
            self._relay = status.HasField("num_connected_nodes")
            self._server = {
                "version": status.version,
                "num_flows": str(status.num_flows),
                "max_flows": str(status.max_flows),
                "seen_flows": str(status.seen_flows),
                "flows_rate": f"{status.flows_rate:g}",
            }
            if self._relay:
                self._server["num_connected_nodes"] = str(status.num_connected_nodes.value)
                self._server["num_unavailable_nodes"] = str(status.num_unavailable_nodes.value)
                nodes = await asyncio.to_thread(
                    stub.GetNodes, observer_pb2.GetNodesRequest(), timeout=timeout
                )
                self._nodes = {
                    node.name: node.state for node in nodes.nodes if node.state != _GONE
                }
        except grpc.RpcError as exc:
            if not isinstance(exc, grpc.Call):
                raise
            log.debug("hubble %s: status poll failed: %s %s", self.settings.address,
                      exc.code().name, exc.details())
            return exc.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                      grpc.StatusCode.UNAVAILABLE)
        self._export_nodes()
        return True

    async def _poll_forever(self) -> None:
        """Poll at once on every new stream, then every ``status_interval_seconds``.

        Watchdog: when a poll gets no answer and the stream delivered nothing
        since the previous poll, the connection is taken for dead (a half-open
        TCP connection never fails by itself) and the stream is cancelled.
        """
        previous = -1
        while True:
            await self.ready.wait()
            if self._connected.is_set():
                self._connected.clear()
                previous = -1
            count = self.flows_received + self._other_messages
            call = self._call
            answered = await self.poll_status()
            if not answered and count == previous and call is not None and call is self._call:
                self._stalled = True
                call.cancel()
            previous = count
            try:
                await asyncio.wait_for(
                    self._connected.wait(), self.settings.status_interval_seconds
                )
            except TimeoutError:
                pass

    # -- channels ------------------------------------------------------------------------------
    def _open_channel(self) -> grpc.Channel:
        settings = self.settings
        if not settings.tls_enabled:
            return grpc.insecure_channel(settings.target, options=_CHANNEL_OPTIONS)
        tls = settings.tls
        try:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca_file),
                private_key=_read(tls.key_file),
                certificate_chain=_read(tls.cert_file),
            )
        except OSError as exc:
            raise HubbleError(settings.address, "CLIENT", f"TLS files: {exc}") from exc
        options = list(_CHANNEL_OPTIONS)
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        return grpc.secure_channel(settings.target, credentials, options=options)

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


class ThreadedCall:
    """A sync unary-stream call run by a worker thread, read on the event loop as
    batches of raw messages (see the module docstring).

    The worker wakes the loop once per ``batch`` messages; the loop also looks
    every ``max_delay`` seconds, so a quiet stream is not held back. The worker
    waits while ``max_pending`` messages are queued, so back-pressure reaches the
    server through HTTP/2 flow control. ``async for batch in call`` ends when the
    server ends the stream, raises the stream's ``grpc.RpcError``, or raises
    ``asyncio.CancelledError`` after ``cancel()``.
    """

    def __init__(self, multicallable: grpc.UnaryStreamMultiCallable, request: object, *,
                 batch: int = 256, max_delay: float = 0.05, max_pending: int = 65_536) -> None:
        self._multicallable = multicallable
        self._request = request
        self.batch = batch
        self.max_delay = max_delay
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._room = threading.Event()
        self._ended = False
        self._cancelled = False
        self._error: BaseException | None = None
        self._call: grpc.Call | None = None

    def cancel(self) -> None:
        """Stop the stream (from any thread); the reading side raises ``CancelledError``."""
        self._cancelled = True
        self._room.set()
        call = self._call
        if call is not None:
            call.cancel()

    def _pump(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event,
              done: asyncio.Future[None]) -> None:
        try:
            call = self._call = self._multicallable(self._request)
            if self._cancelled:
                call.cancel()
            lock, batch, limit, room = self._lock, self.batch, self.max_pending, self._room
            for raw in call:
                with lock:
                    pending = self._pending
                    pending.append(raw)
                    queued = len(pending)
                if queued == batch:
                    loop.call_soon_threadsafe(wake.set)
                elif queued >= limit:
                    room.clear()
                    loop.call_soon_threadsafe(wake.set)
                    room.wait()
                    if self._cancelled:
                        break
        except BaseException as exc:  # noqa: BLE001 - raised on the loop
            self._error = exc
        finally:
            self._ended = True
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(wake.set)
                loop.call_soon_threadsafe(done.set_result, None)

    def __aiter__(self) -> AsyncIterator[list[bytes]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[bytes]]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        done: asyncio.Future[None] = loop.create_future()
        threading.Thread(target=self._pump, args=(loop, wake, done), name="hubble-stream",
                         daemon=True).start()
        try:
            while True:
                if not wake.is_set():
                    timer = loop.call_later(self.max_delay, wake.set)
                    await wake.wait()
                    timer.cancel()
                wake.clear()
                with self._lock:
                    batch, self._pending = self._pending, []
                    ended = self._ended
                self._room.set()
                if batch:
                    yield batch
                if ended:
                    break
            if self._cancelled:
                raise asyncio.CancelledError
            if self._error is not None:
                raise self._error
        finally:
            self.cancel()
            await done


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _fill_filter(target: flow_pb2.FlowFilter, entry: str) -> None:
    for name, value in parse_filter(entry):
        if name == "event_type":
            kind, sub = value
            target.event_type.add(type=kind, match_sub_type=sub is not None, sub_type=sub or 0)
        else:
            getattr(target, name).append(value)

