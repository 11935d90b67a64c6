"""One window, one SLI: treatment cohort against control cohort -> ``WindowVerdict``.

Latency (``connect_duration``) is judged on the handshake histograms with two tests, each
at ``alpha / 2``:

* location: Mann-Whitney U on the binned samples (ties corrected) with the Hodges-Lehmann
  shift over bucket midpoints; it matters when the shift exceeds both the relative threshold
  (of the control's median) and the absolute floor;
* tail: for the pooled p90, p99 and p99.9, the share of samples above the lower edge of
  the bucket holding that pooled quantile, compared with the exact conditional binomial
  test (Bonferroni over the distinct edges); it matters when the same interpolated quantile
  moved by more than the relative threshold and the absolute floor. This catches what a
  location test misses (SYN retransmissions, a heavier tail under an unchanged median).
  Tail quantiles for effects use ``tail_quantile`` (power-law interpolation inside the
  bucket); the inputs also show PromQL's linear ``p50/p90/p99`` as dashboards compute them.

Worse when either test is significant in the worse direction and its effect matters;
better when one is in the better direction and neither is worse. The effect size is the
relative p99 change (tail estimate).

Ratios (connect failures per attempt, drops and KPR-sensitive drops per flow) are judged
with the conditional binomial rate test: worse when significant at ``alpha``, the ratio
rose by more than the floor (absolute) and the relative threshold, and the eBPF side has at
least ``min_events`` events. The effect size is the rate ratio minus one.

Too little traffic on either side is inconclusive, never a zero. Pure module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exporter.judge.counts import rate_test
from exporter.judge.histogram import (
    hodges_lehmann,
    histogram_quantile,
    mann_whitney,
    midpoints,
    tail_quantile,
    tail_split,
)
from exporter.judge.history import Cohort
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import (
    CONNECT_DURATION,
    CONNECT_FAILURES,
    DROPS,
    INCONCLUSIVE,
    KPR_SENSITIVE_DROPS,
    MANN_WHITNEY,
    NAN,
    NOT_WORSE,
    RATE_RATIO,
    SIGNAL_BETTER,
    SIGNAL_NONE,
    SIGNAL_WORSE,
    TAIL,
    WORSE,
    TestResult,
    WindowVerdict,
)

TAIL_QUANTILES = (0.9, 0.99, 0.999)
QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True, slots=True)
class Span:
    """Which window is being judged and what the two sides are called in reasons."""

    window: str
    start: float
    end: float
    partial: bool = False
    treatment: str = "eBPF"
    control: str = "kube-proxy"


def judge(sli: str, treatment: Cohort | None, control: Cohort | None,
          bounds: Sequence[float], span: Span, settings: JudgeSettings) -> WindowVerdict:
    """The verdict of one SLI in one window."""
    if sli == CONNECT_DURATION:
        return judge_latency(treatment, control, bounds, span, settings)
    if sli == CONNECT_FAILURES:
        return judge_rate(sli, treatment, control, span, settings, events=lambda c: c.failures,
                          exposure=lambda c: c.attempts, min_exposure=settings.min_connections,
                          floor=settings.connect_failure_ratio_floor, unit="connection attempts")
    if sli == DROPS:
        return judge_rate(sli, treatment, control, span, settings, events=lambda c: c.drops,
                          exposure=lambda c: c.flow_exposure, min_exposure=settings.min_flows,
                          floor=settings.drop_ratio_floor, unit="flows")
    if sli == KPR_SENSITIVE_DROPS:
        return judge_rate(sli, treatment, control, span, settings, events=lambda c: c.kpr_drops,
                          exposure=lambda c: c.flow_exposure, min_exposure=settings.min_flows,
                          floor=settings.kpr_sensitive_drop_ratio_floor, unit="flows")
    raise ValueError(f"unknown SLI {sli!r}")


def inconclusive(span: Span, reason: str, inputs: dict[str, Any] | None = None) -> WindowVerdict:
    return WindowVerdict(span.window, span.start, span.end, span.partial, INCONCLUSIVE, False,
                         reason, NAN, inputs or {})


def _guard(treatment: Cohort | None, control: Cohort | None, n_t: int, n_c: int, need: int,
           unit: str, span: Span) -> str | None:
    if treatment is None or n_t == 0:
        return f"no {span.treatment} traffic"
    if control is None or n_c == 0:
        return f"no {span.control} traffic to compare with (no control group)"
    if n_t < need:
        return f"too little {span.treatment} traffic: {n_t} {unit} < {need}"
    if n_c < need:
        return f"too little {span.control} traffic: {n_c} {unit} < {need}"
    return None


# --- latency ---------------------------------------------------------------------------------


def judge_latency(treatment: Cohort | None, control: Cohort | None, bounds: Sequence[float],
                  span: Span, settings: JudgeSettings) -> WindowVerdict:
    n_t = treatment.connections if treatment else 0
    n_c = control.connections if control else 0
    inputs: dict[str, Any] = {"treatment": {"connections": n_t}, "control": {"connections": n_c}}
    problem = _guard(treatment, control, n_t, n_c, settings.min_connections, "handshakes", span)
    if problem:
        return inconclusive(span, problem, inputs)
    assert treatment is not None and control is not None
    a, b = treatment.connect_counts, control.connect_counts
    if len(a) != len(bounds) + 1 or len(b) != len(bounds) + 1:
        return inconclusive(span, "histogram bucket layouts differ", inputs)
    q_t = {q: histogram_quantile(q, bounds, a) for q in QUANTILES}
    q_c = {q: histogram_quantile(q, bounds, b) for q in QUANTILES}
    inputs = {
        "treatment": _latency_inputs(n_t, q_t, a), "control": _latency_inputs(n_c, q_c, b),
        "bounds": list(bounds),
    }
    alpha = settings.alpha / 2.0
    rel, floor = settings.relative_threshold, settings.absolute_floor_seconds

    rank = mann_whitney(a, b)
    shift = hodges_lehmann(a, b, midpoints(bounds), 1.0 - settings.alpha)
    median_c = q_c[0.5]
    rel_shift = shift.estimate / median_c if median_c > 0 else NAN
    location = TestResult(
        MANN_WHITNEY, rank.z, rank.p_greater, rank.p_less, alpha,
        shift.estimate, shift.low, shift.high, shift.confidence,
        rel_shift, shift.estimate, rel, floor,
        _signal(rank.p_greater, rank.p_less, alpha, rel_shift, shift.estimate, rel, floor),
        note=f"Hodges-Lehmann shift over bucket midpoints; effect relative to the "
             f"{span.control} median",
    )
    tests = [location]

    tq_t = {q: tail_quantile(q, bounds, a) for q in TAIL_QUANTILES}
    tq_c = {q: tail_quantile(q, bounds, b) for q in TAIL_QUANTILES}
    for name, side in (("treatment", tq_t), ("control", tq_c)):
        inputs[name]["tail_estimates"] = {f"p{_qname(q)}": v for q, v in side.items()}
    p99_t, p99_c = tq_t[0.99], tq_c[0.99]
    p99_change = p99_t / p99_c - 1.0 if p99_c > 0 else NAN
    splits = {}
    for q in TAIL_QUANTILES:  # one test per distinct edge, Bonferroni over the edges
        split = tail_split(bounds, a, b, q)
        if split is not None and split.index not in splits:
            splits[split.index] = (q, split)
    tail_alpha = alpha / max(1, len(splits))
    for q, split in splits.values():
        qt, qc = tq_t[q], tq_c[q]
        change = qt / qc - 1.0 if qc > 0 else NAN
        rt = rate_test(split.treatment, n_t, split.control, n_c, 1.0 - settings.alpha)
        z = _binomial_z(split.treatment, split.treatment + split.control, n_t / (n_t + n_c))
        tests.append(TestResult(
            TAIL, z, rt.p_greater, rt.p_less, tail_alpha,
            rt.rate_ratio, rt.low, rt.high, rt.confidence,
            change, qt - qc, rel, floor,
            _signal(rt.p_greater, rt.p_less, tail_alpha, change, qt - qc, rel, floor),
            note=f"p{_qname(q)}: share of handshakes above {split.threshold:g} s (the pooled "
                 f"p{_qname(q)} bucket's lower edge): {split.treatment}/{n_t} {span.treatment},"
                 f" {split.control}/{n_c} {span.control}; estimate = ratio of the shares, "
                 f"effect = relative p{_qname(q)} change",
        ))

    signals = [t.signal for t in tests]
    if SIGNAL_WORSE in signals:
        worst = tests[signals.index(SIGNAL_WORSE)]
        what = ("handshake median shift" if worst.name == MANN_WHITNEY else
                "handshake " + worst.note.split(":", 1)[0])
        reason = (f"{what} {_pct(worst.effect)} ({_ms(worst.absolute)}), p={worst.p_worse:.2g}"
                  f" < {worst.alpha:.2g}; above +{rel:.0%} and {_ms(floor)}")
        return WindowVerdict(span.window, span.start, span.end, span.partial, WORSE, False,
                             reason, p99_change, inputs, tuple(tests))
    better = SIGNAL_BETTER in signals
    reason = (f"handshake p99 {_ms(p99_t)} vs {_ms(p99_c)} ({_pct(p99_change)}), median shift "
              f"{_ms(shift.estimate)}" + ("; significantly better" if better else
                                          "; no significant regression beyond the thresholds"))
    return WindowVerdict(span.window, span.start, span.end, span.partial, NOT_WORSE, better,
                         reason, p99_change, inputs, tuple(tests))


def _latency_inputs(n: int, quantiles: dict[float, float],
                    counts: Sequence[int]) -> dict[str, object]:
    return {"connections": n, **{f"p{round(q * 100)}": v for q, v in quantiles.items()},
            "buckets": list(counts)}


# --- ratios ------------------------------------------------------------------------------------


def judge_rate(sli: str, treatment: Cohort | None, control: Cohort | None, span: Span,
               settings: JudgeSettings, *, events: Any, exposure: Any, min_exposure: int,
               floor: float, unit: str) -> WindowVerdict:
    x_t = exposure(treatment) if treatment else 0
    x_c = exposure(control) if control else 0
    e_t = events(treatment) if treatment else 0
    e_c = events(control) if control else 0
    inputs: dict[str, Any] = {
        "treatment": {"events": e_t, "exposure": x_t, "ratio": e_t / x_t if x_t else NAN},
        "control": {"events": e_c, "exposure": x_c, "ratio": e_c / x_c if x_c else NAN},
        "exposure_unit": unit,
    }
    problem = _guard(treatment, control, x_t, x_c, min_exposure, unit, span)
    if problem:
        return inconclusive(span, problem, inputs)
    alpha = settings.alpha
    rel = settings.ratio_relative_threshold
    rt = rate_test(e_t, x_t, e_c, x_c, 1.0 - alpha)
    ratio_t, ratio_c = e_t / x_t, e_c / x_c
    diff = ratio_t - ratio_c
    if e_t == 0 and e_c == 0:
        effect = 0.0
    else:
        effect = rt.rate_ratio - 1.0
    z = _binomial_z(e_t, e_t + e_c, x_t / (x_t + x_c))
    signal = _signal(rt.p_greater, rt.p_less, alpha, effect, diff, rel, floor,
                     better_effect=1.0 / (1.0 + rel) - 1.0)
    test = TestResult(RATE_RATIO, z, rt.p_greater, rt.p_less, alpha, rt.rate_ratio, rt.low,
                      rt.high, rt.confidence, effect, diff, rel, floor, signal,
                      note="exact conditional binomial test of the two rates given the total")
    what = {CONNECT_FAILURES: "connect failures", DROPS: "drops",
            KPR_SENSITIVE_DROPS: "KPR-sensitive drops"}[sli]
    summary = (f"{what} {e_t}/{x_t} ({ratio_t:.3%}) {span.treatment} vs {e_c}/{x_c} "
               f"({ratio_c:.3%}) {span.control}")
    if signal == SIGNAL_WORSE:
        if e_t < settings.min_events:
            return WindowVerdict(
                span.window, span.start, span.end, span.partial, INCONCLUSIVE, False,
                f"{summary}: only {e_t} {span.treatment} events, fewer than {settings.min_events}"
                " needed to call it worse", effect, inputs, (test,))
        reason = (f"{summary}, p={rt.p_greater:.2g} < {alpha:g}; rise above {floor:.2%} and "
                  f"+{rel:.0%}")
        return WindowVerdict(span.window, span.start, span.end, span.partial, WORSE, False,
                             reason, effect, inputs, (test,))
    better = signal == SIGNAL_BETTER
    reason = summary + ("; significantly better" if better else
                        "; no significant rise beyond the thresholds")
    return WindowVerdict(span.window, span.start, span.end, span.partial, NOT_WORSE, better,
                         reason, effect, inputs, (test,))


# --- helpers -----------------------------------------------------------------------------------


def _signal(p_worse: float, p_better: float, alpha: float, effect: float, absolute: float,
            threshold: float, floor: float, *, better_effect: float | None = None) -> str:
    """Which way a test points: significant *and* beyond both thresholds."""
    if p_worse < alpha and _gt(effect, threshold) and _gt(absolute, floor):
        return SIGNAL_WORSE
    limit = -threshold if better_effect is None else better_effect
    if p_better < alpha and _lt(effect, limit) and _lt(absolute, -floor):
        return SIGNAL_BETTER
    return SIGNAL_NONE


def _gt(value: float, limit: float) -> bool:
    return not math.isnan(value) and value > limit


def _lt(value: float, limit: float) -> bool:
    return not math.isnan(value) and value < limit


def _binomial_z(k: int, n: int, p: float) -> float:
    """Standardised count of the conditional binomial (for display; the p-value is exact)."""
    if n == 0 or p <= 0 or p >= 1:
        return NAN
    return (k - n * p) / math.sqrt(n * p * (1 - p))


def _qname(q: float) -> str:
    return f"{q * 100:g}"


def _pct(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+inf %" if value > 0 else "-inf %"
    return f"{value:+.0%}"


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    return f"{seconds * 1000:.3g} ms"
