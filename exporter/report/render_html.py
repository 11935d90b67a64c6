"""Report model (+ chart PNGs) -> one self-contained HTML page.

Inline CSS, images as ``data:image/png;base64`` URIs, no script and no external reference,
so the file can be attached to a change ticket or mailed. Every value that comes from
Prometheus (label values above all) goes through ``html.escape``. Pure module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from exporter import __version__
from exporter.report import fmt
from exporter.report.data import Query
from exporter.report.html_parts import badge as _badge
from exporter.report.html_parts import e, nodata as _nodata, num as _num, table as _table
from exporter.report.html_parts import image as _image
from exporter.report.html_claims import claims_section as _claims
from exporter.report.html_verdicts import verdicts_section as _verdicts
from exporter.report.html_verification import verification_section as _verification
from exporter.report.model import (
    AFTER_VS_BASELINE,
    CANARY_VS_CONTROL,
    NO_VERDICT,
    SLI_TITLES,
    Change,
    Cohort,
    Count,
    Report,
    ServiceReport,
)

if TYPE_CHECKING:
    from exporter.report.charts import Charts

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1180px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}
.nodata{color:#888;font-style:italic}.muted{color:#666;font-size:.9em}
.v{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:.85em;white-space:nowrap}
.v-worse{background:#f8d7da;color:#842029;font-weight:bold}.v-better{background:#d1e7dd;color:#0f5132}
.v-not-worse{background:#e9ecef;color:#333}.v-inconclusive{background:#fff3cd;color:#664d03}
.v-no-data{background:#fff;color:#888;border:1px dashed #bbb}
.summary{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;
padding:.5em 1em;min-width:10em}.card b{display:block;font-size:1.3em}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:.6em}
code,pre{font-family:Menlo,Consolas,monospace;font-size:.85em}pre{background:#f7f7f7;
padding:.5em;overflow-x:auto;white-space:pre-wrap}.sens{color:#842029;font-weight:bold}
"""


def render_html(report: Report, charts: Charts) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(_title(report))} {e(fmt.span(report.start, report.end))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(report.title or DEFAULT_TITLE)}</h1>",
        f'<p class="change">Change: <b>{e(report.change_id)}</b></p>' if report.change_id else "",
        f'<p class="muted">{e(fmt.timestamp(report.start))} to {e(fmt.timestamp(report.end))} '
        f"({e(fmt.length(report.end - report.start))}) &middot; Prometheus {e(report.prometheus)} "
        f"&middot; generated {e(fmt.timestamp(report.generated_at))} by kpr-exporter "
        f"{e(__version__)}</p>",
        _summary(report),
        _notes(report.notes),
        _timeline(report, charts),
        _nodes(report),
        _owners(report),
        _verdicts(report),
        _claims(report),
        _changes("Top regressions", report.regressions,
                 "No measured regression of eBPF against kube-proxy or the baseline."),
        _changes("Top improvements", report.improvements,
                 "No measured improvement of eBPF against kube-proxy or the baseline."),
        _before_after(report),
        _canary(report),
        _verification(report),
        _distributions(report, charts),
        _drops(report, charts),
        _quality(report),
        _method(report),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


DEFAULT_TITLE = "Kube-proxy replacement migration report"


def _title(report: Report) -> str:
    """The page title: the change, then the report's title."""
    title = report.title or "KPR migration report"
    return f"{report.change_id}: {title}" if report.change_id else title


# --- sections -----------------------------------------------------------------------------------

