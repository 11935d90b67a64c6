"""The report's verification section: the probes' checks × nodes matrix before the switch,
on the canary, and after (from ``kpr_probe_checks_total``). Pure module.

Each migration phase found in the range (``before``, ``canary``, ``after``) gets one window,
from the first to the last moment the exporter reported that phase; the matrix counts the
results of every (check, node) over that window. A node's column is the node whose
datapath handled the path, with the datapath its results were labelled with in the window
(both, joined by ``+``, when it switched inside it). A cell fails when any result there
failed: one reset at the switch is a finding too. ``error`` results (the probe's own
trouble) are counted apart and decide nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from exporter.report.data import Sample, Window
from exporter.verify.results import CHECKS

#: The phases that get a matrix, in the order the report shows them.
PHASES: Final = ("before", "canary", "after")
TITLES: Final = {"before": "Before the switch", "canary": "On the canary",
                 "after": "After the switch"}
PASS, FAIL, ERROR, NONE = "pass", "fail", "error", "none"


@dataclass(frozen=True, slots=True)
class ProbeCell:
    passed: float = 0.0
    failed: float = 0.0
    errors: float = 0.0

    @property
    def status(self) -> str:
        if self.failed > 0:
            return FAIL
        if self.passed > 0:
            return PASS
        return ERROR if self.errors > 0 else NONE

    @property
    def judged(self) -> float:
        return self.passed + self.failed


@dataclass(frozen=True)
class PhaseMatrix:
    """The matrix of one phase: ``nodes`` as (name, datapath) columns, ``checks`` the rows."""

    phase: str
    window: Window
    nodes: tuple[tuple[str, str], ...]
    checks: tuple[str, ...]
    cells: Mapping[tuple[str, str], ProbeCell]

    def cell(self, check: str, node: str) -> ProbeCell:
        return self.cells.get((check, node), ProbeCell())

    @property
    def failing(self) -> tuple[tuple[str, str, ProbeCell], ...]:
        """(check, node, cell) of every failing cell, in row then column order."""
        return tuple((c, n, self.cell(c, n)) for c in self.checks for n, _ in self.nodes
                     if self.cell(c, n).status == FAIL)


def phase_windows(segments: Iterable[object]) -> tuple[Window, ...]:
    """One window per phase of ``PHASES`` the segments show, first start to last end."""
    spans: dict[str, tuple[float, float]] = {}
    for seg in segments:
        phase = getattr(seg, "phase", None)
        if phase in PHASES:
            start, end = float(getattr(seg, "start")), float(getattr(seg, "end"))
            old = spans.get(phase)
            spans[phase] = (min(old[0], start), max(old[1], end)) if old else (start, end)
    return tuple(Window(p, *spans[p]) for p in PHASES if p in spans and spans[p][1] > spans[p][0])


def matrix(window: Window, samples: Sequence[Sample]) -> PhaseMatrix | None:
    """The matrix of one phase's window; None when it holds no probe result."""
    counts: dict[tuple[str, str], list[float]] = {}
    datapaths: dict[str, dict[str, float]] = {}
    for s in samples:
        if not math.isfinite(s.value) or s.value <= 0:
            continue
        check, node = s.labels.get("check", ""), s.labels.get("node", "")
        result, datapath = s.labels.get("result", ""), s.labels.get("datapath", "")
        row = counts.setdefault((check, node), [0.0, 0.0, 0.0])
        row[{PASS: 0, FAIL: 1}.get(result, 2)] += s.value
        by_dp = datapaths.setdefault(node, {})
        by_dp[datapath] = by_dp.get(datapath, 0.0) + s.value
    if not counts:
        return None
    seen = {check for check, _ in counts}
    checks = tuple(c for c in CHECKS if c in seen) + tuple(sorted(seen - set(CHECKS)))
    nodes = tuple((node, "+".join(sorted(dp))) for node, dp in sorted(datapaths.items()))
    return PhaseMatrix(window.name, window, nodes, checks,
                       {key: ProbeCell(*row) for key, row in counts.items()})


def matrices(windows: Iterable[Window],
             samples: Mapping[str, Sequence[Sample]]) -> tuple[PhaseMatrix, ...]:
    """The matrix of every phase window with probe results (``samples["probe:<phase>"]``)."""
    found = (matrix(w, samples.get(f"probe:{w.name}", ())) for w in windows)
    return tuple(m for m in found if m is not None)
