"""Window totals -> per (namespace, service, datapath) cohorts with distributions and ratios.

Histogram bucket increases become non-cumulative shares and quantiles interpolated like
PromQL's ``histogram_quantile``; counters become ratios. A cohort that has flows but no drop
series has 0 drops (the recording rules read it the same way); a cohort without flows has
no drop ratio at all ("no data", never 0). Pure module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from exporter.report.data import RawData, Sample, Window
from exporter.report.model import Cohort
from exporter.report.queries import SENSITIVE_REASONS

ESTABLISHED = "established"
CohortKey = tuple[str, str, str]


def histogram_bounds(samples: Iterable[Sample]) -> tuple[float, ...]:
    """The finite ``le`` bounds seen in bucket samples, ascending."""
    bounds = set()
    for sample in samples:
        le = label_float(sample.labels.get("le"))
        if le is not None and math.isfinite(le):
            bounds.add(le)
    return tuple(sorted(bounds))


def quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float | None:
    """PromQL's ``histogram_quantile`` on cumulative counts (the last one is ``+Inf``):
    linear within the bucket, the first bucket starting at 0, a rank in ``+Inf`` giving the
    highest finite bound; None without samples."""
    if not cumulative or cumulative[-1] <= 0 or not bounds:
        return None
    rank = q * cumulative[-1]
    lower, below = 0.0, 0.0
    for upper, cum in zip(bounds, cumulative):
        if cum >= rank:
            inside = cum - below
            if inside <= 0 or upper <= 0:
                return upper
            return lower + (upper - lower) * (rank - below) / inside
        lower, below = upper, cum
    return bounds[-1]


def _distribution(points: Mapping[float, float], bounds: Sequence[float]) -> tuple[
        tuple[float, ...], float] | None:
    """Monotonic cumulative counts over ``bounds`` + ``+Inf`` from ``le -> count``."""
    if not points:
        return None
    cumulative: list[float] = []
    running = 0.0
    for bound in (*bounds, math.inf):
        if bound in points:
            running = max(running, points[bound])
        cumulative.append(running)
    return tuple(cumulative), cumulative[-1]


def window_cohorts(raw: RawData, window: Window,
                   bounds: Sequence[float]) -> dict[CohortKey, Cohort]:
    """Every (namespace, service, datapath) seen in the window's queries, as a ``Cohort``."""
    prefix = f"{window.name}:"
    buckets: dict[CohortKey, dict[float, float]] = defaultdict(dict)
    for s in raw.samples.get(prefix + "buckets", ()):
        le = label_float(s.labels.get("le"))
        if le is not None and math.isfinite(s.value):
            buckets[_cohort_key(s)][le] = s.value
    attempts: dict[CohortKey, dict[str, float]] = defaultdict(dict)
    for s in raw.samples.get(prefix + "attempts", ()):
        if math.isfinite(s.value):
            attempts[_cohort_key(s)][s.labels.get("result", "")] = s.value
    flows = {_cohort_key(s): s.value for s in raw.samples.get(prefix + "flows", ())
             if math.isfinite(s.value)}
    drops: dict[CohortKey, dict[str, float]] = defaultdict(dict)
    for s in raw.samples.get(prefix + "drops", ()):
        if math.isfinite(s.value):
            drops[_cohort_key(s)][s.labels.get("reason", "")] = s.value

    cohorts: dict[CohortKey, Cohort] = {}
    for key in set(buckets) | set(attempts) | set(flows) | set(drops):
        if not key[0] and not key[1]:
            continue
        handshakes = p50 = p90 = p99 = None
        shares = per_bucket = None
        dist = _distribution(buckets.get(key, {}), bounds)
        if dist is not None:
            cumulative, handshakes = dist
            p50, p90, p99 = (quantile(q, bounds, cumulative) for q in (0.5, 0.9, 0.99))
            per_bucket = tuple(c - p for c, p in zip(cumulative, (0.0, *cumulative[:-1])))
            if handshakes > 0:
                shares = tuple(n / handshakes for n in per_bucket)
        outcome = attempts.get(key)
        flow_count = flows.get(key)
        reasons = drops.get(key)
        if reasons is not None:
            drop_count: float | None = sum(reasons.values())
            sensitive: float | None = sum(v for r, v in reasons.items() if r in SENSITIVE_REASONS)
        else:
            drop_count = sensitive = 0.0 if flow_count is not None else None
        cohorts[key] = Cohort(
            datapath=key[2], window=window, handshakes=handshakes, p50=p50, p90=p90, p99=p99,
            shares=shares, buckets=per_bucket,
            attempts=sum(outcome.values()) if outcome is not None else None,
            failures=(sum(v for r, v in outcome.items() if r != ESTABLISHED)
                      if outcome is not None else None),
            flows=flow_count, drops=drop_count, sensitive_drops=sensitive)
    return cohorts


def _cohort_key(sample: Sample) -> CohortKey:
    labels = sample.labels
    return labels.get("namespace", ""), labels.get("service", ""), labels.get("datapath", "")


def label_float(text: str | None) -> float | None:
    """A label value such as ``le`` or ``quantile`` as a float, None when it is not one."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
