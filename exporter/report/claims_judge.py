"""Judging the claims' measurements with the judge's own tests and words.

Three kinds of evidence, three ways to judge them, all ending in the report's outcome words
(better, not worse, worse, inconclusive):

* ``histograms`` — samples in histogram buckets (handshake time, programming latency): the
  judge's latency test itself (``exporter.judge.compare.judge_latency``: Mann-Whitney U with
  the Hodges-Lehmann shift, and the tail test), its alpha, thresholds, floor and minimum
  count. Lower is better. Bucket layouts that differ (kube-proxy's and Cilium's programming
  histograms) are first cut down to the bounds both share (``common_buckets``), which loses
  resolution but invents nothing.
* ``failures`` — failed attempts per attempt (the probe load's connections): the judge's
  connect-failure test as it is. Fewer is better.
* ``means`` — a quantity that is not made of events (CPU seconds, bytes): only counters
  exist, so there is no significance test; the mean per unit of exposure of each side is
  compared with the judge's relative threshold, once each side has at least the judge's
  short window of exposure.

Too little data on either side is inconclusive, never a pass. Pure module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exporter.judge import compare
from exporter.judge.histogram import histogram_quantile
from exporter.judge.history import Cohort as JudgeCohort
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import CONNECT_FAILURES
from exporter.judge.verdict import INCONCLUSIVE as J_INCONCLUSIVE
from exporter.judge.verdict import WORSE as J_WORSE
from exporter.report import fmt
from exporter.report.evidence import classify
from exporter.report.model import BETTER, INCONCLUSIVE, NOT_WORSE, WORSE

HISTOGRAM_TEST = "the judge's latency test (Mann-Whitney U with Hodges-Lehmann shift, tail test)"
FAILURE_TEST = "the judge's connect-failure test (failures per attempt, exact conditional binomial)"
MEAN_TEST = "means compared with the judge's relative threshold (counters only: no significance test)"


@dataclass(frozen=True, slots=True)
class Judged:
    """One measurement's outcome and why, with the relative change eBPF vs the reference."""

    outcome: str
    why: str
    change: float | None  # eBPF / reference - 1 of the compared statistic; None: no data
    test: str
    ebpf: str = fmt.NO_DATA  # the compared statistic of each side, as shown
    reference: str = fmt.NO_DATA
    details: tuple[tuple[str, str], ...] = ()  # (what, value) as shown


def no_data(why: str, test: str) -> Judged:
    return Judged(INCONCLUSIVE, f"no data: {why}", None, test)


# --- histograms --------------------------------------------------------------------------

def cumulative_to_counts(cumulative: Sequence[float]) -> tuple[int, ...]:
    """Cumulative bucket increases (last is +Inf) -> non-negative integer counts per bucket."""
    counts, below = [], 0.0
    for value in cumulative:
        value = max(value, below)
        counts.append(max(0, round(value) - round(below)))
        below = value
    return tuple(counts)


def common_buckets(sides: Sequence[Mapping[float, float]]) -> tuple[tuple[float, ...],
                                                                     list[tuple[int, ...]]]:
    """The finite bounds every side has, and each side's counts over them (+Inf last).

    ``sides`` map ``le`` (``math.inf`` for +Inf) to cumulative increases. Re-binning to shared
    bounds is exact: a cumulative count at a bound both layouts have is the same number."""
    shared = set.intersection(*(set(s) for s in sides)) if sides else set()
    bounds = tuple(sorted(b for b in shared if math.isfinite(b)))
    result = []
    for side in sides:
        total = side.get(math.inf, max(side.values(), default=0.0))
        result.append(cumulative_to_counts([side[b] for b in bounds] + [total]))
    return bounds, result


def own_quantile(q: float, cumulative: Mapping[float, float]) -> float:
    """A quantile of one side on its own bucket layout (what its dashboards show)."""
    bounds = tuple(sorted(b for b in cumulative if math.isfinite(b)))
    total = cumulative.get(math.inf, max(cumulative.values(), default=0.0))
    counts = cumulative_to_counts([cumulative[b] for b in bounds] + [total])
    return histogram_quantile(q, bounds, counts) if bounds else math.nan


