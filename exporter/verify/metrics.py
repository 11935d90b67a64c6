"""What the probes found, as metrics: a counter of check results and a histogram of
connect time, both labelled by the node whose datapath handled the path.

``node`` and ``datapath`` are ``CheckResult.served_by``: the target node for checks aimed
at a node (its NodePort, hostPort or eTP=Local health check), the probing node otherwise.
So a NodePort broken on one eBPF node counts against that node, whichever probe saw it.
Series appear with the first result, never pre-initialised at zero. A collector of its
own, like the SLI engine's, so no ``_created`` series are exported.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from exporter.sli.series import CONNECT_BUCKETS
from exporter.verify.results import CheckResult

LABELS = ("check", "node", "datapath")
Key = tuple[str, str, str]


class ProbeMetrics:
    """``kpr_probe_checks_total`` and ``kpr_probe_duration_seconds``; ``observe`` feeds it."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._counts: dict[tuple[str, str, str, str], int] = {}
        self._hist: dict[Key, list[float]] = {}  # bucket counts, then the sum
        if registry is not None:
            registry.register(self)

    def observe(self, results: Iterable[CheckResult]) -> None:
        for res in results:
            node, datapath = res.served_by
            key = (res.check, node, datapath)
            self._counts[(*key, res.result)] = self._counts.get((*key, res.result), 0) + 1
            if res.connect_seconds is not None:
                row = self._hist.setdefault(key, [0.0] * (len(CONNECT_BUCKETS) + 2))
                row[bisect.bisect_left(CONNECT_BUCKETS, res.connect_seconds)] += 1
                row[-1] += res.connect_seconds

    def collect(self) -> Iterator[Metric]:
        checks = CounterMetricFamily(
            "kpr_probe_checks", "Verification checks by result, per node whose datapath "
            "handled the path.", labels=(*LABELS, "result"))
        for labels, count in sorted(self._counts.items()):
            checks.add_metric(labels, count)
        yield checks
        duration = HistogramMetricFamily(
            "kpr_probe_duration_seconds", "TCP handshake time of verification checks.",
            labels=LABELS)
        le = [str(b) for b in CONNECT_BUCKETS] + ["+Inf"]
        for labels, row in sorted(self._hist.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip(le, row[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            duration.add_metric(labels, buckets, row[-1])
        yield duration
