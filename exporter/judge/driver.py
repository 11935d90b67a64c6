"""The periodic judge: snapshots + frozen baseline + phase -> one verdict per service, SLI
and comparison.

``Judge`` judges an ``Evidence`` (``exporter.judge.evidence``): the short and the long window
of counts, from its own compact snapshot history (``evaluate``) or from Prometheus
(``evaluate_evidence`` with what ``exporter.judge_prom`` fetched). For every service seen in
the windows or in the baseline it compares

* canary-vs-control: the service's eBPF-datapath counts with its kube-proxy-datapath counts
  in the same window (the cohorts split by the node that translated the Service);
* after-vs-baseline: the eBPF-datapath counts with the frozen pre-switch baseline.

A dead or stale source, a stale snapshot, too little history or an unreachable metric
store makes every verdict inconclusive with the reason; partial data for one service makes
that service's verdicts inconclusive. Pure: the caller passes ``now``, feeds snapshots and wires
the results to the collector and the API. Services named ``__other__`` (label overflow)
mix unrelated services and are never judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from exporter.judge.compare import Span, inconclusive, judge
from exporter.judge.evidence import Evidence, InProcessEvidence
from exporter.judge.history import Cohort, Window
from exporter.judge.losses import NodeLoss, annotate
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import (
    AFTER_VS_BASELINE,
    CANARY_VS_CONTROL,
    COMPARISONS,
    LONG,
    NAN,
    SHORT,
    SLIS,
    Verdict,
    WindowVerdict,
    combine,
)
from exporter.model import EBPF, KUBE_PROXY
from exporter.snapshot import SliKey, SliSnapshot

OTHER_SERVICE = "__other__"


class BaselineView(Protocol):
    """What the judge reads from a frozen pre-switch baseline."""

    @property
    def connect_bounds(self) -> tuple[float, ...]: ...

    @property
    def window_start(self) -> float: ...

    @property
    def window_end(self) -> float: ...

    def cohort(self, namespace: str, service: str) -> Cohort | None: ...

    def service_names(self) -> Iterable[tuple[str, str]]: ...


class Judge:
    """Evaluates every service periodically; keeps the latest verdicts for export.

    ``evaluate`` judges the in-process snapshot history (``self.source``);
    ``evaluate_evidence`` judges evidence from any ``EvidenceSource`` (Prometheus).
    """

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self.source = InProcessEvidence(settings)
        self.history = self.source.history
        self.verdicts: tuple[Verdict, ...] = ()
        self.evaluated_at: float = NAN
        self.phase: str = ""
        self.problem: str = ""  # why the last evaluation was inconclusive across the board

    def observe(self, snapshot: SliSnapshot) -> None:
        """Add a snapshot (older than or as old as the newest one is ignored)."""
        self.source.observe(snapshot)

    def evaluate(self, now: float, snapshots: Iterable[SliSnapshot] = (), *,
                 baseline: BaselineView | None, phase: str, sources_ok: bool = True,
                 sources_reason: str = "") -> list[Verdict]:
        """Judge every service now; ``snapshots`` are observed first (oldest first)."""
        for snapshot in snapshots:
            self.observe(snapshot)
        evidence = self.source.evidence_at(now, sources_ok=sources_ok,
                                           sources_reason=sources_reason)
        return self.evaluate_evidence(now, evidence, baseline=baseline, phase=phase)

    def evaluate_evidence(self, now: float, evidence: Evidence, *,
                          baseline: BaselineView | None, phase: str) -> list[Verdict]:
        """Judge every service in ``evidence`` (and in the baseline) now."""
        services = set(evidence.services)
        if baseline is not None:
            services.update(baseline.service_names())
        verdicts: list[Verdict] = []
        for namespace, service in sorted(s for s in services if s[1] != OTHER_SERVICE):
            problem = evidence.problem or evidence.partial.get((namespace, service))
            for comparison in COMPARISONS:
                for sli in SLIS:
                    verdicts.append(self._verdict(now, namespace, service, sli, comparison,
                                                  evidence.short, evidence.long, baseline,
                                                  problem, evidence.left_out))
        self.verdicts = tuple(verdicts)
        self.evaluated_at = now
        self.phase = phase
        self.problem = evidence.problem or ""
        return verdicts

    # --- internals ------------------------------------------------------------------------

    def _verdict(self, now: float, namespace: str, service: str, sli: str, comparison: str,
                 short: Window | None, long: Window | None, baseline: BaselineView | None,
                 problem: str | None,
                 left_out: Mapping[str, tuple[NodeLoss, ...]]) -> Verdict:
        judged = [annotate(self._window(name, window, namespace, service, sli, comparison,
                                        baseline, problem, now),
                           left_out.get(name, ()), self.settings.max_lost_share)
                  for name, window in ((SHORT, short), (LONG, long))]
        outcome, better, reason = combine(judged[0], judged[1])
        return Verdict(namespace, service, sli, comparison, outcome, better, reason,
                       judged[0].effect_size, now, tuple(judged))

    def _window(self, name: str, window: Window | None, namespace: str, service: str, sli: str,
                comparison: str, baseline: BaselineView | None, problem: str | None,
                now: float) -> WindowVerdict:
        if comparison == CANARY_VS_CONTROL:
            labels = ("eBPF", "kube-proxy")
        else:
            labels = ("eBPF", "baseline")
        if window is None:
            span = Span(name, now, now, True, *labels)
            return inconclusive(span, problem or "not enough history yet")
        span = Span(name, window.start, window.end, window.partial, *labels)
        if problem:
            return inconclusive(span, problem)
        treatment = window.cohort(SliKey(namespace, service, EBPF))
        if comparison == CANARY_VS_CONTROL:
            control = window.cohort(SliKey(namespace, service, KUBE_PROXY))
            return judge(sli, treatment, control, window.bounds, span, self.settings)
        if comparison == AFTER_VS_BASELINE:
            if baseline is None:
                return inconclusive(span, "no frozen pre-switch baseline")
            if tuple(baseline.connect_bounds) != tuple(window.bounds):
                return inconclusive(span, "the baseline's histogram buckets differ from the "
                                          "current ones; capture a new baseline")
            control = baseline.cohort(namespace, service)
            if control is None:
                return inconclusive(span, "this service has no baseline (too little traffic "
                                          "before the switch)")
            return judge(sli, treatment, control, window.bounds, span, self.settings)
        raise ValueError(f"unknown comparison {comparison!r}")


def worst_first(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Verdicts ordered worse, inconclusive, not worse, better; then by name."""
    rank = {"worse": 0, "inconclusive": 1, "not_worse": 2}
    return sorted(verdicts, key=lambda v: (rank.get(v.outcome, 3) + (1 if v.better else 0),
                                           v.namespace, v.service, v.comparison, v.sli))