def _summary(report: Report) -> str:
    on_ebpf = sum(1 for n in report.nodes if n.datapath == "ebpf")
    counts = report.verdict_counts
    known = report.has_verdicts

    def verdicts(*words: str) -> str:
        return " / ".join(str(counts.get(w, 0)) for w in words) if known else fmt.NO_DATA

    cards = [
        ("phase now", report.phase or fmt.NO_DATA),
        ("nodes on eBPF", f"{on_ebpf} of {len(report.nodes)}" if report.nodes else fmt.NO_DATA),
        ("services", str(len(report.services)) if report.services else fmt.NO_DATA),
        ("worse verdicts", verdicts("worse")),
        ("inconclusive", verdicts("inconclusive")),
        ("not worse / better", verdicts("not worse", "better")),
        ("rollbacks in range", fmt.count(report.rollback_total)),
    ]
    body = "".join(f'<div class="card">{e(label)}<b>{e(value)}</b></div>' for label, value in cards)
    return f'<h2 id="summary">Summary</h2><div class="summary">{body}</div>'


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return "<ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>"


def _timeline(report: Report, charts: Charts) -> str:
    out = ['<h2 id="timeline">Phase timeline</h2>']
    out.append(_image(charts.timeline, "migration timeline")
               or _nodata("no phase or datapath series in this range"))
    if report.phases:
        out.append(_table(("phase", "from", "to", "for"), [
            (_phase(s.phase), e(fmt.timestamp(s.start)), e(fmt.timestamp(s.end)),
             e(fmt.length(s.end - s.start))) for s in report.phases]))
    if report.events:
        out.append("<h3>Switches, rollbacks and migration steps</h3>")
        out.append(_table(("time", "event"), [(e(fmt.timestamp(ev.at)), e(ev.text))
                                              for ev in report.events]))
    else:
        out.append(_nodata("no node switch, rollback or migration step inside the range"))
    return "\n".join(out)


def _nodes(report: Report) -> str:
    if not report.nodes:
        return '<h2 id="nodes">Nodes</h2>' + _nodata("no kpr_node_datapath_info series")
    rows = [(e(n.node), e(n.datapath or fmt.NO_DATA), e(n.source or fmt.NO_DATA),
             e(fmt.timestamp(n.switched_at) if n.switched_at else "never"),
             _num(fmt.ratio(n.agent_uptime))) for n in report.nodes]
    return ('<h2 id="nodes">Nodes</h2>'
            + _table(("node", "datapath (end of range)", "decided by", "last switch",
                      "agent scrape up"), rows))


def _owners(report: Report) -> str:
    head = '<h2 id="owners">Who owns Cilium\'s configuration</h2>'
    if report.owners is None:
        return head + _nodata("no kpr_config_owner_info series (the exporter has no Kubernetes access)")
    rows = [(e(o.object), e(o.owner), e(o.owner_name or "-"), e(o.note)) for o in report.owners]
    out = head + _table(("object", "owner", "owned by", "what that means"), rows)
    if report.persisted:
        out += "<p>Last rollback: " + "; ".join(
            f"{e(p.object)}: <b>{e(p.note)}</b>" for p in report.persisted) + "</p>"
    return out


def _changes(title: str, found: Sequence[Change], empty: str) -> str:
    anchor = title.lower().replace(" ", "-")
    if not found:
        return f'<h2 id="{anchor}">{e(title)}</h2>' + _nodata(empty)
    rows = [(e(f"{c.namespace}/{c.service}"), e(c.metric), e(c.comparison),
             _num(fmt.value(c.before, c.unit)), _num(fmt.value(c.after, c.unit)),
             _num(fmt.relative(c.relative)), _badge(c.verdict)) for c in found]
    return (f'<h2 id="{anchor}">{e(title)}</h2>'
            + _table(("service", "measure", "comparison", "kube-proxy / baseline", "eBPF",
                      "change", "verdict"), rows))


