"""Rendering without a network: hostile label values everywhere, charts, "no data".

Every label a Prometheus can hand back (namespace, service, node, source, reason, lost-event
source) carries markup, quotes, a Markdown pipe and matplotlib's ``$``; the HTML must show
them escaped, the Markdown must keep its tables intact, and the charts must still draw.
"""

from __future__ import annotations

import math

from exporter.report import assemble
from exporter.report.charts import mpl_text, render_charts
from exporter.report.data import RawData, Sample, Series, Window
from exporter.report.render_html import render_html
from exporter.report.render_md import md, render_markdown

T = 1_000_000.0
EVIL = '<img src=x onerror="alert(1)">|$\\x$'


def hostile_raw() -> RawData:
    def svc(datapath: str, **labels: str) -> dict[str, str]:
        return {"namespace": EVIL, "service": EVIL, "datapath": datapath, **labels}

    samples: dict[str, tuple[Sample, ...]] = {}
    for window in ("before", "after"):
        samples[f"{window}:buckets"] = tuple(
            Sample(svc(dp, le=le), v) for dp in ("ebpf", "kube-proxy")
            for le, v in (("0.001", 5.0), ("0.01", 9.0), ("+Inf", 10.0)))
        samples[f"{window}:flows"] = (Sample(svc("ebpf"), 100.0), Sample(svc("kube-proxy"), 100.0))
        samples[f"{window}:drops"] = (Sample(svc("ebpf", reason=EVIL), 4.0),)
    samples["verdicts"] = (Sample({"namespace": EVIL, "service": EVIL, "sli": "connect_duration",
                                   "comparison": "canary-vs-control"}, 1.0),
                           Sample({"namespace": EVIL, "service": EVIL, "sli": EVIL,
                                   "comparison": EVIL}, math.nan))
    samples["lost_events"] = (Sample({"source": EVIL}, 3.0),)
    samples["node_drops"] = (Sample({"reason": EVIL, "datapath": "ebpf"}, 7.0),)
    points = tuple((T + i * 30, float(i % 3)) for i in range(121))
    series = {
        "phase": (Series({"phase": EVIL}, points),),
        "datapath": (Series({"node": EVIL, "datapath": "ebpf", "source": EVIL}, points),),
        "switches": (Series({"node": EVIL}, tuple((t, T + 600) for t, _ in points)),),
        "service_drop_rates": (Series({"reason": EVIL, "datapath": "ebpf"}, points),),
        "node_drop_rates": (Series({"reason": EVIL, "datapath": "kube-proxy"}, points),),
        "handshake_p99": (Series({"datapath": EVIL}, points),),
    }
    return RawData(start=T, end=T + 3600, step=30, rate_window=120,
                   windows=(Window("before", T, T + 600), Window("after", T + 600, T + 3600)),
                   series=series, samples=samples)


def test_html_escapes_every_label_and_embeds_the_charts() -> None:
    report = assemble.build_report(hostile_raw(), prometheus='http://p/"><u>', generated_at=T)
    html = render_html(report, render_charts(report))
    assert "<img src=x" not in html and 'onerror="' not in html and "<u>" not in html
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;|$\\x$"
    assert f"<td>{escaped}/{escaped}</td>" in html  # service cells
    assert html.count("data:image/png;base64,") >= 5
    assert html.count("<img ") == html.count('src="data:image/png;base64,')


def test_markdown_keeps_its_tables_with_hostile_labels() -> None:
    report = assemble.build_report(hostile_raw(), prometheus="http://p", generated_at=T)
    text = render_markdown(report)
    assert "<img" not in text
    cell = md(f"{EVIL}/{EVIL}")
    one = r'&lt;img src=x onerror="alert(1)"&gt;\|$\\x$'
    assert cell == f"{one}/{one}"
    columns = None
    for line in text.splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        pipes = line.replace("\\|", "").count("|")
        columns = columns or pipes  # the table's header line
        assert pipes == columns, line
    verdict_rows = [line for line in text.splitlines()
                    if line.startswith(f"| {cell} | handshake latency | canary")]
    assert len(verdict_rows) == 1
    assert verdict_rows[0].startswith(f"| {cell} | handshake latency | canary | **worse** | no data | ")
    assert "too few events: too little eBPF traffic: 10 handshakes &lt; 100" in verdict_rows[0]


def test_markdown_cells_escape_markup_and_newlines() -> None:
    assert md("a|b") == r"a\|b"
    assert md("*x* _y_ [z]") == r"\*x\* \_y\_ \[z\]"
    assert md("<b>\nnext") == "&lt;b&gt; next"


def test_matplotlib_text_is_literal() -> None:
    assert mpl_text("cost $5 and $6") == r"cost \$5 and \$6"
    assert mpl_text("a\\b") == "a\\\\b"


def test_the_owners_of_cilium_config_are_in_both_renderings(recorded_run):
    assert recorded_run.code == 0
    md_text = recorded_run.markdown
    assert "## Who owns Cilium's configuration" in md_text
    assert "ConfigMap kube-system/cilium-config | helm | kube-system/cilium" in md_text
    assert 'id="owners"' in recorded_run.html and "a direct change is durable" in recorded_run.html
