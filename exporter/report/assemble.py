"""Raw query results -> the report model (``RawData`` -> ``Report``).

``build_report`` puts together the timeline (``timeline``), the before / after / control
cohorts of every service (``cohorts``), the judge's verdicts with their explanation
(``verdicts``), the frozen baseline, the largest measured changes, the lines to plot and
the counts by reason. Missing series stay ``None`` ("no data"). Pure module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Final

from exporter.judge.settings import JudgeSettings
from exporter.model import EBPF, KUBE_PROXY
from exporter.report import fmt
from exporter.report.claims import build_claims
from exporter.report.cohorts import histogram_bounds, label_float, window_cohorts
from exporter.report.data import RawData, Sample, Series
from exporter.report.evidence import Side, evidence
from exporter.report.model import (
    AFTER_VS_BASELINE,
    BETTER,
    CANARY_VS_CONTROL,
    INCONCLUSIVE,
    NO_VERDICT,
    NOT_WORSE,
    SLI_TITLES,
    WORSE,
    Baseline,
    Change,
    Count,
    Line,
    NodeState,
    OwnerRow,
    Report,
    ServiceReport,
    VerdictCell,
)
from exporter.report.migration import migration_events
from exporter.report.queries import SENSITIVE_REASONS
from exporter.report.timeline import (
    node_history,
    node_lanes,
    phase_segments,
    rollback_events,
    switch_events,
)
from exporter.report.verdicts import explain, merge_verdicts
from exporter.report.verification import matrices

_SLI_ORDER = tuple(SLI_TITLES)
_COMPARISON_ORDER = (CANARY_VS_CONTROL, AFTER_VS_BASELINE)
TOP_CHANGES = 10
MIN_RELATIVE_CHANGE = 0.05  # smaller measured changes are not listed as regressions/improvements
MAX_LINES = 8

ServiceKey = tuple[str, str]


# --- changes ------------------------------------------------------------------------------------

_MEASURES = (
    ("handshake p99", "connect_duration", "s", lambda c: c.p99, lambda b: b.p99),
    ("handshake p50", "connect_duration", "s", lambda c: c.p50, lambda b: b.p50),
    ("connect-failure ratio", "connect_failures", "ratio", lambda c: c.failure_ratio, None),
    ("drop ratio", "drops", "ratio", lambda c: c.drop_ratio, lambda b: b.drop_ratio),
    ("KPR-sensitive drop ratio", "kpr_sensitive_drops", "ratio", lambda c: c.sensitive_ratio, None),
)


def changes(services: Iterable[ServiceReport]) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    """The largest measured regressions and improvements (eBPF against kube-proxy at the
    same time, and against the frozen baseline), worse verdicts first."""
    found: list[Change] = []
    for svc in services:
        if svc.after is None:
            continue
        for metric, sli, unit, of_cohort, of_baseline in _MEASURES:
            after = of_cohort(svc.after)
            if after is None:
                continue
            sides = []
            if svc.control is not None:
                sides.append((CANARY_VS_CONTROL, of_cohort(svc.control)))
            if svc.baseline is not None and of_baseline is not None:
                sides.append((AFTER_VS_BASELINE, of_baseline(svc.baseline)))
            for comparison, before in sides:
                if before is None or (before > 0 and abs(after / before - 1) < MIN_RELATIVE_CHANGE):
                    continue
                cell = svc.verdict(sli, comparison)
                found.append(Change(svc.namespace, svc.service, metric, comparison, before, after,
                                    after / before - 1 if before > 0 else None, unit,
                                    cell.word if cell else NO_VERDICT))
    regressions = [c for c in found if c.after > c.before]
    improvements = [c for c in found if c.after < c.before]
    regressions.sort(key=lambda c: (c.verdict != WORSE, -(c.relative if c.relative is not None
                                                          else math.inf), c.namespace, c.service))
    improvements.sort(key=lambda c: (c.relative if c.relative is not None else 0.0,
                                      c.namespace, c.service))
    return tuple(regressions[:TOP_CHANGES]), tuple(improvements[:TOP_CHANGES])


# --- lines and counts ---------------------------------------------------------------------------

def lines(series_list: Iterable[Series], label_keys: Sequence[str],
          limit: int = MAX_LINES) -> tuple[Line, ...]:
    """Plot lines labelled by ``label_keys``; beyond ``limit`` the smallest are summed into
    one "other" line. NaN points (e.g. a quantile without samples) are left out."""
    found: list[Line] = []
    for series in series_list:
        points = tuple((t, v) for t, v in series.points if math.isfinite(v))
        if not points:
            continue
        label = " / ".join(series.labels.get(k, "") or "(none)" for k in label_keys)
        found.append(Line(label, points, series.labels.get("datapath", "")))
    found.sort(key=lambda line: (-sum(v for _, v in line.points), line.label))
    if len(found) <= limit:
        return tuple(sorted(found, key=lambda line: line.label))
    kept, rest = found[:limit - 1], found[limit - 1:]
    summed: dict[float, float] = defaultdict(float)
    for line in rest:
        for t, v in line.points:
            summed[t] += v
    other = Line(f"{len(rest)} other series", tuple(sorted(summed.items())))
    return (*sorted(kept, key=lambda line: line.label), other)


def drop_counts(samples: Iterable[Sample]) -> tuple[Count, ...] | None:
    """Drops by (reason, datapath) with at least one drop; None when there is no series."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    seen = False
    for s in samples:
        seen = True
        if math.isfinite(s.value):
            totals[(s.labels.get("reason", ""), s.labels.get("datapath", ""))] += s.value
    if not seen:
        return None
    counts = [Count(reason, datapath, value, reason in SENSITIVE_REASONS)
              for (reason, datapath), value in totals.items() if round(value) >= 1]
    return tuple(sorted(counts, key=lambda c: (-c.value, c.label, c.datapath)))


