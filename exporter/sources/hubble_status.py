"""What the Hubble server says about itself, and the watchdog of the GetFlows stream.

``RelayStatus`` keeps the server's ``ServerStatus`` (and Relay's ``GetNodes``
peers, updated in between by ``node_status`` messages) and exports
``kpr_hubble_nodes`` while the stream is up (no data is not zero); an agent counts
as one connected node.

``StreamWatchdog`` decides when an open stream is dead, from the moment the call
starts:

* before the first message: no message at all (Relay always starts with a
  ``node_status``) within ``first_message_timeout_seconds`` cancels the call;
* afterwards: a ``ServerStatus`` poll left unanswered while the stream delivered
  nothing since the previous poll cancels it (a half-open TCP connection never
  fails by itself). Polls run at once on every new stream, then every
  ``status_interval_seconds``.

The reader asks ``end_call()`` why its call ended, to log the reason and reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from prometheus_client import CollectorRegistry, Gauge

from exporter._gen.observer import observer_pb2, observer_pb2_grpc
from exporter.model import NODE_STATE_NAMES, NodeStatus, enum_name
from exporter.sources.hubble_call import ThreadedCall
from exporter.sources.settings import HubbleSettings

log = logging.getLogger(__name__)

CONNECTED, UNAVAILABLE, GONE, ERROR = 1, 2, 3, 4


class RelayStatus:
    """Server facts and relay peers; see the module docstring."""

    def __init__(self, address: str, registry: CollectorRegistry) -> None:
        self.address = address
        self.relay: bool | None = None  # None until ServerStatus told us
        self.server: dict[str, str] = {}
        self.nodes: dict[str, int] = {}
        self.up = False
        self._gauge = Gauge(
            "kpr_hubble_nodes", "Hubble Relay peers by state (an agent counts as one node).",
            ["state"], registry=registry,
        )

    def set_up(self, up: bool) -> None:
        self.up = up
        if up:
            if self.relay is False:
                self.export()
        else:
            self.nodes.clear()
            self._gauge.clear()

    def observe(self, event: NodeStatus) -> None:
        """A ``node_status`` message of the stream."""
        for name in event.node_names:
            if event.state == GONE:
                self.nodes.pop(name, None)
            else:
                self.nodes[name] = event.state
        if event.state in (UNAVAILABLE, ERROR):
            log.warning(
                "hubble %s: nodes %s: %s %s", self.address,
                enum_name(NODE_STATE_NAMES, event.state), ",".join(event.node_names),
                event.message,
            )
        self.export()

    def export(self) -> None:
        if not self.up:
            return
        counts = dict.fromkeys(NODE_STATE_NAMES, 0)
        if self.relay is False:
            counts[CONNECTED] = 1
        else:
            for state in self.nodes.values():
                counts[state] = counts.get(state, 0) + 1
        for state, count in counts.items():
            self._gauge.labels(enum_name(NODE_STATE_NAMES, state)).set(count)

    async def poll(self, channel: grpc.Channel, timeout: float) -> bool:
        """Ask for ``ServerStatus`` (and Relay for ``GetNodes``) once.

        Returns False when the server did not answer in time or is unreachable.
        Failures are logged at debug level; the stream decides ``up``.
        """
        stub = observer_pb2_grpc.ObserverStub(channel)
        try:
            status = await asyncio.to_thread(
                stub.ServerStatus, observer_pb2.ServerStatusRequest(), timeout=timeout
            )
            self.relay = status.HasField("num_connected_nodes")
            self.server = {
                "version": status.version,
                "num_flows": str(status.num_flows),
                "max_flows": str(status.max_flows),
                "seen_flows": str(status.seen_flows),
                "flows_rate": f"{status.flows_rate:g}",
            }
            if self.relay:
                self.server["num_connected_nodes"] = str(status.num_connected_nodes.value)
                self.server["num_unavailable_nodes"] = str(status.num_unavailable_nodes.value)
                nodes = await asyncio.to_thread(
                    stub.GetNodes, observer_pb2.GetNodesRequest(), timeout=timeout
                )
                self.nodes = {node.name: node.state for node in nodes.nodes if node.state != GONE}
        except grpc.RpcError as exc:
            if not isinstance(exc, grpc.Call):
                raise
            log.debug("hubble %s: status poll failed: %s %s", self.address,
                      exc.code().name, exc.details())
            return exc.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                      grpc.StatusCode.UNAVAILABLE)
        self.export()
        return True


class StreamWatchdog:
    """Cancels a GetFlows call that is taken for dead; see the module docstring.

    ``messages`` counts the stream's messages so far; ``poll`` asks for
    ``ServerStatus`` once (True when answered).
    """

    def __init__(self, settings: HubbleSettings, *, messages: Callable[[], int],
                 poll: Callable[[], Awaitable[bool]]) -> None:
        self._settings = settings
        self._messages = messages
        self._poll = poll
        self._call: ThreadedCall | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reason: str | None = None
        self._streaming = asyncio.Event()  # the current call delivered its first message
        self._fresh = asyncio.Event()  # ... and the poll loop has not seen it yet

    def start_call(self, call: ThreadedCall) -> None:
        """A new call started: arm the first-message timeout."""
        self._call, self._reason = call, None
        timeout = self._settings.first_message_timeout_seconds
        if timeout > 0:
            self._timer = asyncio.get_running_loop().call_later(
                timeout, self._stall, call,
                f"no message within {timeout:g}s of starting GetFlows")

    def first_message(self) -> None:
        """The call delivered its first message: polls take over from the timeout."""
        self._disarm()
        self._streaming.set()
        self._fresh.set()

    def end_call(self) -> str | None:
        """The call ended: why the watchdog cancelled it, or None when it did not."""
        self._disarm()
        self._streaming.clear()
        reason, self._reason, self._call = self._reason, None, None
        return reason

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stall(self, call: ThreadedCall, reason: str) -> None:
        if call is self._call and self._reason is None:
            self._reason = reason
            call.cancel()

    async def run(self) -> None:
        """The poll loop; runs while the reader does."""
        previous = -1
        while True:
            await self._streaming.wait()
            if self._fresh.is_set():
                self._fresh.clear()
                previous = -1
            count = self._messages()
            call = self._call
            answered = await self._poll()
            if not answered and count == previous and call is not None:
                self._stall(call, "stream stalled: no message and no ServerStatus reply")
            previous = count
            try:
                await asyncio.wait_for(self._fresh.wait(), self._settings.status_interval_seconds)
            except TimeoutError:
                pass
