"""Query results -> the judge's windows, per-service partial data and the fleet's health.

``window`` turns the four window queries (bucket, attempt, flow and drop increases by
namespace, service and datapath) into an ``exporter.judge.history.Window`` holding the same
integer counts the in-process snapshots give: cumulative ``le`` buckets become per-bucket
counts, attempts split into all and established, drops into all and KPR-sensitive.

Data that does not add up is partial, and the service's verdicts are inconclusive with the
reason: a handshake histogram without attempts or flows for the same datapath, drops
without flows, a missing ``le`` bucket, a non-finite value, a datapath the short window has
and the long one lacks. ``health`` says why no verdict can be trusted at all: no exporter
in Prometheus, a dead Hubble stream, a stale or vanished exporter. Pure module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from exporter.judge.driver import OTHER_SERVICE
from exporter.judge.evidence import Service
from exporter.judge.history import Cohort, Window
from exporter.judge.losses import NodeLoss, node_losses, over
from exporter.model import KPR_SENSITIVE_DROP_REASONS
from exporter.report.data import Sample
from exporter.snapshot import NodeEvents, SliKey

BUCKET_METRIC = "kpr_service_connect_duration_seconds_bucket"
ATTEMPTS_METRIC = "kpr_service_connect_attempts_total"
FLOWS_METRIC = "kpr_service_flows_total"
DROPS_METRIC = "kpr_service_drops_total"
ESTABLISHED = "established"


@dataclass
class _Row:
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative increase
    attempts: float | None = None
    established: float = 0.0
    flows: float | None = None
    drops: float | None = None
    kpr_drops: float = 0.0


@dataclass(frozen=True)
class Assembled:
    """One window and the services whose data in it is partial (with the reason)."""

    window: Window
    partial: dict[Service, str]


def _key(sample: Sample) -> SliKey:
    labels = sample.labels
    return SliKey(labels.get("namespace", ""), labels.get("service", ""),
                  labels.get("datapath", ""))


def _where(key: SliKey) -> str:
    return f"{key.namespace}/{key.service} on {key.datapath}"


def _count(value: float) -> int:
    """A Prometheus increase as the judge's integer count."""
    return max(0, int(round(value)))


def window(start: float, end: float, partial: bool, parts: Mapping[str, Sequence[Sample]],
           default_bounds: tuple[float, ...]) -> Assembled:
    """The window of ``parts`` (``buckets``, ``attempts``, ``flows``, ``drops`` samples)."""
    rows: dict[SliKey, _Row] = {}
    bad: dict[Service, str] = {}

    def row(sample: Sample) -> _Row | None:
        key = _key(sample)
        if key.service == OTHER_SERVICE:  # label overflow: never judged
            return None
        if not math.isfinite(sample.value) or sample.value < 0:
            bad.setdefault((key.namespace, key.service),
                           f"Prometheus returned {sample.value} for {_where(key)}")
            return None
        return rows.setdefault(key, _Row())

    for s in parts.get("buckets", ()):
        if (r := row(s)) is not None:
            le = _le(s.labels.get("le", ""))
            if le is None:
                bad.setdefault(_service(s), f"{BUCKET_METRIC} of {_where(_key(s))} has a "
                                            f"malformed le {s.labels.get('le')!r}")
            else:
                r.buckets[le] = r.buckets.get(le, 0.0) + s.value
    for s in parts.get("attempts", ()):
        if (r := row(s)) is not None:
            r.attempts = (r.attempts or 0.0) + s.value
            if s.labels.get("result") == ESTABLISHED:
                r.established += s.value
    for s in parts.get("flows", ()):
        if (r := row(s)) is not None:
            r.flows = (r.flows or 0.0) + s.value
    for s in parts.get("drops", ()):
        if (r := row(s)) is not None:
            r.drops = (r.drops or 0.0) + s.value
            if s.labels.get("reason") in KPR_SENSITIVE_DROP_REASONS:
                r.kpr_drops += s.value

    bounds = _bounds(rows.values(), default_bounds)
    cohorts: dict[SliKey, Cohort] = {}
    for key, r in rows.items():
        why = _inconsistent(key, r, bounds)
        if why:
            bad.setdefault((key.namespace, key.service), why)
            continue
        cohorts[key] = Cohort(_per_bucket(r.buckets, bounds), _count(r.attempts or 0.0),
                              _count(r.established), _count(r.flows or 0.0),
                              _count(r.drops or 0.0), _count(r.kpr_drops))
    return Assembled(Window.of_cohorts(start, end, bounds, cohorts, partial), bad)