# --- the report ---------------------------------------------------------------------------------

def build_report(raw: RawData, *, prometheus: str, generated_at: float,
                 judge: JudgeSettings | None = None) -> Report:
    """The whole report model from what the query layer fetched; ``judge`` holds the
    thresholds the evidence re-runs the judge's tests with (the defaults when None)."""
    start, end, step = raw.start, raw.end, raw.step
    datapath_series = raw.series.get("datapath", ())
    switch_series = raw.series.get("switches", ())
    phases = phase_segments(raw.series.get("phase", ()), start, end, step)
    switch_list = switch_events(switch_series, datapath_series, start, end)
    rollback_series = raw.series.get("rollbacks", ())
    rollback_list, rollback_counts = rollback_events(rollback_series, start, step)
    migrations = migration_events(raw.series.get("migration_step", ()),
                                  raw.series.get("migration_batch", ()))
    events = tuple(sorted((*switch_list, *rollback_list, *migrations),
                          key=lambda e: (e.at, e.kind, e.node)))

    bounds = histogram_bounds(s for w in raw.windows for s in raw.samples.get(f"{w.name}:buckets", ()))
    by_window = {w.name: window_cohorts(raw, w, bounds) for w in raw.windows}
    later = by_window.get("after", by_window.get("range", {}))
    earlier = by_window.get("before", {})
    baselines = _baselines(raw.samples.get("baseline_quantiles", ()),
                           raw.samples.get("baseline_drop_ratio", ()))
    verdicts = merge_verdicts(raw.samples.get("verdicts", ()), raw.samples.get("effects", ()))
    judged = {w.name: (w, window_cohorts(raw, w, bounds)) for w in raw.judge_windows}
    settings = judge or JudgeSettings()

    keys: set[ServiceKey] = {(k[0], k[1]) for cohorts in by_window.values() for k in cohorts}
    keys |= set(baselines) | set(verdicts)
    services = []
    for ns, svc in sorted(keys):
        after = later.get((ns, svc, EBPF))
        control = later.get((ns, svc, KUBE_PROXY))
        baseline = baselines.get((ns, svc))
        cells = verdicts.get((ns, svc), {})
        ordered = sorted(cells.items(), key=lambda kv: (_order(kv[0][0], _SLI_ORDER), kv[0][0],
                                                        _order(kv[0][1], _COMPARISON_ORDER)))
        before = earlier.get((ns, svc, KUBE_PROXY))
        sides = [Side(w, found.get((ns, svc, EBPF)), found.get((ns, svc, KUBE_PROXY)))
                 for w, found in judged.values()]
        if not sides and after is not None:
            sides = [Side(after.window, after, control)]
        services.append(ServiceReport(
            ns, svc, before=before, after=after, control=control, baseline=baseline,
            verdicts=tuple(VerdictCell(sli, comparison, word, effect,
                                       explain(sli, comparison, word, after, control, baseline),
                                       evidence(sli, comparison, word, sides, before, bounds,
                                                settings))
                           for (sli, comparison), (word, effect) in ordered)))

    regressions, improvements = changes(services)
    nodes = _nodes(datapath_series, switch_series, raw.samples.get("agent_uptime", ()))
    window_drops = [s for w in raw.windows for s in raw.samples.get(f"{w.name}:drops", ())]
    counts: dict[str, int] = {w: 0 for w in (WORSE, INCONCLUSIVE, NOT_WORSE, BETTER)}
    for service in services:
        for cell in service.verdicts:
            counts[cell.word] = counts.get(cell.word, 0) + 1
    hubble = raw.samples.get("hubble_uptime", ())
    report = Report(
        verification=matrices(raw.probe_windows, raw.samples),
        claims=build_claims(raw, settings),
        prometheus=prometheus, start=start, end=end, generated_at=generated_at,
        windows=raw.windows,
        phase=phases[-1].phase if phases else None,
        phases=phases, lanes=node_lanes(node_history(datapath_series), start, end, step),
        events=events, nodes=nodes, services=tuple(services), bounds=bounds,
        regressions=regressions, improvements=improvements,
        service_drop_rates=lines(raw.series.get("service_drop_rates", ()), ("reason", "datapath")),
        node_drop_rates=lines(raw.series.get("node_drop_rates", ()), ("reason", "datapath")),
        handshake_p99=lines(raw.series.get("handshake_p99", ()), ("datapath",)),
        service_drop_counts=drop_counts(window_drops),
        node_drop_counts=drop_counts(raw.samples.get("node_drops", ())),
        hubble_uptime=hubble[0].value if hubble and math.isfinite(hubble[0].value) else None,
        lost_events=counts_by(raw.samples.get("lost_events", ()), "source"),
        rollbacks=tuple(rollback_counts) if rollback_series else None,
        verdict_counts=counts,
        owners=owner_rows(raw.samples.get("owners")),
        persisted=persisted_rows(raw.samples.get("persisted")),
        queries=raw.queries,
        notes=(*_notes(raw), *raw.warnings),
    )
    if not report.has_data:
        return _with_notes(report, "Prometheus returned no kpr-exporter series for this range: "
                                   "check that it scrapes kpr-exporter and that the range is right.")
    return report