def _before_after(report: Report) -> str:
    out = ['<h2 id="before-after">Before and after, per service</h2>',
           '<p class="muted">Baseline: the frozen pre-switch values (<code>kpr_baseline_*</code>). '
           "Before: kube-proxy traffic before the first switch in the range. After: eBPF traffic "
           "after it.</p>"]
    rows = []
    for s in report.services:
        base, before, after = s.baseline, s.before, s.after
        change = (after.p99 / base.p99 - 1 if after and after.p99 is not None and base
                  and base.p99 else None)
        rows.append((
            e(s.name),
            _num(fmt.seconds((base.p50 if base else None))), _num(fmt.seconds((base.p99 if base else None))),
            _num(fmt.seconds((before.p50 if before else None))), _num(fmt.seconds((before.p99 if before else None))),
            _num(fmt.seconds((after.p50 if after else None))), _num(fmt.seconds((after.p99 if after else None))),
            _num(fmt.relative(change) if change is not None else fmt.NO_DATA),
            _num(fmt.ratio((base.drop_ratio if base else None))), _num(fmt.ratio((before.drop_ratio if before else None))),
            _num(fmt.ratio((after.drop_ratio if after else None))),
            _cell_badge(s, "connect_duration", AFTER_VS_BASELINE),
            _cell_badge(s, "drops", AFTER_VS_BASELINE)))
    if not rows:
        out.append(_nodata("no service series in this range"))
    else:
        out.append(_table(("service", "baseline p50", "baseline p99", "before p50", "before p99",
                           "after p50", "after p99", "p99 vs baseline", "baseline drop ratio",
                           "before drop ratio", "after drop ratio", "latency verdict",
                           "drops verdict"), rows))
    return "\n".join(out)


def _canary(report: Report) -> str:
    out = ['<h2 id="canary">Canary (eBPF) vs control (kube-proxy), same time</h2>']
    rows = []
    for s in report.services:
        a, c = s.after, s.control
        rows.append((
            e(s.name),
            _pair(fmt.count, (a.handshakes if a else None), (c.handshakes if c else None)),
            _pair(fmt.seconds, (a.p50 if a else None), (c.p50 if c else None)),
            _pair(fmt.seconds, (a.p99 if a else None), (c.p99 if c else None)),
            _pair(fmt.ratio, _r(a, "failure_ratio"), _r(c, "failure_ratio")),
            _pair(fmt.ratio, _r(a, "drop_ratio"), _r(c, "drop_ratio")),
            _pair(fmt.ratio, _r(a, "sensitive_ratio"), _r(c, "sensitive_ratio")),
            " ".join(_cell_badge(s, sli, CANARY_VS_CONTROL, title=True) for sli in SLI_TITLES)))
    if not rows:
        out.append(_nodata("no service series in this range"))
    else:
        out.append('<p class="muted">Each cell: eBPF / kube-proxy.</p>')
        out.append(_table(("service", "handshakes", "p50", "p99", "connect-failure ratio",
                           "drop ratio", "KPR-sensitive drop ratio", "verdicts"), rows))
    return "\n".join(out)


def _distributions(report: Report, charts: Charts) -> str:
    out = ['<h2 id="distributions">Handshake latency distributions</h2>',
           '<p class="muted">Share of handshakes per histogram bucket, from the bucket increases '
           "over each window. Most severe verdicts first.</p>"]
    if not charts.distributions:
        out.append(_nodata("no handshake histogram data in this range"))
    else:
        out.append('<div class="grid">' + "".join(
            _image(png, f"{name} handshake latency distribution") for name, png in
            charts.distributions) + "</div>")
        if charts.distributions_left_out:
            out.append(f'<p class="muted">{charts.distributions_left_out} more services left out '
                       "of the plots (they are in the tables).</p>")
    return "\n".join(out)


def _drops(report: Report, charts: Charts) -> str:
    out = ['<h2 id="over-time">Over time</h2>', "<h3>Handshake p99 per datapath</h3>",
           _image(charts.handshake_p99, "handshake p99 per datapath")
           or _nodata("no handshake histogram series in this range"),
           "<h3>Service drops by reason</h3>",
           _image(charts.service_drops, "service drops by reason")
           or _nodata("no kpr_service_drops_total series in this range"),
           _counts_table(report.service_drop_counts, "kpr_service_drops_total"),
           "<h3>Node (agent) drops by reason</h3>",
           _image(charts.node_drops, "node drops by reason")
           or _nodata("no kpr_node_drops_total series in this range"),
           _counts_table(report.node_drop_counts, "kpr_node_drops_total")]
    return "\n".join(out)


