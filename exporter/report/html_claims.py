"""The claims table as HTML, and the links from every number to its PromQL query.

Each number links to its query in the method section (``#q-<n>``, the position of the query
in ``Report.queries``), which shows the PromQL and when it was evaluated. In-page links only:
the report stays self-contained. Pure module.
"""

from __future__ import annotations

from exporter.report.claims_model import ClaimRow, Figure, Measurement
from exporter.report.data import Query
from exporter.report.html_parts import badge, e, num, table
from exporter.report.model import Report

SECTION_ID = "claims"


def anchor(report: Report, query: Query) -> str:
    """The in-page id of ``query`` (its position in the method section's list)."""
    try:
        return f"q-{report.queries.index(query)}"
    except ValueError:
        return ""


def figure(report: Report, fig: Figure) -> str:
    """A number linked to its first query; further queries as small numbered links."""
    text = num(fig.text)
    links = [a for a in (anchor(report, q) for q in fig.queries) if a]
    if not links:
        return text
    extra = "".join(f'<sup><a href="#{a}">[{i}]</a></sup>' for i, a in enumerate(links[1:], 2))
    return f'<a href="#{links[0]}">{text}</a>{extra}'


def claims_section(report: Report) -> str:
    claims = report.claims
    if claims is None:
        return ""
    count = claims.services.count
    rows = [(e(row.claim), badge(row.outcome), e(row.against_claim), _measurements(report, row))
            for row in claims.rows]
    caveats = "".join(f"<li>{e(c)}</li>" for c in claims.caveats)
    scale = e(claims.scale_line)
    if count is not None:
        scale = scale.replace(e(count.text), figure(report, count), 1)
    return (f'<h2 id="{SECTION_ID}">Claims vs measured</h2>'
            "<p>Each claim judged on this cluster's own data with the judge's outcomes "
            "(better, not worse, worse, inconclusive), eBPF against kube-proxy at the same "
            "time (canary-vs-control) and against kube-proxy before the first switch "
            "(after-vs-baseline). Every number links to the query it came from; no data is "
            "inconclusive, never a pass.</p>"
            + table(("claim", "outcome", "against the claim", "evidence"), rows)
            + f"<p>{scale}</p><p>What the CPU numbers include and what they do not:</p>"
            f"<ul>{caveats}</ul>")


def _measurements(report: Report, row: ClaimRow) -> str:
    items = [_measurement(report, m) for m in row.measurements]
    items += [f'<li class="nodata">{e(note)}</li>' for note in row.notes]
    return "<ul>" + "".join(items) + "</ul>"


def _measurement(report: Report, m: Measurement) -> str:
    details = "; ".join(f"{e(k)} {e(v)}" for k, v in m.details)
    return (f"<li>{e(m.what)}, {e(m.comparison)}: {badge(m.outcome)} "
            f"eBPF {figure(report, m.ebpf)} vs {figure(report, m.reference)} "
            f"({figure(report, m.change)})<br><span class=\"muted\">{e(m.why)}."
            f"{' Test: ' + e(m.test) + '.' if m.test else ''}"
            f"{' ' + details + '.' if details else ''}</span></li>")
