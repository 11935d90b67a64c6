"""The report page's verification section: the probes' checks × nodes matrix per phase
(before the switch, on the canary, after). Every label value is escaped. Pure module."""

from __future__ import annotations

from exporter.report import fmt
from exporter.report.html_parts import e, nodata, table
from exporter.report.model import Report
from exporter.report.verification import ERROR, FAIL, NONE, PASS, TITLES, PhaseMatrix

_MARK = {PASS: "ok", FAIL: "FAIL", ERROR: "error", NONE: "-"}
#: The page's own styles: a failing cell looks like a worse verdict, a passing one a better.
_CLASS = {PASS: "v v-better", FAIL: "v v-worse", ERROR: "nodata", NONE: "nodata"}


def verification_section(report: Report) -> str:
    head = '<h2 id="verification">Verification (active probes)</h2>'
    if not report.verification:
        return head + nodata("no kpr_probe_checks_total results in any phase (verification "
                             "probes not deployed, or not scraped)")
    intro = ("<p>Every check of the probes on every node, per phase: ok = every result passed, "
             "FAIL = at least one failed (failed / judged results), error = only probe errors. "
             "A column is the node whose datapath handled the path. Probe traffic is steady "
             "and controlled, so this holds even where applications are quiet.</p>")
    return head + intro + "".join(_phase(m) for m in report.verification)


def _phase(m: PhaseMatrix) -> str:
    title = (f"<h3>{e(TITLES.get(m.phase, m.phase))} "
             f'<span class="muted">({e(fmt.span(m.window.start, m.window.end))})</span></h3>')
    header = ("check", *(f"{name} ({datapath})" for name, datapath in m.nodes))
    rows = [(e(check), *(_cell(m, check, node) for node, _ in m.nodes)) for check in m.checks]
    failing = m.failing
    verdict = ("<p>Failing: " + "; ".join(f"<b>{e(c)}</b> on {e(n)}" for c, n, _ in failing)
               + "</p>") if failing else "<p>Every check passed on every node.</p>"
    return title + verdict + table(header, rows)


def _cell(m: PhaseMatrix, check: str, node: str) -> str:
    cell = m.cell(check, node)
    status = cell.status
    shown = _MARK[status]
    if status == FAIL:
        shown += f" {fmt.count(cell.failed)}/{fmt.count(cell.judged)}"
    elif status == PASS:
        shown += f" {fmt.count(cell.passed)}"
    return f'<span class="{_CLASS[status]}">{e(shown)}</span>'