def _counts_table(counts: Sequence[Count] | None, metric: str) -> str:
    if counts is None:
        return ""
    if not counts:
        return f'<p class="muted">{e(metric)}: no drop in the range (series present, all 0).</p>'
    rows = [(f'<span class="sens">{e(c.label)}</span> (KPR-sensitive)' if c.sensitive else e(c.label),
             e(c.datapath), _num(fmt.count(c.value))) for c in counts]
    return _table(("reason", "datapath", "drops in range"), rows)


def _quality(report: Report) -> str:
    lost = report.lost_events
    if report.hubble_uptime is None:
        items = [f"Hubble stream: {_num(fmt.NO_DATA)} (no kpr_hubble_up series)."]
    else:
        items = [f"Hubble stream connected {e(fmt.ratio(report.hubble_uptime))} of the range "
                 "(worst exporter instance)."]
    if lost is None:
        items.append(f"Lost Hubble events: {e(fmt.NO_DATA)}.")
    else:
        total = sum(c.value for c in lost)
        detail = ", ".join(f"{e(c.label)} {e(fmt.count(c.value))}" for c in lost if c.value >= 0.5)
        items.append(f"Lost Hubble events in the range: {e(fmt.count(total))}"
                     + (f" ({detail})" if detail else "") + ".")
    if report.rollbacks is None:
        items.append(f"Rollbacks: {_num(fmt.NO_DATA)} (no kpr_rollbacks_total series).")
    elif report.rollbacks:
        items.append("Rollbacks: " + ", ".join(
            f"{e(fmt.count(c.value))} {e(c.label)} ({e(c.datapath)})" for c in report.rollbacks) + ".")
    else:
        items.append("Rollbacks: none in the range.")
    return ('<h2 id="quality">Measurement quality</h2><ul>'
            + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def _method(report: Report) -> str:
    windows = "".join(f"<li>{e(w.name)}: {e(fmt.timestamp(w.start))} to {e(fmt.timestamp(w.end))} "
                      f"({e(fmt.length(w.seconds))})</li>" for w in report.windows)
    queries = "".join(
        f'<li id="q-{i}">{e(q.name)} ({e(q.kind)}{", " + e(q.window) if q.window else ""}'
        f"{_evaluated(q)}):<pre>{e(q.expr)}</pre></li>" for i, q in enumerate(report.queries))
    return ('<h2 id="method">Method</h2><p>Windows:</p><ul>' + windows + "</ul>"
            '<p>Quantiles are interpolated from histogram bucket increases the way PromQL\'s '
            "<code>histogram_quantile</code> does. Ratios are event increases over the window "
            "(drops / flows, failed / all handshakes). A cohort without a series shows "
            '<span class="nodata">no data</span>, never 0.</p>'
            "<details open><summary>PromQL queries</summary><ul>" + queries + "</ul></details>")


# --- helpers ------------------------------------------------------------------------------------

def _evaluated(query: Query) -> str:
    """When an instant query was evaluated (so it can be re-run in Prometheus as it was)."""
    return f", at {e(fmt.timestamp(query.at))}" if query.kind == "instant" and query.at else ""


def _cell_badge(service: ServiceReport, sli: str, comparison: str, *, title: bool = False) -> str:
    cell = service.verdict(sli, comparison)
    word = cell.word if cell else NO_VERDICT
    badge = _badge(word)
    if title:
        return f'<span title="{e(SLI_TITLES.get(sli, sli))}">{e(SLI_TITLES.get(sli, sli))}: {badge}</span>'
    return badge


def _phase(phase: str | None) -> str:
    return e(phase) if phase else _num(fmt.NO_DATA)


def _pair(show: Callable[[float | None], str], a: float | None, b: float | None) -> str:
    return f"{_num(show(a))} / {_num(show(b))}"


def _r(cohort: Cohort | None, name: str) -> float | None:
    return getattr(cohort, name) if cohort is not None else None
