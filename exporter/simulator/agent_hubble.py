"""One node's simulated Hubble server: what node mode's collector reads (the agent's :4244).

The same timeline as the simulated Relay, served as one Cilium agent serves its local
observer (``reference/hubble-api.md`` §1-§3): only that node's flows and lost events, no
``node_status`` message first, the ``hubble-server-version`` header, a ``ServerStatus``
without the Relay-only connected/unavailable node counts, and ``GetNodes`` UNIMPLEMENTED.
Plain text (the unix socket's behaviour; the agent's TCP port adds mTLS in a cluster).
"""

from __future__ import annotations

from typing import Final

import grpc

from exporter._gen.observer import observer_pb2
from exporter.model import Event
from exporter.simulator.server import ObserverServer
from exporter.simulator.timeline import Timeline

AGENT_VERSION_HEADER: Final = "hubble-server-version"
AGENT_VERSION: Final = "1.19.4"
_NS: Final = 1_000_000_000


class AgentObserverServer(ObserverServer):
    """The Observer API of node ``node`` alone."""

    version_header = AGENT_VERSION_HEADER

    def __init__(self, timeline: Timeline, node: str, *, version: str = AGENT_VERSION) -> None:
        if node not in timeline.nodes:
            raise ValueError(f"node {node!r} is not in the scenario ({', '.join(timeline.nodes)})")
        self.node = node
        super().__init__(timeline, version=version)

    def _visible(self, event: Event) -> bool:
        return getattr(event, "node_name", None) == self.node

    def _nodes(self) -> tuple[str, ...]:
        return (self.node,)

    @property
    def server_node(self) -> str:
        return self.node

    def _greeting(self) -> bytes | None:
        return None  # an agent announces no peers

    async def server_status(self, request: observer_pb2.ServerStatusRequest,
                            context: grpc.aio.ServicerContext) -> observer_pb2.ServerStatusResponse:
        await self._open(context)
        tl = self.timeline
        seen = tl.counters[self.node].seen
        uptime_s = max(tl.now_s, 1e-9)
        return observer_pb2.ServerStatusResponse(
            num_flows=tl.num_events(self.node), max_flows=tl.capacity, seen_flows=seen,
            uptime_ns=int(tl.now_s * _NS), version=f"cilium v{self.version}",
            flows_rate=seen / uptime_s)

    async def get_nodes(self, request: observer_pb2.GetNodesRequest,
                        context: grpc.aio.ServicerContext) -> observer_pb2.GetNodesResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetNodes is served by Hubble Relay")
        raise AssertionError("unreachable")  # pragma: no cover
