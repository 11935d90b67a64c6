"""The simulated cluster's history: events released as scenario time passes.

``Timeline.advance_to(t)`` generates the ticks it needs and moves every event
with a time up to scenario second ``t`` into a bounded ring (like the agents'
Hubble ring buffers), counts what the agents' datapath metrics would count, and
wakes whoever waits in ``changed()``. Nothing here knows about gRPC or HTTP:
the Observer server reads the ring, the agent endpoints read the counters.

What a timeline holds equals ``flows.generate(scenario, seed, 0, t)`` (minus
what the ring has overwritten), so tests can compare both.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import Counter
from collections.abc import Iterator
from typing import Final

from exporter.model import (
    DROPPED,
    EGRESS,
    FORWARDED,
    INGRESS,
    L3_L4,
    Event,
    Flow,
)
from exporter.simulator.flows import DEFAULT_EPOCH_NS, MAX_SPAN_TICKS, FlowGenerator
from exporter.simulator.scenarios import Outage, Scenario

_NS: Final = 1_000_000_000

#: How many events the history keeps (all nodes together).
DEFAULT_CAPACITY: Final = 65536

DIRECTION_LABELS: Final = {INGRESS: "INGRESS", EGRESS: "EGRESS"}


def drop_direction(flow: Flow) -> str:
    """The agent's direction label for a drop: EGRESS when a local endpoint sent the packet."""
    source = flow.source
    return "EGRESS" if source is not None and source.endpoint_id else "INGRESS"


class NodeCounters:
    """What one agent's datapath metrics map has counted so far."""

    __slots__ = ("forwards", "drops", "seen")

    def __init__(self) -> None:
        self.forwards: Counter[str] = Counter()  # direction -> packets
        self.drops: Counter[tuple[int, str]] = Counter()  # (reason code, direction) -> packets
        self.seen = 0  # every event Hubble observed on the node


class Timeline:
    """Releases a scenario's events up to the current scenario time; single event loop only."""

    def __init__(self, scenario: Scenario, seed: int, *, epoch_ns: int = DEFAULT_EPOCH_NS,
                 capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.scenario = scenario
        self.seed = seed
        self.epoch_ns = epoch_ns
        self.capacity = capacity
        self.generator = FlowGenerator(scenario, seed, epoch_ns=epoch_ns)
        self.nodes: tuple[str, ...] = scenario.cluster.node_names
        self.counters: dict[str, NodeCounters] = {n: NodeCounters() for n in self.nodes}
        self.now_s = 0.0  # scenario time released so far
        self.total = 0  # sequence number of the next event
        self.outage: Outage | None = scenario.outage_at(0.0)
        self._ring: list[Event | None] = [None] * capacity
        self._payloads: list[bytes | None] = [None] * capacity
        self._pending: list[tuple[int, int, Event]] = []
        self._next_tick = -MAX_SPAN_TICKS
        self._changed = asyncio.Event()

    # -- time ----------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        return self.epoch_ns + int(self.now_s * _NS)

    def datapath(self, node: str) -> str:
        """The node's datapath at the current scenario time."""
        return self.generator.datapath(node, self.now_s)

    def advance_to(self, at_s: float) -> int:
        """Release every event up to scenario second ``at_s``; returns how many were released."""
        if at_s < self.now_s:
            return 0
        last_tick = math.floor(at_s)
        while self._next_tick <= last_tick:
            for item in self.generator.tick(self._next_tick):
                heapq.heappush(self._pending, item)
            self._next_tick += 1
        limit = self.epoch_ns + int(at_s * _NS)
        released = 0
        pending = self._pending
        while pending and pending[0][0] <= limit:
            time_ns, _, event = heapq.heappop(pending)
            if time_ns >= self.epoch_ns:
                self._append(event)
                released += 1
        self.now_s = at_s
        outage = self.scenario.outage_at(at_s)
        if released or outage != self.outage:
            self.outage = outage
            self._notify()
        return released

    def _append(self, event: Event) -> None:
        slot = self.total % self.capacity
        self._ring[slot] = event
        self._payloads[slot] = None
        self.total += 1
        if not isinstance(event, Flow):
            return
        counters = self.counters.get(event.node_name)
        if counters is None:
            return
        counters.seen += event.count
        if event.type != L3_L4:
            return
        if event.verdict == FORWARDED:
            direction = DIRECTION_LABELS.get(event.traffic_direction, "UNKNOWN")
            counters.forwards[direction] += event.count
        elif event.verdict == DROPPED:
            counters.drops[(event.drop_reason, drop_direction(event))] += event.count

    # -- reading ---------------------------------------------------------------------

    @property
    def first_seq(self) -> int:
        """The oldest sequence number still in the ring."""
        return max(0, self.total - self.capacity)

    def event(self, seq: int) -> Event:
        if not self.first_seq <= seq < self.total:
            raise IndexError(seq)
        event = self._ring[seq % self.capacity]
        assert event is not None
        return event

    def payload(self, seq: int) -> bytes | None:
        """The cached wire form of event ``seq``, if someone stored one."""
        return self._payloads[seq % self.capacity]

    def store_payload(self, seq: int, payload: bytes) -> None:
        if self.first_seq <= seq < self.total:
            self._payloads[seq % self.capacity] = payload

    def range(self, start: int, stop: int | None = None) -> Iterator[tuple[int, Event]]:
        """``(seq, event)`` from ``start`` (clamped to the ring) up to ``stop`` or the newest."""
        stop = self.total if stop is None else min(stop, self.total)
        for seq in range(max(start, self.first_seq), stop):
            event = self._ring[seq % self.capacity]
            assert event is not None
            yield seq, event

    def num_events(self, node: str | None = None) -> int:
        """Events in the ring (of one node, or all)."""
        if node is None:
            return self.total - self.first_seq
        return sum(1 for _, e in self.range(self.first_seq) if _node_of(e) == node)

    # -- waiting -----------------------------------------------------------------------

    async def changed(self) -> None:
        """Return once new events were released or the outage state changed."""
        await self._changed.wait()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()


def _node_of(event: Event) -> str:
    return getattr(event, "node_name", "")
