"""The simulated Hubble Relay: the Observer gRPC API over a ``Timeline`` (grpc.aio).

Served like Relay serves it (``reference/hubble-api.md`` §1-§3):

* ``GetFlows``: a ``node_status`` NODE_CONNECTED first, then history chosen by
  ``number`` (per node, newest unless ``first``), ``since`` (takes precedence for
  the start) and ``until`` (ends the stream, follow or not), then, with
  ``follow``, new events as the timeline releases them. ``first`` with ``follow``
  is INVALID_ARGUMENT. Filters as in ``filters``; lost events bypass them. A
  follower that falls behind the ring gets a HUBBLE_RING_BUFFER lost event.
* ``ServerStatus`` (relay-style, with connected / unavailable nodes), ``GetNodes``,
  ``GetNamespaces``; agent and debug events are UNIMPLEMENTED, as on Relay.
* ``grpc.health.v1.Health/Check`` answering SERVING for ``hubble.server.Observer``
  (hand-encoded: the health package is not a dependency).
* every call sends the ``hubble-relay-version`` header.
* during a scenario's relay outage, open streams end with UNAVAILABLE and new
  calls are refused with UNAVAILABLE (health says NOT_SERVING).

Flow messages are serialised once per event and streamed as bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

import grpc

from exporter._gen.observer import observer_pb2
from exporter.model import Event, Flow, LostEvents
from exporter.simulator.encode import node_status, response_bytes
from exporter.simulator.filters import Predicate, UnsupportedFilter, compile_filters
from exporter.simulator.timeline import Timeline

RELAY_VERSION: Final = "1.19.4"
RELAY_NODE: Final = "hubble-relay"
VERSION_HEADER: Final = "hubble-relay-version"
AGENT_RING_CAPACITY: Final = 4095
HEALTH_SERVICES: Final = frozenset({"", "hubble.server.Observer"})
HUBBLE_RING_BUFFER: Final = 3
NODE_CONNECTED: Final = 1
NODE_STATE_CONNECTED: Final = 1

_NS: Final = 1_000_000_000
_SERVING: Final = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}
_NOT_SERVING: Final = b"\x08\x02"
_OUTAGE: Final = "hubble-relay unavailable (simulated outage)"


def _identity(raw: bytes) -> bytes:
    return raw


def _timestamp_ns(ts: Any) -> int:
    return ts.seconds * _NS + ts.nanos


def _event_time(event: Event) -> int:
    return getattr(event, "time_ns", 0)


def _health_service(raw: bytes) -> str:
    """The ``service`` field (1) of a ``HealthCheckRequest``."""
    pos, name = 0, ""
    try:
        while pos < len(raw):
            key, pos = _varint(raw, pos)
            wire = key & 7
            if wire == 2:
                size, pos = _varint(raw, pos)
                if key >> 3 == 1:
                    name = raw[pos:pos + size].decode()
                pos += size
            elif wire == 0:
                _, pos = _varint(raw, pos)
            else:
                raise ValueError("unexpected wire type")
    except (IndexError, UnicodeDecodeError) as exc:
        raise ValueError("malformed HealthCheckRequest") from exc
    return name


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


class ObserverServer:
    """Serves one timeline over the Observer API; build handlers with ``generic_handlers()``.

    This is Relay; ``exporter.simulator.agent_hubble`` overrides the hooks below to serve
    one node's agent instead."""

    version_header = VERSION_HEADER

    def __init__(self, timeline: Timeline, *, version: str = RELAY_VERSION) -> None:
        self.timeline = timeline
        self.version = version
        self._metadata = ((self.version_header, version),)

    def _visible(self, event: Event) -> bool:
        """Whether this server streams ``event`` at all (Relay: every node's)."""
        return True

    def _nodes(self) -> tuple[str, ...]:
        """The nodes whose flows this server streams."""
        return tuple(self.timeline.nodes)

    @property
    def server_node(self) -> str:
        """The node name this server's own messages (lost events) carry."""
        return RELAY_NODE

    def _greeting(self) -> bytes | None:
        """The message a stream starts with (Relay: its connected nodes)."""
        tl = self.timeline
        return node_status(NODE_CONNECTED, tl.nodes, tl.now_ns)

    def generic_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        observer = grpc.method_handlers_generic_handler("observer.Observer", {
            "GetFlows": grpc.unary_stream_rpc_method_handler(
                self.get_flows, request_deserializer=observer_pb2.GetFlowsRequest.FromString,
                response_serializer=_identity),
            "ServerStatus": grpc.unary_unary_rpc_method_handler(
                self.server_status,
                request_deserializer=observer_pb2.ServerStatusRequest.FromString,
                response_serializer=observer_pb2.ServerStatusResponse.SerializeToString),
            "GetNodes": grpc.unary_unary_rpc_method_handler(
                self.get_nodes, request_deserializer=observer_pb2.GetNodesRequest.FromString,
                response_serializer=observer_pb2.GetNodesResponse.SerializeToString),
            "GetNamespaces": grpc.unary_unary_rpc_method_handler(
                self.get_namespaces,
                request_deserializer=observer_pb2.GetNamespacesRequest.FromString,
                response_serializer=observer_pb2.GetNamespacesResponse.SerializeToString),
        })
        health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.health_check, request_deserializer=_identity, response_serializer=_identity),
        })
        return (observer, health)

    # -- helpers -------------------------------------------------------------

    async def _open(self, context: grpc.aio.ServicerContext) -> None:
        if self.timeline.outage is not None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, _OUTAGE)
        await context.send_initial_metadata(self._metadata)

    def _payload(self, seq: int, event: Event) -> bytes:
        payload = self.timeline.payload(seq)
        if payload is None:
            payload = response_bytes(event)
            self.timeline.store_payload(seq, payload)
        return payload

    # -- GetFlows --------------------------------------------------------------

    async def get_flows(self, request: observer_pb2.GetFlowsRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        if request.first and request.follow:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "first cannot be specified with follow")
        try:
            predicate = compile_filters(request.whitelist, request.blacklist)
        except UnsupportedFilter as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        await self._open(context)
        tl = self.timeline
        end = tl.total  # history / live boundary, fixed before the first yield
        greeting = self._greeting()
        if greeting is not None:
            yield greeting
        since = _timestamp_ns(request.since) if request.HasField("since") else None
        until = _timestamp_ns(request.until) if request.HasField("until") else None
        for seq in self._history(request, predicate, since, end):
            if seq < tl.first_seq:
                continue  # overwritten while we were streaming
            event = tl.event(seq)
            if until is not None and _event_time(event) > until:
                return
            yield self._payload(seq, event)
        if not request.follow:
            return
        cursor = end
        while True:
            if tl.outage is not None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, _OUTAGE)
            if cursor >= tl.total:
                await tl.changed()
                continue
            if cursor < tl.first_seq:
                missed = tl.first_seq - cursor
                cursor = tl.first_seq
                yield response_bytes(LostEvents(node_name=self.server_node, source=HUBBLE_RING_BUFFER,
                                                count=missed, time_ns=tl.now_ns))
                continue
            event = tl.event(cursor)
            seq, cursor = cursor, cursor + 1
            if until is not None and _event_time(event) > until:
                return
            if not self._visible(event):
                continue
            if predicate is None or not isinstance(event, Flow) or predicate(event):
                yield self._payload(seq, event)

    def _history(self, request: observer_pb2.GetFlowsRequest, predicate: Predicate | None,
                 since: int | None, end: int) -> list[int]:
        """Sequence numbers of the history part, oldest first."""
        tl = self.timeline
        number = request.number
        if since is None and request.follow and number == 0:
            return []

        def matches(event: Event) -> bool:
            if not self._visible(event):
                return False
            return predicate is None or not isinstance(event, Flow) or predicate(event)

        per_node: dict[str, int] = {}

        def room(event: Event) -> bool:
            """Counts a flow against its node's quota; lost events never count."""
            if not isinstance(event, Flow) or number == 0 or (since is not None and request.follow):
                return True
            taken = per_node.get(event.node_name, 0)
            if taken >= number:
                return False
            per_node[event.node_name] = taken + 1
            return True

        picked: list[int] = []
        if since is not None or request.first:
            for seq, event in tl.range(tl.first_seq, end):
                if since is not None and _event_time(event) < since:
                    continue
                if matches(event) and room(event):
                    picked.append(seq)
            return picked
        nodes = self._nodes()
        full_at = len(nodes)
        for seq in range(end - 1, tl.first_seq - 1, -1):
            event = tl.event(seq)
            if matches(event) and room(event):
                picked.append(seq)
            if number and sum(1 for n in nodes if per_node.get(n, 0) >= number) == full_at:
                break
        picked.reverse()
        return picked

    # -- unary calls --------------------------------------------------------------

    async def server_status(self, request: observer_pb2.ServerStatusRequest,
                            context: grpc.aio.ServicerContext) -> observer_pb2.ServerStatusResponse:
        await self._open(context)
        tl = self.timeline
        uptime_s = max(tl.now_s, 1e-9)
        resp = observer_pb2.ServerStatusResponse(
            num_flows=tl.num_events(), max_flows=tl.capacity, seen_flows=tl.total,
            uptime_ns=int(tl.now_s * _NS), version=f"hubble-relay v{self.version}",
            flows_rate=tl.total / uptime_s)
        resp.num_connected_nodes.value = len(tl.nodes)
        resp.num_unavailable_nodes.value = 0
        return resp

    async def get_nodes(self, request: observer_pb2.GetNodesRequest,
                        context: grpc.aio.ServicerContext) -> observer_pb2.GetNodesResponse:
        await self._open(context)
        tl = self.timeline
        resp = observer_pb2.GetNodesResponse()
        for index, name in enumerate(tl.nodes):
            node = resp.nodes.add(
                name=name, version=self.version, address=f"172.18.0.{index + 2}:4244",
                state=NODE_STATE_CONNECTED, uptime_ns=int(tl.now_s * _NS),
                num_flows=min(tl.num_events(name), AGENT_RING_CAPACITY),
                max_flows=AGENT_RING_CAPACITY, seen_flows=tl.counters[name].seen)
            node.tls.enabled = True
            node.tls.server_name = f"{name}.default.hubble-grpc.cilium.io"
        return resp

    async def get_namespaces(
        self, request: observer_pb2.GetNamespacesRequest, context: grpc.aio.ServicerContext,
    ) -> observer_pb2.GetNamespacesResponse:
        await self._open(context)
        resp = observer_pb2.GetNamespacesResponse()
        for ns in self.timeline.scenario.cluster.namespaces:
            resp.namespaces.add(cluster="default", namespace=ns)
        return resp

    async def health_check(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            service = _health_service(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if service not in HEALTH_SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return _NOT_SERVING if self.timeline.outage is not None else _SERVING


async def start_grpc_server(handlers: Iterable[grpc.GenericRpcHandler],
                            address: str = "127.0.0.1:0") -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server on ``address``; returns it and the bound port."""
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    server.add_generic_rpc_handlers(tuple(handlers))
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, port