def histograms(ebpf: Mapping[float, float] | None, reference: Mapping[float, float] | None,
               settings: JudgeSettings, *, unit: str, window: str = "report") -> Judged:
    """eBPF's histogram against the reference's (cumulative ``le -> increase``), lower is better."""
    if not ebpf:
        return no_data("no eBPF series in the window", HISTOGRAM_TEST)
    if not reference:
        return no_data("no kube-proxy series to compare with", HISTOGRAM_TEST)
    bounds, (a, b) = common_buckets([ebpf, reference])
    if not bounds:
        return no_data("the two histograms share no bucket bound", HISTOGRAM_TEST)
    span = compare.Span(window, 0.0, 0.0)
    result = compare.judge_latency(JudgeCohort(a), JudgeCohort(b), bounds, span, settings)
    q = {name: (own_quantile(p, ebpf), own_quantile(p, reference))
         for name, p in (("p50", 0.5), ("p99", 0.99))}
    details = (("eBPF " + unit, fmt.count(sum(a))), ("reference " + unit, fmt.count(sum(b))),
               ("shared bucket bounds", ", ".join(f"{x:g}" for x in bounds)))
    p50, p99 = q["p50"], q["p99"]
    shown = [f"p50 {fmt.seconds(_finite(p50[i]))}, p99 {fmt.seconds(_finite(p99[i]))}"
             for i in (0, 1)]  # each on its own layout; the test ran on the shared bounds
    _, why = classify(result)
    why = why.replace("handshakes", unit).replace("handshake ", "")
    return Judged(_word(result.outcome, result.better), why, _relative(p50[0], p50[1]),
                  HISTOGRAM_TEST, shown[0], shown[1], details)


# --- failed attempts ------------------------------------------------------------------------

def failures(ebpf: tuple[float, float] | None, reference: tuple[float, float] | None,
             settings: JudgeSettings) -> Judged:
    """``(attempts, completed)`` of each side: the judge's connect-failure test (rate test of
    failures per attempt, its floor and minimum events); fewer failures is better."""
    if ebpf is None or reference is None:
        return no_data(f"no {'eBPF' if ebpf is None else 'kube-proxy'} connections",
                       FAILURE_TEST)
    cohorts = [JudgeCohort((), round(att), min(round(att), round(ok))) for att, ok in
               (ebpf, reference)]
    result = compare.judge(CONNECT_FAILURES, cohorts[0], cohorts[1], (),
                           compare.Span("report", 0.0, 0.0), settings)
    ratios = [c.failures / c.attempts if c.attempts else None for c in cohorts]
    shown = [f"{fmt.ratio(r)} of {fmt.count(c.attempts)} failed" for r, c in zip(ratios, cohorts)]
    change = (ratios[0] / ratios[1] - 1.0 if ratios[0] is not None and ratios[1] else None)
    _, why = classify(result)
    return Judged(_word(result.outcome, result.better), why, change, FAILURE_TEST,
                  shown[0], shown[1])


# --- means of a quantity ------------------------------------------------------------------

def means(ebpf: tuple[float, float] | None, reference: tuple[float, float] | None,
          settings: JudgeSettings, *, lower_is_better: bool, unit: str,
          exposure: str) -> Judged:
    """``(mean, exposure seconds)`` of each side, compared with the relative threshold."""
    if ebpf is None or reference is None:
        return no_data(f"no {'eBPF' if ebpf is None else 'kube-proxy'} series", MEAN_TEST)
    (m_t, x_t), (m_c, x_c) = ebpf, reference
    need = settings.short_window_seconds
    shown = (f"{m_t:.3g} {unit}", f"{m_c:.3g} {unit}")
    details = ((f"eBPF {exposure}", fmt.length(x_t)), (f"reference {exposure}", fmt.length(x_c)))
    if x_t < need or x_c < need:
        return Judged(INCONCLUSIVE, f"too little data: {fmt.length(x_t)} eBPF and "
                                    f"{fmt.length(x_c)} kube-proxy {exposure}, "
                                    f"{fmt.length(need)} needed on each side", None, MEAN_TEST,
                      *shown, details)
    if m_c <= 0:
        return Judged(INCONCLUSIVE, "the kube-proxy side measured 0: nothing to compare with",
                      None, MEAN_TEST, *shown, details)
    change = m_t / m_c - 1.0
    rel = settings.relative_threshold
    summary = f"{m_t:.3g} vs {m_c:.3g} {unit} ({fmt.relative(change)})"
    improved = change < -rel if lower_is_better else change > rel
    regressed = change > rel if lower_is_better else change < -rel
    word, how = ((BETTER, "beyond") if improved else (WORSE, "beyond") if regressed
                 else (NOT_WORSE, "within"))
    return Judged(word, f"{word}: {summary}, {how} ±{rel:.0%}", change, MEAN_TEST, *shown,
                  details)


# --- combining ----------------------------------------------------------------------------

def combined(outcomes: Sequence[str]) -> str:
    """One outcome from several: worse if any is worse; inconclusive when none is conclusive;
    better when every conclusive one is better; else not worse."""
    if WORSE in outcomes:
        return WORSE
    conclusive = [o for o in outcomes if o != INCONCLUSIVE]
    if not conclusive:
        return INCONCLUSIVE
    return BETTER if all(o == BETTER for o in conclusive) else NOT_WORSE


def _word(outcome: str, better: bool) -> str:
    if outcome == J_WORSE:
        return WORSE
    if outcome == J_INCONCLUSIVE:
        return INCONCLUSIVE
    return BETTER if better else NOT_WORSE


def _relative(a: float, b: float) -> float | None:
    if not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return None
    return a / b - 1.0


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
