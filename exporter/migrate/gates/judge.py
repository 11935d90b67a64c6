"""The ``judge`` gate: after the soak, no service is judged worse for the batch.

The judge's cohorts are per datapath, not per node: the eBPF cohort is every migrated node,
the batch's included. So the gate judges a window that starts no earlier than the batch
(``BatchContext.batch_started``): the long window is the time since the batch started,
capped at ``judge.long_window_seconds``, and the short one is capped by it. Within it the
judge (``exporter.judge.driver.Judge``, the same statistics as ``kpr_verdict``) compares the
eBPF nodes with the kube-proxy nodes (canary-vs-control) and with the frozen pre-switch
baseline (after-vs-baseline), over an ``EvidenceSource`` made for those windows (for
example ``exporter.judge_prom.PrometheusEvidence``).

* ``fail``: any service worse in either comparison;
* ``inconclusive``: no evidence (a dead or stale source: the judge's problem), a service
  worse in one window while the other is inconclusive (suspect: hold and page), or fewer
  than ``min_judged`` services with a conclusive verdict (too little evidence is never a
  pass; extend the soak or add traffic: the probes' checks are judged as services too);
* ``pass``: otherwise; services without enough traffic to judge are listed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from exporter.judge.driver import BaselineView, Judge
from exporter.judge.evidence import EvidenceSource
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import INCONCLUSIVE as V_INCONCLUSIVE
from exporter.judge.verdict import NOT_WORSE, WORSE, Verdict
from exporter.migrate.gates.base import FAIL, INCONCLUSIVE, PASS, BatchContext, GateResult

NAME = "judge"
MAX_LISTED = 10
PHASE = "canary"

EvidenceFactory = Callable[[JudgeSettings], EvidenceSource]


def windows_for(settings: JudgeSettings, elapsed: float) -> JudgeSettings:
    """``settings`` with windows that start no earlier than ``elapsed`` seconds ago."""
    long = min(settings.long_window_seconds, elapsed)
    return replace(settings, long_window_seconds=long,
                   short_window_seconds=min(settings.short_window_seconds, long))


class JudgeGate:
    """The ``judge`` gate (see the module's docstring)."""

    name = NAME

    def __init__(self, settings: JudgeSettings, evidence: EvidenceFactory, *,
                 baseline: Callable[[], BaselineView | None] = lambda: None,
                 clock: Callable[[], float] = time.time, min_judged: int = 1) -> None:
        self.settings = settings
        self.evidence = evidence
        self.baseline = baseline
        self.clock = clock
        self.min_judged = min_judged

    async def evaluate(self, ctx: BatchContext) -> GateResult:
        now = self.clock()
        elapsed = now - ctx.batch_started
        if elapsed <= 0:
            return GateResult(NAME, INCONCLUSIVE, "no time has passed since the batch started")
        settings = windows_for(self.settings, elapsed)
        evidence = await self.evidence(settings).evidence(now)
        verdicts = Judge(settings).evaluate_evidence(now, evidence, baseline=self.baseline(),
                                                     phase=PHASE)
        window = (f"windows {settings.short_window_seconds:g}s / "
                  f"{settings.long_window_seconds:g}s ending {elapsed:.0f}s after the batch "
                  "started")
        return judge(verdicts, evidence.problem, window, self.min_judged)


def judge(verdicts: Sequence[Verdict], problem: str | None, window: str,
          min_judged: int = 1) -> GateResult:
    """The gate's answer from the judge's verdicts and the evidence's problem."""
    if problem:
        return GateResult(NAME, INCONCLUSIVE, f"no evidence: {problem}", (window,))
    worse = [v for v in verdicts if v.outcome == WORSE]
    if worse:
        return GateResult(NAME, FAIL, f"{len({_svc(v) for v in worse})} service(s) judged "
                          "worse", _listed([_line(v) for v in worse], window))
    suspect = [v for v in verdicts if v.outcome == V_INCONCLUSIVE
               and any(w.outcome == WORSE for w in v.windows)]
    if suspect:
        return GateResult(NAME, INCONCLUSIVE, f"{len({_svc(v) for v in suspect})} service(s) "
                          "worse in one window while the other is inconclusive",
                          _listed([_line(v) for v in suspect], window))
    judged = sorted({_svc(v) for v in verdicts if v.outcome == NOT_WORSE})
    unjudged = sorted({_svc(v) for v in verdicts} - set(judged))
    if len(judged) < min_judged:
        return GateResult(NAME, INCONCLUSIVE, f"too little evidence: {len(judged)} service(s) "
                          f"with a conclusive verdict, {min_judged} needed",
                          _listed([f"{s}: every verdict inconclusive" for s in unjudged], window))
    lines = [f"{s}: too little traffic to judge" for s in unjudged]
    return GateResult(NAME, PASS, f"{len(judged)} service(s) judged not worse, none worse",
                      _listed(lines, window))


def _svc(v: Verdict) -> str:
    return f"{v.namespace}/{v.service}"


def _line(v: Verdict) -> str:
    return f"{_svc(v)} {v.sli} {v.comparison}: {v.outcome} ({v.reason})"


def _listed(lines: Sequence[str], window: str) -> tuple[str, ...]:
    shown = list(lines[:MAX_LISTED])
    if len(lines) > MAX_LISTED:
        shown.append(f"... and {len(lines) - MAX_LISTED} more")
    return (window, *shown)
