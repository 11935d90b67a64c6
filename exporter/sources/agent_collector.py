"""The agent scraper's metrics: a prometheus_client collector over the last scrape of
each node's Cilium agent. ``collect()`` does no I/O::

    kpr_node_drops_total{node="worker-1",datapath="ebpf",reason="Service backend not found",direction="EGRESS"} 47
    kpr_node_forwards_total{node="worker-1",datapath="ebpf",direction="INGRESS"} 1509230446
    kpr_agent_up{node="worker-1"} 1
    kpr_agent_scrape_duration_seconds{node="worker-1"} 0.012
    kpr_agent_scrape_errors_total{node="worker-1",kind="timeout"} 0
    kpr_agent_series_dropped_total{node="worker-1"} 0
    kpr_agent_duplicate_samples_total{node="worker-1"} 0

Counter values are the agent's own (its BPF metrics map survives agent restarts),
so ``rate()`` works on them; nothing is accumulated here. A node whose last
scrape failed shows ``kpr_agent_up 0`` and no drop/forward series: a stale copy
would read as "no drops", and no data must never look like zero.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import metrics_contract as mc
from exporter.roles import DatapathResolver
from exporter.sources.agent_text import AgentSnapshot

#: Values of the ``kind`` label of ``kpr_agent_scrape_errors_total`` (pre-initialised at 0).
ERROR_KINDS = ("timeout", "connect", "http", "oversize", "parse")


@dataclass(frozen=True, slots=True)
class AgentState:
    """One node's scrape state. Published whole and never mutated afterwards."""

    node: str
    url: str
    up: bool
    duration_seconds: float  # of the last attempt, failed or not
    last_attempt: float  # wall clock
    last_success: float | None = None
    snapshot: AgentSnapshot | None = None  # the last good one (may predate a failure)
    error_kind: str = ""
    error: str = ""
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    series_dropped: int = 0  # over all good scrapes: samples past the series cap
    duplicate_samples: int = 0  # over all good scrapes: samples repeating a series


class AgentStateSource(Protocol):
    """Anything that knows the last scrape state per node (the scraper, or a test double)."""

    def states(self) -> Mapping[str, AgentState]: ...


class AgentCollector:
    """prometheus_client collector over the last scrape of each agent (no I/O in collect)."""

    def __init__(self, *, source: AgentStateSource, resolver: DatapathResolver) -> None:
        self._source = source
        self._resolver = resolver

    def describe(self) -> Iterator[Metric]:
        yield from _families()
        yield _lost_family()

    def collect(self) -> Iterator[Metric]:
        drops, forwards, up, duration, errors, dropped, duplicates = _families()
        lost = _lost_family()
        for node, state in self._source.states().items():
            up.add_metric([node], 1.0 if state.up else 0.0)
            duration.add_metric([node], state.duration_seconds)
            for kind, count in state.errors.items():
                errors.add_metric([node, kind], count)
            dropped.add_metric([node], state.series_dropped)
            duplicates.add_metric([node], state.duplicate_samples)
            if not state.up or state.snapshot is None:
                continue
            datapath = self._resolver.datapath(node)
            for (reason, direction), value in state.snapshot.drops.items():
                drops.add_metric([node, datapath, reason, direction], value)
            for direction, value in state.snapshot.forwards.items():
                forwards.add_metric([node, datapath, direction], value)
            for source, value in sorted(state.snapshot.hubble_lost.items()):
                lost.add_metric([node, source], value)
        yield from (drops, forwards, up, duration, errors, dropped, duplicates, lost)


def _lost_family() -> CounterMetricFamily:
    return CounterMetricFamily(
        mc.NODE_HUBBLE_AGENT_LOST.family,
        "Events the node's Hubble reported lost, as its agent counts them "
        "(hubble_lost_events_total, when the scraped body carries it).",
        labels=mc.NODE_HUBBLE_AGENT_LOST.labels)


def agent_lost_events(states: Mapping[str, AgentState]) -> dict[str, int]:
    """Per node, the agent's ``hubble_lost_events_total`` summed over sources, from its last
    good scrape (a counter: a failed scrape keeps the last reading, as Prometheus' increase()
    spans a gap). Nodes never read with such a counter are left out: no data is not zero."""
    return {node: int(sum(state.snapshot.hubble_lost.values()))
            for node, state in states.items()
            if state.snapshot is not None and state.snapshot.hubble_lost}


def _families() -> tuple[
    CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
    CounterMetricFamily, CounterMetricFamily, CounterMetricFamily,
]:
    return (
        CounterMetricFamily(
            "kpr_node_drops_total",
            "Packets the node's Cilium datapath dropped, as its agent reports them.",
            labels=("node", "datapath", "reason", "direction"),
        ),
        CounterMetricFamily(
            "kpr_node_forwards_total",
            "Packets the node's Cilium datapath forwarded, as its agent reports them.",
            labels=("node", "datapath", "direction"),
        ),
        GaugeMetricFamily(
            "kpr_agent_up", "1 when the last scrape of the node's Cilium agent worked.",
            labels=("node",),
        ),
        GaugeMetricFamily(
            "kpr_agent_scrape_duration_seconds",
            "Duration of the last scrape of the node's Cilium agent, failed or not.",
            labels=("node",),
        ),
        CounterMetricFamily(
            "kpr_agent_scrape_errors_total",
            "Failed scrapes of the node's Cilium agent, by kind of failure.",
            labels=("node", "kind"),
        ),
        CounterMetricFamily(
            "kpr_agent_series_dropped_total",
            "Samples of the node's Cilium agent not kept: their series exceeded agents.max_series.",
            labels=("node",),
        ),
        CounterMetricFamily(
            "kpr_agent_duplicate_samples_total",
            "Samples of the node's Cilium agent repeating a series already read in the same "
            "scrape (the first value is kept, as Prometheus does).",
            labels=("node",),
        ),
    )
