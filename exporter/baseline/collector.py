"""Prometheus collector for the frozen baseline.

Example output::

    kpr_baseline_connect_duration_seconds{namespace="shop",service="cart",q="0.99"} 0.0041
    kpr_baseline_drop_ratio{namespace="shop",service="cart"} 0.0013
    kpr_baseline_capture_timestamp_seconds 1.764e+09

Stored values, not live quantiles of this exporter's histograms. Without a baseline nothing
is exported (absent, not zero); a service without handshakes (or without flows) has no
quantile (or drop-ratio) series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.baseline.model import QUANTILES, Baseline
from exporter.judge.histogram import histogram_quantile

_CONNECT = "kpr_baseline_connect_duration_seconds"
_DROP = "kpr_baseline_drop_ratio"
_CAPTURED = "kpr_baseline_capture_timestamp_seconds"
_CONNECT_HELP = "Frozen pre-switch handshake duration quantiles (kube-proxy datapath)"
_DROP_HELP = "Frozen pre-switch drops per flow (kube-proxy datapath)"
_CAPTURED_HELP = "When the pre-switch baseline was frozen (seconds since the epoch)"


class BaselineCollector:
    """Exports whatever baseline ``current()`` returns at scrape time."""

    def __init__(self, current: Callable[[], Baseline | None]) -> None:
        self._current = current

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(_CONNECT, _CONNECT_HELP, labels=("namespace", "service", "q")),
                GaugeMetricFamily(_DROP, _DROP_HELP, labels=("namespace", "service")),
                GaugeMetricFamily(_CAPTURED, _CAPTURED_HELP)]

    def collect(self) -> Iterator[Metric]:
        baseline = self._current()
        if baseline is None:
            return
        connect = GaugeMetricFamily(_CONNECT, _CONNECT_HELP,
                                    labels=("namespace", "service", "q"))
        drop = GaugeMetricFamily(_DROP, _DROP_HELP, labels=("namespace", "service"))
        for (namespace, service), cohort in sorted(baseline.services.items()):
            for q in QUANTILES:
                value = histogram_quantile(q, baseline.connect_bounds, cohort.connect_counts)
                if math.isfinite(value):
                    connect.add_metric((namespace, service, str(q)), value)
            if cohort.flow_exposure:
                drop.add_metric((namespace, service), cohort.drops / cohort.flow_exposure)
        captured = GaugeMetricFamily(_CAPTURED, _CAPTURED_HELP)
        captured.add_metric((), baseline.captured_at)
        yield connect
        yield drop
        yield captured
