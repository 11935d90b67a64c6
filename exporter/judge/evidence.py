"""What the judge judges: windowed counts per service and datapath, and where they come from.

The statistics never see raw data. They see an ``Evidence``: the short and the long
``Window`` (bucket and counter increases per (namespace, service, datapath)), the services
to judge, and what makes the data untrustworthy: a ``problem`` (every verdict inconclusive
with that reason) or a per-service ``partial`` reason (that service's verdicts inconclusive).
``left_out`` names, per window, the nodes whose Hubble lost too many events: their samples
are not in that window (``exporter.judge.losses``); the in-process source cannot separate
one node's samples from the others', so it empties the window.

An ``EvidenceSource`` produces it. Two exist:

* ``InProcessEvidence`` (here): the difference of the exporter's own SLI snapshots,
  today's path and the default;
* ``exporter.judge_prom.PrometheusEvidence``: the same increases queried from Prometheus,
  summed over every exporter instance (node mode), as Kayenta reads a metric store.

Given the same counts, both produce the same ``Evidence``, so the verdicts, their evidence,
``kpr_verdict`` and ``/api/v1/verdicts`` do not depend on the source. Pure module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from exporter.judge.history import SnapshotHistory, Window
from exporter.judge.losses import NodeLoss, node_losses, over, window_events
from exporter.judge.settings import SOURCES, JudgeSettings
from exporter.judge.verdict import LONG, SHORT
from exporter.snapshot import NodeEvents, SliSnapshot

IN_PROCESS, PROMETHEUS = SOURCES

Service = tuple[str, str]  # (namespace, service)


@dataclass(frozen=True)
class Evidence:
    """The counts of one evaluation and whether they can be trusted."""

    short: Window | None
    long: Window | None
    services: frozenset[Service] = frozenset()
    problem: str | None = None  # every verdict is inconclusive with this reason
    partial: Mapping[Service, str] = field(default_factory=dict)  # per-service reasons
    #: window name -> the nodes whose samples left it (``exporter.judge.losses``)
    left_out: Mapping[str, tuple[NodeLoss, ...]] = field(default_factory=dict)


class EvidenceSource(Protocol):
    """Produces the evidence of the evaluation at ``now`` (epoch seconds)."""

    name: str

    async def evidence(self, now: float) -> Evidence: ...


def window_services(*windows: Window | None) -> frozenset[Service]:
    """Every (namespace, service) with a row in any of ``windows``."""
    return frozenset((k.namespace, k.service) for w in windows if w is not None for k in w.keys())


class InProcessEvidence:
    """Evidence from the exporter's own SLI snapshots (a compact, thinned history).

    ``problem_of`` tells why the snapshots cannot be trusted right now ("" when they can:
    the Hubble stream and the agent scrapes are alive).
    """

    name = IN_PROCESS

    def __init__(self, settings: JudgeSettings,
                 problem_of: Callable[[], str] | None = None) -> None:
        self.settings = settings
        self.history = SnapshotHistory(
            settings.history_seconds,
            fine_seconds=settings.short_window_seconds + 2 * settings.evaluation_interval_seconds,
            resolution=max(settings.evaluation_interval_seconds,
                           settings.long_window_seconds / 15.0),
        )
        self._problem_of = problem_of or (lambda: "")
        self._nodes: dict[float, dict[str, NodeEvents]] = {}  # snapshot time -> node events

    def observe(self, snapshot: SliSnapshot) -> None:
        """Add a snapshot (older than or as old as the newest one is ignored)."""
        if self.history.add(snapshot):
            self._nodes[snapshot.time] = dict(snapshot.nodes)
            kept = self.history.times()
            for t in [t for t in self._nodes if t not in kept]:
                del self._nodes[t]

    async def evidence(self, now: float) -> Evidence:
        problem = self._problem_of()
        return self.evidence_at(now, sources_ok=not problem, sources_reason=problem)

    def evidence_at(self, now: float, *, sources_ok: bool = True,
                    sources_reason: str = "") -> Evidence:
        """The evidence at ``now`` from the snapshots observed so far."""
        s = self.settings
        short = self.history.window(s.short_window_seconds)
        long = self.history.window(s.long_window_seconds)
        newest = self.history.newest
        services = set(window_services(long))
        if newest is not None:
            services.update((k.namespace, k.service) for k in newest.index)
        gated = {name: self._gate(w) for name, w in ((SHORT, short), (LONG, long))}
        return Evidence(gated[SHORT][0], gated[LONG][0], frozenset(services),
                        self._problem(now, short, sources_ok, sources_reason),
                        left_out={n: g[1] for n, g in gated.items() if g[1]})

    def _gate(self, window: Window | None) -> tuple[Window | None, tuple[NodeLoss, ...]]:
        """The window, emptied when a node lost too much: this exporter's samples are not
        per node, so a lossy node's contribution cannot be taken out alone."""
        if window is None or window.end not in self._nodes:
            return window, ()
        events = window_events(self._nodes[window.end], self._nodes.get(window.start))
        lossy = over(node_losses(events), self.settings.max_lost_share)
        if not lossy:
            return window, ()
        return Window.of_cohorts(window.start, window.end, window.bounds, {},
                                 window.partial), lossy

    def _problem(self, now: float, short: Window | None, sources_ok: bool,
                 sources_reason: str) -> str | None:
        if not sources_ok:
            return "stale or dead source: " + (sources_reason or "a flow or metrics source is down")
        newest = self.history.newest
        if newest is None:
            return "no SLI snapshot yet"
        age = now - newest.time
        if age > self.settings.stale_after_seconds:
            return (f"stale source: the newest SLI snapshot is {age:.0f} s old "
                    f"(> {self.settings.stale_after_seconds:g} s)")
        if short is None:
            return "not enough history yet (one snapshot)"
        return None
