"""The claims table as Markdown for the change ticket.

One row per (claim, evidence, comparison) under the claim's own outcome; every number links
to its query in ``report.html`` next to it (``report.html#q-<n>``), where the PromQL is shown
and opens in Prometheus. Pure module.
"""

from __future__ import annotations

from exporter.report.claims_model import Figure
from exporter.report.html_claims import anchor
from exporter.report.model import Report
from exporter.report.render_md import _table as table_lines
from exporter.report.render_md import md

HTML_FILE = "report.html"


def link(report: Report, fig: Figure) -> str:
    text = md(fig.text)
    anchors = [a for a in (anchor(report, q) for q in fig.queries) if a]
    if not anchors:
        return text
    extra = "".join(f" [\\[{i}\\]]({HTML_FILE}#{a})" for i, a in enumerate(anchors[1:], 2))
    return f"[{text}]({HTML_FILE}#{anchors[0]}){extra}"


def claims_lines(report: Report) -> list[str]:
    claims = report.claims
    if claims is None:
        return []
    out = ["## Claims vs measured", "",
           "Each claim judged on this cluster's data with the judge's outcomes; eBPF against "
           "kube-proxy at the same time (canary-vs-control) and before the first switch "
           "(after-vs-baseline). Numbers link to their queries in report.html. No data is "
           "inconclusive, never a pass.", ""]
    rows = []
    for row in claims.rows:
        rows.append((f"**{md(row.claim)}**", f"**{md(row.outcome)}**", md(row.against_claim),
                     "", "", "", ""))
        for m in row.measurements:
            rows.append(("", md(m.outcome), md(m.why), md(m.what), md(m.comparison),
                         f"{link(report, m.ebpf)} vs {link(report, m.reference)}",
                         link(report, m.change)))
        rows += [("", "", md(note), "", "", "", "") for note in row.notes]
    out += table_lines(("claim", "outcome", "why", "evidence", "comparison",
                        "eBPF vs kube-proxy", "change"), rows)
    count = claims.services.count
    scale = md(claims.scale_line)
    if count is not None:
        scale = scale.replace(md(count.text), link(report, count), 1)
    out += [scale, ""]
    out += [f"- {md(c)}" for c in claims.caveats] + [""]
    return out
