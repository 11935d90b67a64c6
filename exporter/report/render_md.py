"""Report model -> a Markdown summary for a change ticket.

Phase timeline, switches and rollbacks, the findings (worse and better verdicts, each with
why), the other verdicts in a section of their own, the top regressions and improvements, and
before/after per service; no images, and links only from the claims table's numbers to their
queries in report.html (the HTML report has the plots and the evidence tables). ``--title`` and ``--change-id`` head it. Label values are HTML-escaped (``<script>`` cannot become markup in a renderer
that allows HTML) and Markdown-escaped (a ``|`` cannot break a table). Pure module.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from exporter.report import fmt
from exporter.report.model import (
    AFTER_VS_BASELINE,
    CANARY_VS_CONTROL,
    SLI_TITLES,
    Change,
    Report,
    ServiceReport,
    VerdictCell,
)
from exporter.report.verification import TITLES

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|~])")


def md(value: object) -> str:
    """Text safe in a Markdown table cell."""
    text = html.escape(str(value), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def render_markdown(report: Report) -> str:
    lines = [
        f"# {md(report.title or 'Kube-proxy replacement migration report')}",
        "",
        *([f"- Change: **{md(report.change_id)}**"] if report.change_id else []),
        f"- Range: {md(fmt.timestamp(report.start))} to {md(fmt.timestamp(report.end))} "
        f"({md(fmt.length(report.end - report.start))})",
        f"- Prometheus: {md(report.prometheus)}",
        f"- Phase at the end of the range: **{md(report.phase or fmt.NO_DATA)}**",
        f"- Nodes on eBPF: {_nodes_on_ebpf(report)}",
        f"- Verdicts: {_verdict_counts(report)}",
        f"- Rollbacks in the range: {md(fmt.count(report.rollback_total))}",
        "",
    ]
    lines += [f"> {md(note)}" for note in report.notes]
    if report.notes:
        lines.append("")
    lines += _timeline(report)
    lines += _verdicts(report)
    from exporter.report.md_claims import claims_lines  # it builds on md() and _table()

    lines += claims_lines(report)
    lines += _changes("Top regressions", report.regressions)
    lines += _changes("Top improvements", report.improvements)
    lines += _before_after(report)
    lines += _owners(report)
    lines += _verification(report)
    lines.append("Plots, the canary/control tables, drops by reason and the PromQL used are in "
                 "report.html.")
    return "\n".join(lines) + "\n"


def _owners(report: Report) -> list[str]:
    out = ["## Who owns Cilium's configuration", ""]
    if report.owners is None:
        return out + ["No `kpr_config_owner_info` series (the exporter has no Kubernetes access).", ""]
    out += _table(("object", "owner", "owned by", "what that means"),
                  [(md(o.object), md(o.owner), md(o.owner_name or "-"), md(o.note))
                   for o in report.owners])
    if report.persisted:
        out += ["", "Last rollback:", ""]
        out += [f"- {md(p.object)}: **{md(p.note)}** (evidence: {md(p.owner_name)})"
                for p in report.persisted]
    return out + [""]


def _verification(report: Report) -> list[str]:
    """Per phase, the failing (check, node) cells of the probes' matrix, or that all passed."""
    lines = ["## Verification (active probes)", ""]
    if not report.verification:
        return [*lines, "No kpr_probe_checks_total results in any phase.", ""]
    for m in report.verification:
        title = f"{TITLES.get(m.phase, m.phase)} ({fmt.span(m.window.start, m.window.end)})"
        nodes = ", ".join(f"{name} ({datapath})" for name, datapath in m.nodes)
        if not m.failing:
            lines.append(f"- {md(title)}: every check passed on every node ({md(nodes)})")
            continue
        lines.append(f"- {md(title)}: **{len(m.failing)} failing** of "
                     f"{len(m.checks)} checks × {len(m.nodes)} nodes ({md(nodes)})")
        lines += [f"  - **{md(check)}** on {md(node)}: {fmt.count(cell.failed)} of "
                  f"{fmt.count(cell.judged)} results failed" for check, node, cell in m.failing]
    return [*lines, ""]


