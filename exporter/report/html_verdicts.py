"""The report's verdict section in HTML: findings first, the rest folded, and the evidence of
every verdict embedded (the judge's tests over the report's after window). Pure module."""

from __future__ import annotations

from collections import Counter

from exporter.report import fmt
from exporter.report.html_parts import badge, e, nodata, num, table
from exporter.report.model import SLI_TITLES, Report, ServiceReport, VerdictCell


def verdicts_section(report: Report) -> str:
    out = ['<h2 id="verdicts">Current verdicts</h2>',
           '<p class="muted">The judge\'s <code>kpr_verdict</code> at the end of the range: '
           "worse (1), not worse (0), better (-1), inconclusive (NaN). The effect is the judge's "
           "short-window relative change. <i>Why</i> and the evidence come from the judge's own "
           "tests and thresholds, re-run on the counts Prometheus holds for the judge's short "
           "and long windows at the end of the range, so they stay readable after the exporter "
           "is gone. Findings (worse, better) first; the other verdicts are folded below "
           "them.</p>"]
    findings, others = report.findings, report.other_verdicts
    if not findings and not others:
        out.append(nodata("no kpr_verdict series at the end of the range (is the judge running?)"))
        return "\n".join(out)
    header = ("service", "SLI", "comparison", "verdict", "effect", "why", "evidence")
    if findings:
        out.append(table(header, [_verdict_row(s, c) for s, c in findings]))
    else:
        out.append('<p>No finding: no verdict is worse or better.</p>')
    if others:
        counts = Counter(cell.word for _, cell in others)
        label = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
        out.append(f"<details><summary>{len(others)} other verdicts ({e(label)})</summary>"
                   + table(header, [_verdict_row(s, c) for s, c in others]) + "</details>")
    return "\n".join(out)


def _verdict_row(service: ServiceReport, cell: VerdictCell) -> tuple[str, ...]:
    effect, source = cell.shown_effect
    shown = num(fmt.relative(effect) if effect is not None else fmt.NO_DATA)
    if source:
        shown += f' <span class="muted">({e(source)})</span>'
    return (e(service.name), e(SLI_TITLES.get(cell.sli, cell.sli)), e(cell.comparison),
            badge(cell.word), shown, e(cell.why), _evidence(cell))


def _evidence(cell: VerdictCell) -> str:
    ev = cell.evidence
    if ev is None or (not ev.tests and not ev.inputs):
        return f"<details><summary>measured</summary>{e(cell.explanation)}</details>"
    window = f" over {e(fmt.span(ev.window.start, ev.window.end))}" if ev.window else ""
    inputs = ", ".join(f"{e(k)} {e(v)}" for k, v in ev.inputs)
    rows = [(e(t.name), num(f"{t.p_worse:.2g}"), num(f"{t.p_better:.2g}"), num(f"{t.alpha:.2g}"),
             num(f"{t.estimate:.3g} [{t.low:.3g}, {t.high:.3g}]"), num(fmt.relative(t.effect)),
             num(fmt.value(t.absolute, t.unit)), num(f"+{t.threshold * 100:.0f} %"),
             num(fmt.value(t.floor, t.unit)), e(t.signal), e(t.note)) for t in ev.tests]
    tests = table(("test", "p worse", "p better", "alpha", "estimate [interval]", "effect",
                    "absolute change", "threshold", "floor", "signal", "note"), rows) if rows else ""
    return ("<details><summary>evidence</summary>"
            f"<p>eBPF against {e(ev.reference)}{window}: {e(ev.outcome)}. {e(ev.detail)}</p>"
            f"<p>{inputs}</p>{tests}<p class=\"muted\">Measured: {e(cell.explanation)}</p>"
            "</details>")
