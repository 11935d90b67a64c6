"""Prometheus collector for the judge's latest verdicts.

Example output::

    kpr_verdict{namespace="shop",service="cart",sli="connect_duration",comparison="canary-vs-control"} 0
    kpr_verdict_effect_size{namespace="shop",service="cart",sli="connect_duration",comparison="canary-vs-control"} -0.28
    kpr_judge_last_evaluation_timestamp_seconds 1.764e+09

``kpr_verdict`` is 1 worse, 0 not worse, -1 better, NaN inconclusive. The effect size is
the short window's relative change (p99 for latency, rate ratio - 1 for ratios), NaN when
it cannot be computed. Before the first evaluation nothing is exported (absent, not zero).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.judge.driver import Judge

LABELS = ("namespace", "service", "sli", "comparison")


class VerdictCollector:
    """Yields the verdicts of the last ``Judge.evaluate`` at scrape time."""

    def __init__(self, judge: Judge) -> None:
        self._judge = judge

    def describe(self) -> list[Metric]:
        return [
            GaugeMetricFamily("kpr_verdict", _VERDICT_HELP, labels=LABELS),
            GaugeMetricFamily("kpr_verdict_effect_size", _EFFECT_HELP, labels=LABELS),
            GaugeMetricFamily("kpr_judge_last_evaluation_timestamp_seconds", _EVAL_HELP),
        ]

    def collect(self) -> Iterator[Metric]:
        judge = self._judge
        verdict = GaugeMetricFamily("kpr_verdict", _VERDICT_HELP, labels=LABELS)
        effect = GaugeMetricFamily("kpr_verdict_effect_size", _EFFECT_HELP, labels=LABELS)
        for v in judge.verdicts:
            labels = (v.namespace, v.service, v.sli, v.comparison)
            verdict.add_metric(labels, v.value)
            effect.add_metric(labels, v.effect_size)
        yield verdict
        yield effect
        if judge.evaluated_at == judge.evaluated_at:  # not NaN: evaluated at least once
            stamp = GaugeMetricFamily("kpr_judge_last_evaluation_timestamp_seconds", _EVAL_HELP)
            stamp.add_metric((), judge.evaluated_at)
            yield stamp


_VERDICT_HELP = ("Judge verdict per service, SLI and comparison: 1 worse, 0 not worse, -1 better, "
                 "NaN inconclusive")
_EFFECT_HELP = ("Relative change eBPF vs control in the short window (p99 for connect_duration, "
                "rate ratio - 1 for ratios)")
_EVAL_HELP = "When the judge last evaluated every service (seconds since the epoch)"
