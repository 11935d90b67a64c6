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
from prometheus_client.core import (
    CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric,
)

from exporter.metrics_contract import CONNECT_BUCKETS
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
        for series, row in sorted(self._hist.items()):
            cumulative, buckets = 0.0, []
            for bound, observed in zip(le, row[:-1], strict=True):
                cumulative += observed
                buckets.append((bound, cumulative))
            duration.add_metric(series, buckets, row[-1])
        yield duration


class ProbeStatus:
    """A probe process's own state, labelled ``probe_node`` (the node it runs on):
    ``kpr_probe_rounds_total``, ``kpr_probe_last_round_timestamp_seconds``,
    ``kpr_probe_coverage_rounds``, ``kpr_probe_target_errors_total``;
    ``kpr_probe_not_applicable`` for the (check, node) cells no check can apply to and
    ``kpr_probe_target_datapath_info`` for each target node's datapath now.
    ``kpr-exporter verify`` reads them to tell fresh, stale and inapplicable results apart."""

    def __init__(self, probe_node: str, registry: CollectorRegistry | None = None) -> None:
        self.probe_node = probe_node
        self.rounds = 0
        self.target_errors = 0
        self.last_round: float | None = None
        self.coverage_rounds: int | None = None
        self.not_applicable: dict[tuple[str, str], str] = {}
        self.datapaths: dict[str, str] = {}
        if registry is not None:
            registry.register(self)

    def round_done(self, at: float, coverage_rounds: int,
                   not_applicable: dict[tuple[str, str], str],
                   datapaths: dict[str, str]) -> None:
        self.rounds += 1
        self.datapaths = dict(datapaths)
        self.last_round = at
        self.coverage_rounds = coverage_rounds
        self.not_applicable = dict(not_applicable)

    def collect(self) -> Iterator[Metric]:
        me = [self.probe_node]
        rounds = CounterMetricFamily("kpr_probe_rounds", "Rounds of checks this probe "
                                     "completed.", labels=["probe_node"])
        rounds.add_metric(me, self.rounds)
        yield rounds
        errors = CounterMetricFamily(
            "kpr_probe_target_errors", "Rounds whose target file could not be used (unreadable,"
            " invalid, or without this probe's node) or whose listing of the extra Services "
            "failed, and failed watches of the echo's EndpointSlices; the probe kept its last "
            "good targets.",
            labels=["probe_node"])
        errors.add_metric(me, self.target_errors)
        yield errors
        last = GaugeMetricFamily("kpr_probe_last_round_timestamp_seconds",
                                 "When this probe last completed a round.", labels=["probe_node"])
        coverage = GaugeMetricFamily("kpr_probe_coverage_rounds", "Rounds this probe needs to "
                                     "check every node once.", labels=["probe_node"])
        if self.last_round is not None and self.coverage_rounds is not None:
            last.add_metric(me, self.last_round)
            coverage.add_metric(me, self.coverage_rounds)
        yield last
        yield coverage
        skipped = GaugeMetricFamily("kpr_probe_not_applicable", "1 for each check that cannot "
                                    "apply to a node, with the reason.",
                                    labels=["check", "node", "reason"])
        for (check, node), reason in sorted(self.not_applicable.items()):
            skipped.add_metric([check, node, reason], 1)
        yield skipped
        datapath = GaugeMetricFamily("kpr_probe_target_datapath_info", "1 for each node of "
                                     "this probe's targets, with its datapath.",
                                     labels=["node", "datapath"])
        for node, dp in sorted(self.datapaths.items()):
            datapath.add_metric([node, dp], 1)
        yield datapath