def owner_rows(samples: Sequence[Sample] | None) -> tuple[OwnerRow, ...] | None:
    """kpr_config_owner_info as rows, objects in order; None when there is no series."""
    if not samples:
        return None
    rows = {(s.labels.get("object", ""), s.labels.get("owner", ""), s.labels.get("owner_name", ""))
            for s in samples}
    return tuple(OwnerRow(*row, note=OWNER_NOTES.get(row[1], "")) for row in sorted(rows))


def persisted_rows(samples: Sequence[Sample] | None) -> tuple[OwnerRow, ...] | None:
    """kpr_rollback_persisted: whether the last rollback is durable, per Helm release."""
    if not samples:
        return None
    return tuple(OwnerRow(f"Helm release {s.labels.get('namespace', '')}/{s.labels.get('release', '')}",
                          s.labels.get("owner", ""), s.labels.get("evidence", ""),
                          "persisted" if s.value == 1 else "NOT persisted: run "
                          "`kpr-exporter rollback --persist`")
                 for s in sorted(samples, key=lambda s: s.labels.get("release", "")))


#: What each owner means for a change made to the object directly.
OWNER_NOTES: Final = {
    "helm": "the next helm upgrade --reuse-values re-renders it: persist a rollback",
    "flux": "reverted at the next reconcile: suspended by a rollback, commit to Git",
    "argocd": "reverted by automated sync: turned off by a rollback, commit to Git",
    "none": "a direct change is durable",
    "unknown": "not readable by the exporter",
}


def counts_by(samples: Sequence[Sample], label: str) -> tuple[Count, ...] | None:
    """Counts by one label (e.g. lost events by ``source``); None when there is no series."""
    if not samples:
        return None
    found = [Count(s.labels.get(label, ""), "", s.value) for s in samples if math.isfinite(s.value)]
    return tuple(sorted(found, key=lambda c: (-c.value, c.label)))


def _baselines(quantiles: Iterable[Sample], ratios: Iterable[Sample]) -> dict[ServiceKey, Baseline]:
    values: dict[ServiceKey, dict[str, float]] = defaultdict(dict)
    for s in quantiles:
        q = label_float(s.labels.get("q"))
        name = {0.5: "p50", 0.9: "p90", 0.99: "p99"}.get(q) if q is not None else None
        if name and math.isfinite(s.value):
            values[(s.labels.get("namespace", ""), s.labels.get("service", ""))][name] = s.value
    for s in ratios:
        if math.isfinite(s.value):
            values[(s.labels.get("namespace", ""), s.labels.get("service", ""))]["drop_ratio"] = s.value
    return {key: Baseline(**fields) for key, fields in values.items()}


def _nodes(datapath_series: Iterable[Series], switch_series: Iterable[Series],
           uptime: Iterable[Sample]) -> tuple[NodeState, ...]:
    history = node_history(datapath_series)
    switched: dict[str, float] = {}
    for series in switch_series:
        finite = [v for _, v in series.points if math.isfinite(v)]
        if finite:
            switched[series.labels.get("node", "")] = finite[-1]
    up = {s.labels.get("node", ""): s.value for s in uptime if math.isfinite(s.value)}
    names = sorted(set(history) | set(switched) | set(up))
    nodes = []
    for name in names:
        last = history.get(name, [])[-1:]
        datapath, source = (last[0][1], last[0][2]) if last else (None, None)
        nodes.append(NodeState(name, datapath, source, switched.get(name), up.get(name)))
    return tuple(nodes)


def _notes(raw: RawData) -> list[str]:
    if any(w.name == "before" for w in raw.windows):
        first = next(w for w in raw.windows if w.name == "after")
        return [f"Before = kube-proxy traffic from the start of the range to the first switch to "
                f"eBPF ({fmt.timestamp(first.start)}); after = eBPF traffic from then to the end; "
                "control = kube-proxy traffic over the same after window."]
    return ["No node switched to eBPF inside the range: after = eBPF traffic over the whole range, "
            "control = kube-proxy traffic over the same range, and the before side is the frozen "
            "baseline."]


def _with_notes(report: Report, *notes: str) -> Report:
    return replace(report, notes=(*notes, *report.notes))


def _order(value: str, order: Sequence[str]) -> int:
    return order.index(value) if value in order else len(order)
