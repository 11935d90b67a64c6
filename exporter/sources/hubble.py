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
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
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

        self._channel: grpc.aio.Channel | None = None
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
        self._call: grpc.aio.UnaryStreamCall | None = None
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
    async def _stream(self, channel: grpc.aio.Channel) -> AsyncIterator[Event]:
        request = observer_pb2.GetFlowsRequest()
        request.CopyFrom(self._request)
        self._replay_until = self._last_ns
        if self._last_ns:
            since = max(0, self._last_ns - int(self.settings.resume_overlap_seconds * _NS))
            request.since.FromNanoseconds(since)
        call = channel.unary_stream(
            GET_FLOWS, request_serializer=observer_pb2.GetFlowsRequest.SerializeToString
        )(request)
        self._call = call
        convert = self._converter.convert
        memory = self.settings.dedup_memory
        half = max(1, memory // 2)
        seen = self._seen
        first = True
        async for raw in call:
            if first:
                first = False
                self._set_up()
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
            status = await stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=timeout)
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
                nodes = await stub.GetNodes(observer_pb2.GetNodesRequest(), timeout=timeout)
                self._nodes = {
                    node.name: node.state for node in nodes.nodes if node.state != _GONE
                }
        except grpc.aio.AioRpcError as exc:
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
    def _open_channel(self) -> grpc.aio.Channel:
        settings = self.settings
        if not settings.tls_enabled:
            return grpc.aio.insecure_channel(settings.target)
        tls = settings.tls
        try:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca_file),
                private_key=_read(tls.key_file),
                certificate_chain=_read(tls.cert_file),
            )
        except OSError as exc:
            raise HubbleError(settings.address, "CLIENT", f"TLS files: {exc}") from exc
        options = []
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        return grpc.aio.secure_channel(settings.target, credentials, options=options)

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()


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

