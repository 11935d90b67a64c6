"""``SimulatedFlowSource``: the in-process FlowSource over a timeline.

Matrix: satisfies the FlowSource protocol; node status first, then released
events in order; a consumer behind the ring gets a lost event; outage -> down.
"""

from __future__ import annotations

import asyncio

from exporter.model import Flow, LostEvents, NodeStatus
from exporter.roles import FlowSource
from exporter.simulator.scenarios import SCENARIOS
from exporter.simulator.source import SimulatedFlowSource
from exporter.simulator.timeline import Timeline


async def test_follows_the_timeline() -> None:
    timeline = Timeline(SCENARIOS["relay-outage"], 1, capacity=500)
    source = SimulatedFlowSource(timeline)
    assert isinstance(source, FlowSource) and source.status().up
    events = source.events()
    first = await anext(events)
    assert isinstance(first, NodeStatus) and first.node_names == ("node-a", "node-b", "node-c")
    start = timeline.total
    timeline.advance_to(1)
    released = [e for _, e in timeline.range(start)]
    got = [await asyncio.wait_for(anext(events), 5) for _ in released]
    assert got == released and all(isinstance(e, Flow) for e in got)
    timeline.advance_to(20)  # more than the ring holds
    lost = await asyncio.wait_for(anext(events), 5)
    assert isinstance(lost, LostEvents) and lost.source == 3 and lost.count > 0
    timeline.advance_to(61)
    status = source.status()
    assert not status.up and status.unavailable_nodes == ("node-a", "node-b", "node-c")
    await events.aclose()
