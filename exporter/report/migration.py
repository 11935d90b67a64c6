"""The guided migration in the report's timeline, from the controller's metrics.

``kpr_migration_step{step}`` (1 for the current step) and ``kpr_migration_batch`` (the
current batch from 1, 0 before the first) are read as range queries. An event marks each
batch's start, and each move to a step outside the per-batch ones (preflight, the
kube-proxy exclusion, the node config, the cluster-wide setting, the cleanup, completion,
an abort and its end); the per-batch steps are the batch's own business. The state at the
start of the range is no event. Pure module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from exporter import metrics_contract as mc
from exporter.migrate.model import BATCH_STEPS, STEP_PENDING, STEP_TITLES
from exporter.report.data import Series
from exporter.report.model import Event

STEP_KIND: Final = "migration-step"
BATCH_KIND: Final = "migration-batch"

#: Range queries of the timeline: name -> PromQL.
RANGE_QUERIES: Final = {
    "migration_step": f"max by (step) ({mc.MIGRATION_STEP.name})",
    "migration_batch": f"max ({mc.MIGRATION_BATCH.name})",
}
_QUIET: Final = frozenset({STEP_PENDING, *BATCH_STEPS})


def step_events(series_list: Iterable[Series]) -> list[Event]:
    """A move to another step (not a per-batch one) at the first point that shows it."""
    current: dict[float, str] = {}
    for series in series_list:
        step = series.labels.get("step", "")
        for t, v in series.points:
            if math.isfinite(v) and v >= 0.5:
                current[t] = min(current.get(t, step), step)
    events = []
    previous = None
    for t in sorted(current):
        step = current[t]
        if previous is not None and step != previous and step not in _QUIET:
            events.append(Event(t, STEP_KIND, f"migration: {step} ({STEP_TITLES.get(step, step)})"))
        previous = step
    return events


def batch_events(series_list: Iterable[Series]) -> list[Event]:
    """Each batch's start: the batch number went up (a restarted migration counts again)."""
    events = []
    for series in series_list:
        previous = None
        for t, v in series.points:
            if not math.isfinite(v):
                continue
            if previous is not None and v != previous and v >= 1:
                events.append(Event(t, BATCH_KIND, f"migration batch {v:g} started"))
            previous = v
    return events


def migration_events(steps: Iterable[Series], batches: Iterable[Series]) -> list[Event]:
    return sorted((*step_events(steps), *batch_events(batches)), key=lambda e: (e.at, e.kind))
