"""``kpr_verdict`` samples -> words per (service, SLI, comparison), explained by the inputs.

1 worse, 0 not worse, -1 better, NaN inconclusive. Several exporters' verdicts for the same
key combine to the most severe (worse, inconclusive, not worse, better). The explanation
shows what the report measured over its after window for the same SLI and comparison.
Pure module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from exporter.report import fmt
from exporter.report.data import Sample
from exporter.report.model import (
    AFTER_VS_BASELINE,
    BETTER,
    CANARY_VS_CONTROL,
    INCONCLUSIVE,
    NO_VERDICT,
    NOT_WORSE,
    WORSE,
    Baseline,
    Cohort,
)

SEVERITY = {WORSE: 0, INCONCLUSIVE: 1, NOT_WORSE: 2, BETTER: 3, NO_VERDICT: 4}
ServiceKey = tuple[str, str]


def verdict_word(value: float) -> str:
    """1 worse, 0 not worse, -1 better, NaN inconclusive."""
    if math.isnan(value):
        return INCONCLUSIVE
    if value > 0.5:
        return WORSE
    if value < -0.5:
        return BETTER
    return NOT_WORSE


def merge_verdicts(samples: Iterable[Sample], effects: Iterable[Sample]) -> dict[
        ServiceKey, dict[tuple[str, str], tuple[str, float | None]]]:
    """Per service, ``(sli, comparison) -> (word, effect)``; several exporters' verdicts for
    the same key combine to the most severe (worse, inconclusive, not worse, better)."""
    effect_of: dict[tuple[str, str, str, str], float] = {}
    for s in effects:
        key = _verdict_key(s)
        # +Inf is a real effect (something where the reference had nothing); NaN is none.
        if not math.isnan(s.value) and (key not in effect_of or abs(s.value) > abs(effect_of[key])):
            effect_of[key] = s.value
    out: dict[ServiceKey, dict[tuple[str, str], tuple[str, float | None]]] = defaultdict(dict)
    for s in samples:
        ns, svc, sli, comparison = _verdict_key(s)
        word = verdict_word(s.value)
        cells = out[(ns, svc)]
        held = cells.get((sli, comparison))
        if held is None or SEVERITY[word] < SEVERITY[held[0]]:
            cells[(sli, comparison)] = (word, effect_of.get((ns, svc, sli, comparison)))
    return dict(out)


def _verdict_key(sample: Sample) -> tuple[str, str, str, str]:
    labels = sample.labels
    return (labels.get("namespace", ""), labels.get("service", ""), labels.get("sli", ""),
            labels.get("comparison", ""))


def explain(sli: str, comparison: str, word: str, after: Cohort | None, control: Cohort | None,
            baseline: Baseline | None) -> str:
    """The measured inputs behind a verdict, over the report's after window."""
    if comparison == CANARY_VS_CONTROL:
        measured = _measure_pair(sli, after, control)
        missing = [name for name, side in (("eBPF", after), ("kube-proxy (same time)", control))
                   if side is None]
    elif comparison == AFTER_VS_BASELINE:
        measured = _measure_baseline(sli, after, baseline)
        missing = [name for name, side in (("eBPF", after), ("frozen baseline", baseline))
                   if side is None]
    else:
        return f"unknown comparison {comparison}"
    text = measured
    if after is not None:
        text += f" (eBPF {fmt.span(after.window.start, after.window.end)})"
    if missing:
        text += "; no data in the range for " + " and ".join(missing)
    if word == INCONCLUSIVE:
        text += ("; inconclusive means too little traffic, missing data or a measurement "
                 "outage in the judge's windows")
    return text


def _measure_pair(sli: str, a: Cohort | None, b: Cohort | None) -> str:
    if sli == "connect_duration":
        return (f"p99 eBPF {fmt.seconds((a.p99 if a else None))} vs kube-proxy {fmt.seconds((b.p99 if b else None))}, "
                f"p50 {fmt.seconds((a.p50 if a else None))} vs {fmt.seconds((b.p50 if b else None))}, "
                f"{fmt.count((a.handshakes if a else None))} vs {fmt.count((b.handshakes if b else None))} handshakes")
    if sli == "connect_failures":
        return (f"failed handshakes eBPF {fmt.ratio((a.failure_ratio if a else None))} "
                f"({fmt.count((a.failures if a else None))} of {fmt.count((a.attempts if a else None))}) vs kube-proxy "
                f"{fmt.ratio((b.failure_ratio if b else None))} "
                f"({fmt.count((b.failures if b else None))} of {fmt.count((b.attempts if b else None))})")
    if sli == "drops":
        return (f"drop ratio eBPF {fmt.ratio((a.drop_ratio if a else None))} "
                f"({fmt.count((a.drops if a else None))} of {fmt.count((a.flows if a else None))} flows) vs kube-proxy "
                f"{fmt.ratio((b.drop_ratio if b else None))} "
                f"({fmt.count((b.drops if b else None))} of {fmt.count((b.flows if b else None))} flows)")
    if sli == "kpr_sensitive_drops":
        return (f"KPR-sensitive drops eBPF {fmt.ratio((a.sensitive_ratio if a else None))} "
                f"({fmt.count((a.sensitive_drops if a else None))} of {fmt.count((a.flows if a else None))} flows) vs "
                f"kube-proxy {fmt.ratio((b.sensitive_ratio if b else None))} "
                f"({fmt.count((b.sensitive_drops if b else None))} of {fmt.count((b.flows if b else None))} flows)")
    return f"SLI {sli}"


def _measure_baseline(sli: str, a: Cohort | None, base: Baseline | None) -> str:
    if sli == "connect_duration":
        return (f"p99 eBPF {fmt.seconds((a.p99 if a else None))} vs baseline {fmt.seconds((base.p99 if base else None))}, "
                f"p50 {fmt.seconds((a.p50 if a else None))} vs {fmt.seconds((base.p50 if base else None))}, "
                f"{fmt.count((a.handshakes if a else None))} eBPF handshakes")
    if sli == "drops":
        return (f"drop ratio eBPF {fmt.ratio((a.drop_ratio if a else None))} "
                f"({fmt.count((a.drops if a else None))} of {fmt.count((a.flows if a else None))} flows) vs baseline "
                f"{fmt.ratio((base.drop_ratio if base else None))}")
    if sli == "connect_failures":
        return (f"failed handshakes eBPF {fmt.ratio((a.failure_ratio if a else None))} "
                f"({fmt.count((a.failures if a else None))} of {fmt.count((a.attempts if a else None))}); the baseline "
                "value is held by the exporter (not exported)")
    if sli == "kpr_sensitive_drops":
        return (f"KPR-sensitive drops eBPF {fmt.ratio((a.sensitive_ratio if a else None))} "
                f"({fmt.count((a.sensitive_drops if a else None))} of {fmt.count((a.flows if a else None))} flows); "
                "the baseline value is held by the exporter (not exported)")
    return f"SLI {sli}"
