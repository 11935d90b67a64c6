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
        return (f"p99 eBPF {fmt.seconds(a and a.p99)} vs kube-proxy {fmt.seconds(b and b.p99)}, "
                f"p50 {fmt.seconds(a and a.p50)} vs {fmt.seconds(b and b.p50)}, "
                f"{fmt.count(a and a.handshakes)} vs {fmt.count(b and b.handshakes)} handshakes")
    if sli == "connect_failures":
        return (f"failed handshakes eBPF {fmt.ratio(a and a.failure_ratio)} "
                f"({fmt.count(a and a.failures)} of {fmt.count(a and a.attempts)}) vs kube-proxy "
                f"{fmt.ratio(b and b.failure_ratio)} "
                f"({fmt.count(b and b.failures)} of {fmt.count(b and b.attempts)})")
    if sli == "drops":
        return (f"drop ratio eBPF {fmt.ratio(a and a.drop_ratio)} "
                f"({fmt.count(a and a.drops)} of {fmt.count(a and a.flows)} flows) vs kube-proxy "
                f"{fmt.ratio(b and b.drop_ratio)} "
                f"({fmt.count(b and b.drops)} of {fmt.count(b and b.flows)} flows)")
    if sli == "kpr_sensitive_drops":
        return (f"KPR-sensitive drops eBPF {fmt.ratio(a and a.sensitive_ratio)} "
                f"({fmt.count(a and a.sensitive_drops)} of {fmt.count(a and a.flows)} flows) vs "
                f"kube-proxy {fmt.ratio(b and b.sensitive_ratio)} "
                f"({fmt.count(b and b.sensitive_drops)} of {fmt.count(b and b.flows)} flows)")
    return f"SLI {sli}"


def _measure_baseline(sli: str, a: Cohort | None, base: Baseline | None) -> str:
    if sli == "connect_duration":
        return (f"p99 eBPF {fmt.seconds(a and a.p99)} vs baseline {fmt.seconds(base and base.p99)}, "
                f"p50 {fmt.seconds(a and a.p50)} vs {fmt.seconds(base and base.p50)}, "
                f"{fmt.count(a and a.handshakes)} eBPF handshakes")
    if sli == "drops":
        return (f"drop ratio eBPF {fmt.ratio(a and a.drop_ratio)} "
                f"({fmt.count(a and a.drops)} of {fmt.count(a and a.flows)} flows) vs baseline "
                f"{fmt.ratio(base and base.drop_ratio)}")
    if sli == "connect_failures":
        return (f"failed handshakes eBPF {fmt.ratio(a and a.failure_ratio)} "
                f"({fmt.count(a and a.failures)} of {fmt.count(a and a.attempts)}); the baseline "
                "value is held by the exporter (not exported)")
    if sli == "kpr_sensitive_drops":
        return (f"KPR-sensitive drops eBPF {fmt.ratio(a and a.sensitive_ratio)} "
                f"({fmt.count(a and a.sensitive_drops)} of {fmt.count(a and a.flows)} flows); "
                "the baseline value is held by the exporter (not exported)")
    return f"SLI {sli}"
