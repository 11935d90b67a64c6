"""The verification probes' results as judge evidence: one pseudo-service per check.

Each check of the probes' vocabulary becomes a service of namespace ``kpr-probe`` named
after the check, with one row per datapath of the node whose datapath handled the path
(the ``node``/``datapath`` of ``kpr_probe_checks_total``). Its handshake histogram is
``kpr_probe_duration_seconds`` summed over the nodes of that datapath; its connection
attempts are the check's ``pass`` and ``fail`` results (``established`` = pass, so the
``connect_failures`` SLI is the ratio of failed checks; ``error`` results, where the probe
could not run the check, are no evidence). The probes see no flows, so the drop SLIs of
these services stay inconclusive.

The rows join the SLI snapshot the judge and the baseline read, so the same statistics
compare eBPF with kube-proxy nodes on the same targets (canary-vs-control) and with the
pre-switch baseline (after-vs-baseline), and the verdicts reach ``kpr_verdict`` and
``/api/v1/verdicts``. Probe traffic is steady, so this gives verdicts on a cluster without
application traffic. Over Prometheus (``judge.source: prometheus``) the same rows come from
``exporter.judge_prom.queries.probe_queries``.

The probes' counters are cumulative per probe and restart at zero with it; ``ProbeTotals``
turns the last scrape of every probe into totals that never go down: each series adds what
it gained since it was last seen (all of it after a reset, as ``rate()`` reads a reset),
and a probe that goes away leaves what it counted. Histograms with other bounds than the
snapshot's are re-bucketed: a bucket counts towards the smallest snapshot bound at or above
its own (exact when the bounds agree, as they do by default). Pure module.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from exporter.snapshot import ServiceSli, SliKey, SliSnapshot

NAMESPACE = "kpr-probe"
PASS, FAIL = "pass", "fail"
ESTABLISHED = "established"

#: (check, node, datapath, result) -> cumulative count.
Counts = Mapping[tuple[str, str, str, str], float]
#: (check, node, datapath) -> cumulative buckets as (upper bound, count), +Inf last.
Buckets = Mapping[tuple[str, str, str], Sequence[tuple[float, float]]]


@dataclass(frozen=True)
class ProbeReading:
    """One probe's cumulative results at its last good scrape."""

    counts: Counts = field(default_factory=dict)
    buckets: Buckets = field(default_factory=dict)


class ProbeTotals:
    """Monotone per-(check, datapath) totals of every probe's results."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._last: dict[tuple[str, object], tuple[float, ...]] = {}
        self._results: dict[tuple[str, str], dict[str, float]] = {}  # (check, dp) -> result
        self._hist: dict[tuple[str, str], list[float]] = {}  # (check, dp) -> bucket counts

    def observe(self, readings: Mapping[str, ProbeReading],
                known: Iterable[str] | None = None) -> None:
        """Add what each probe gained since its last reading. ``known`` are the probes
        still targeted (default: those read now); the others are forgotten."""
        for probe, reading in readings.items():
            for (check, _node, datapath, result), value in reading.counts.items():
                if result not in (PASS, FAIL):
                    continue
                gained = self._gain((probe, (check, _node, datapath, result)), (value,))
                row = self._results.setdefault((check, datapath), {})
                row[result] = row.get(result, 0.0) + gained[0]
            for (check, _node, datapath), cumulative in reading.buckets.items():
                counts = self._rebucket(cumulative)
                gained = self._gain((probe, (check, _node, datapath)), counts)
                total = self._hist.setdefault((check, datapath), [0.0] * len(counts))
                for i, g in enumerate(gained):
                    total[i] += g
        keep = set(readings if known is None else known)
        for key in [k for k in self._last if k[0] not in keep]:
            del self._last[key]

    def services(self) -> dict[SliKey, ServiceSli]:
        """The pseudo-services' cumulative SLI rows."""
        out: dict[SliKey, ServiceSli] = {}
        width = len(self.bounds) + 1
        for check, datapath in sorted(self._results.keys() | self._hist.keys()):
            results = self._results.get((check, datapath), {})
            hist = self._hist.get((check, datapath), [0.0] * width)
            passed, failed = round(results.get(PASS, 0.0)), round(results.get(FAIL, 0.0))
            out[SliKey(NAMESPACE, check, datapath)] = ServiceSli(
                connect_counts=tuple(round(c) for c in hist),
                attempts={ESTABLISHED: passed, FAIL: failed})
        return out

    def _gain(self, key: tuple[str, object], now: tuple[float, ...]) -> tuple[float, ...]:
        before = self._last.get(key)
        self._last[key] = now
        if before is None or len(before) != len(now) or any(b > n for b, n in zip(before, now)):
            return now  # first seen, or reset: everything counted since the probe started
        return tuple(n - b for n, b in zip(now, before))

    def _rebucket(self, cumulative: Sequence[tuple[float, float]]) -> tuple[float, ...]:
        """Cumulative (bound, count) pairs -> non-cumulative counts on ``self.bounds``."""
        counts = [0.0] * (len(self.bounds) + 1)
        below = 0.0
        for bound, total in sorted(cumulative):
            i = len(self.bounds) if math.isinf(bound) else bisect.bisect_left(self.bounds, bound)
            counts[i] += max(0.0, total - below)
            below = max(below, total)
        return tuple(counts)


def with_probes(snapshot: SliSnapshot, services: Mapping[SliKey, ServiceSli]) -> SliSnapshot:
    """``snapshot`` with the probes' pseudo-services added. The namespace ``kpr-probe`` is
    reserved: an application namespace of that name would be shadowed by the probes."""
    if not services:
        return snapshot
    return replace(snapshot, services={**snapshot.services, **services})