def _nodes_on_ebpf(report: Report) -> str:
    if not report.nodes:
        return fmt.NO_DATA
    ebpf = [n.node for n in report.nodes if n.datapath == "ebpf"]
    names = f" ({', '.join(md(n) for n in ebpf)})" if ebpf else ""
    return f"{len(ebpf)} of {len(report.nodes)}{names}"


def _verdict_counts(report: Report) -> str:
    if not report.has_verdicts:
        return fmt.NO_DATA
    counts = report.verdict_counts
    return ", ".join(f"{counts.get(w, 0)} {w}" for w in ("worse", "inconclusive", "not worse",
                                                          "better"))


def _timeline(report: Report) -> list[str]:
    out = ["## Phase timeline", ""]
    if not report.phases:
        out += ["No data: no kpr_migration_phase series in this range.", ""]
    else:
        out += _table(("from", "to", "phase"), [
            (md(fmt.timestamp(s.start)), md(fmt.timestamp(s.end)), md(s.phase or fmt.NO_DATA))
            for s in report.phases])
    out += ["### Switches, rollbacks and migration steps", ""]
    if report.events:
        out += _table(("time", "event"), [(md(fmt.timestamp(ev.at)), md(ev.text))
                                          for ev in report.events])
    else:
        out += ["None inside the range.", ""]
    return out


def _verdicts(report: Report) -> list[str]:
    out = ["## Findings", ""]
    if not report.has_verdicts:
        return out + ["No data: no kpr_verdict series at the end of the range.", ""]
    out += ["Worse and better verdicts of the judge at the end of the range (canary = eBPF vs "
            "kube-proxy nodes, baseline = eBPF vs the frozen pre-switch values). Why: the "
            "judge's tests and thresholds re-run on Prometheus' counts for its short and long "
            "windows at the end of the range.", ""]
    header = ("service", "SLI", "comparison", "verdict", "effect", "why")
    if report.findings:
        out += _table(header, [_verdict_row(s, c) for s, c in report.findings])
    else:
        out += ["No finding: no verdict is worse or better.", ""]
    others = report.other_verdicts
    if others:
        out += ["## Other verdicts (not worse, inconclusive)", ""]
        out += _table(header, [_verdict_row(s, c) for s, c in others])
    return out


def _verdict_row(service: ServiceReport, cell: VerdictCell) -> tuple[str, ...]:
    effect, source = cell.shown_effect
    shown = fmt.relative(effect) if effect is not None else fmt.NO_DATA
    if source:
        shown += f" ({source})"
    short = {CANARY_VS_CONTROL: "canary", AFTER_VS_BASELINE: "baseline"}
    return (md(service.name), md(SLI_TITLES.get(cell.sli, cell.sli)),
            md(short.get(cell.comparison, cell.comparison)), _bold(cell.word), md(shown),
            md(cell.why))


def _changes(title: str, found: Sequence[Change]) -> list[str]:
    out = [f"## {title}", ""]
    if not found:
        return out + ["None measured in the range.", ""]
    return out + _table(("service", "measure", "comparison", "kube-proxy / baseline", "eBPF",
                         "change", "verdict"), [
        (md(f"{c.namespace}/{c.service}"), md(c.metric), md(c.comparison),
         md(fmt.value(c.before, c.unit)), md(fmt.value(c.after, c.unit)),
         md(fmt.relative(c.relative)), _bold(c.verdict)) for c in found])


def _before_after(report: Report) -> list[str]:
    out = ["## Before / after per service", ""]
    if not report.services:
        return out + ["No data: no service series in this range.", ""]
    rows = []
    for s in report.services:
        base, before, after = s.baseline, s.before, s.after
        rows.append((md(s.name), md(fmt.seconds((base.p99 if base else None))),
                     md(fmt.seconds((before.p99 if before else None))), md(fmt.seconds((after.p99 if after else None))),
                     md(fmt.ratio((base.drop_ratio if base else None))), md(fmt.ratio((after.drop_ratio if after else None))),
                     md(fmt.count((after.handshakes if after else None)))))
    return out + _table(("service", "baseline p99", "kube-proxy before p99", "eBPF after p99",
                         "baseline drop ratio", "eBPF drop ratio", "eBPF handshakes"), rows)


def _bold(word: str) -> str:
    return f"**{word}**" if word == "worse" else word


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Header cells are plain words; row cells must be escaped already."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]
