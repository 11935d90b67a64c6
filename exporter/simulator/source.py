"""``SimulatedFlowSource``: a timeline as an in-process ``roles.FlowSource``, no gRPC involved.

Yields what a ``GetFlows(follow=true)`` stream from the simulated Relay would
carry from now on: a NODE_CONNECTED status, then every released event in order,
and a HUBBLE_RING_BUFFER lost event when the consumer fell behind the ring.
During a scenario's relay outage it yields nothing and reports itself down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from exporter.model import Event, LostEvents, NodeStatus, SourceStatus
from exporter.simulator.timeline import Timeline

NODE_CONNECTED: Final = 1
HUBBLE_RING_BUFFER: Final = 3


class SimulatedFlowSource:
    """Follows ``timeline`` like a Relay client would; ``status()`` mirrors the outage state."""

    def __init__(self, timeline: Timeline, *, address: str = "simulator") -> None:
        self.timeline = timeline
        self.address = address

    async def events(self) -> AsyncIterator[Event]:
        tl = self.timeline
        cursor = tl.total  # "now", fixed before the first yield
        yield NodeStatus(NODE_CONNECTED, tl.nodes, "", tl.now_ns)
        while True:
            if cursor >= tl.total or tl.outage is not None:
                await tl.changed()
                continue
            if cursor < tl.first_seq:
                missed, cursor = tl.first_seq - cursor, tl.first_seq
                yield LostEvents("hubble-relay", HUBBLE_RING_BUFFER, missed, tl.now_ns)
                continue
            event = tl.event(cursor)
            cursor += 1
            yield event

    def status(self) -> SourceStatus:
        tl = self.timeline
        if tl.outage is not None:
            return SourceStatus(up=False, address=self.address, error="simulated relay outage",
                                unavailable_nodes=tl.nodes)
        return SourceStatus(up=True, address=self.address, connected_nodes=tl.nodes)