def _service(sample: Sample) -> Service:
    key = _key(sample)
    return key.namespace, key.service


def _le(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _bounds(rows: Iterable[_Row], default: tuple[float, ...]) -> tuple[float, ...]:
    finite = {le for r in rows for le in r.buckets if math.isfinite(le)}
    return tuple(sorted(finite)) if finite else tuple(default)


def _inconsistent(key: SliKey, r: _Row, bounds: tuple[float, ...]) -> str | None:
    where = _where(key)
    if r.buckets:
        missing = [le for le in (*bounds, math.inf) if le not in r.buckets]
        if missing:
            shown = ", ".join("+Inf" if math.isinf(le) else f"{le:g}" for le in missing[:3])
            return f"partial data: {BUCKET_METRIC} of {where} lacks le={shown}"
        if r.attempts is None:
            return f"partial data: {where} has handshake buckets but no {ATTEMPTS_METRIC}"
        if r.flows is None:
            return f"partial data: {where} has handshake buckets but no {FLOWS_METRIC}"
    if r.drops is not None and r.flows is None:
        return f"partial data: {where} has {DROPS_METRIC} but no {FLOWS_METRIC}"
    return None


def _per_bucket(cumulative: Mapping[float, float], bounds: tuple[float, ...]) -> tuple[int, ...]:
    if not cumulative:
        return (0,) * (len(bounds) + 1)
    running = [_count(cumulative[le]) for le in (*bounds, math.inf)]
    out, before = [], 0
    for value in running:
        out.append(max(0, value - before))
        before = max(before, value)
    return tuple(out)


def missing_in_long(short: Window, long: Window) -> dict[Service, str]:
    """Services with a datapath in the short window that the long one lacks."""
    found: dict[Service, str] = {}
    for key in short.keys():
        if long.cohort(key) is None:
            found.setdefault((key.namespace, key.service),
                             f"partial data: {_where(key)} is in the short window but missing "
                             "from the long one")
    return found


def instance(sample: Sample) -> str:
    labels = sample.labels
    return labels.get("instance") or labels.get("job") or "an exporter"


def health(now: float, up: Sequence[Sample], newest: Sequence[Sample],
           vanished: Sequence[Sample], stale_after: float) -> str | None:
    """Why no verdict can be trusted now (None when every exporter is alive and fresh)."""
    if not up:
        return ("no exporter in Prometheus: no kpr_hubble_up sample at the evaluation time "
                "(are the exporters scraped?)")
    down = sorted(instance(s) for s in up if s.value != 1.0)
    if down:
        return f"stale or dead source: the Hubble stream of exporter {', '.join(down)} is down"
    if vanished:
        gone = ", ".join(sorted(instance(s) for s in vanished))
        return (f"stale or dead source: exporter {gone} reported within the short window but "
                "has no current sample in Prometheus")
    oldest = min(newest, key=lambda s: s.value, default=None)
    if oldest is not None and now - oldest.value > stale_after:
        return (f"stale source: the newest sample of exporter {instance(oldest)} in Prometheus "
                f"is {now - oldest.value:.0f} s old (> {stale_after:g} s)")
    return None


def lossy(parts: Mapping[str, Sequence[Sample]], max_share: float) -> tuple[NodeLoss, ...]:
    """The nodes over ``max_share`` in one window, each with its exporter ``instance`` (the
    unit whose series leave): ``parts`` are the ``flows``, ``lost`` and ``agent_lost``
    increases by (job, instance, node)."""
    units: dict[str, dict[str, list[float]]] = {}
    for column, part in enumerate(("flows", "lost", "agent_lost")):
        for s in parts.get(part, ()):
            if not math.isfinite(s.value):
                continue
            row = units.setdefault(s.labels.get("instance", ""), {}).setdefault(
                s.labels.get("node", ""), [0.0, 0.0, 0.0])
            row[column] += s.value
    found: list[NodeLoss] = []
    for unit, nodes in units.items():
        events = {node: NodeEvents(*(_count(v) for v in row)) for node, row in nodes.items()}
        found.extend(node_losses(events, unit))
    return over(found, max_share)
