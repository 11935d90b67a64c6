"""Verdict rows that explain themselves, without a network.

Every verdict row says why (worse; or too few events, not significant with the p-value, below
the floor or the threshold); a worse row always shows an effect; findings come first and the
rest is folded; the evidence is embedded (no link to an exporter that may be gone); time-axis
ticks never repeat; ``--title`` and ``--change-id`` head both documents.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from exporter import cli
from exporter.report import assemble, fmt
from exporter.report.charts import render_charts, time_tick_labels
from exporter.report.data import RawData, Sample, Window
from exporter.report.model import (
    CANARY_VS_CONTROL,
    WHY_BELOW_FLOOR,
    WHY_NOT_SIGNIFICANT,
    WHY_TOO_FEW,
    WHY_WORSE,
)
from exporter.report.render_html import render_html
from exporter.report.render_md import render_markdown

T = 1_764_000_000.0
BOUNDS = ("0.0001", "0.00025", "0.0005", "0.001", "0.0025", "+Inf")


def cohort(service: str, datapath: str, shape: tuple[float, ...], n: float, *,
           flows: float = 0.0, drops: float = 0.0, reason: str = "POLICY_DENIED") -> list[tuple[str, Sample]]:
    labels = {"namespace": "shop", "service": service, "datapath": datapath}
    out, running = [], 0.0
    for le, share in zip(BOUNDS, shape):
        running += share * n
        out.append(("buckets", Sample({**labels, "le": le}, running)))
    if flows:
        out.append(("flows", Sample(labels, flows)))
        out.append(("drops", Sample({**labels, "reason": reason}, drops)))
    return out


def raw_with(verdicts: dict[tuple[str, str], float], effects: dict[tuple[str, str], float],
             *cohorts: list[tuple[str, Sample]]) -> RawData:
    samples: dict[str, list[Sample]] = {}
    for pairs in cohorts:
        for name, sample in pairs:
            samples.setdefault(f"range:{name}", []).append(sample)

    def vlabels(service: str, sli: str) -> dict[str, str]:
        return {"namespace": "shop", "service": service, "sli": sli, "comparison": CANARY_VS_CONTROL}

    samples["verdicts"] = [Sample(vlabels(*k), v) for k, v in verdicts.items()]
    samples["effects"] = [Sample(vlabels(*k), v) for k, v in effects.items()]
    return RawData(start=T, end=T + 3600, step=30, rate_window=120,
                   windows=(Window("range", T, T + 3600),),
                   samples={k: tuple(v) for k, v in samples.items()})


SAME = (0.1, 0.4, 0.3, 0.15, 0.05, 0.0)
# Tiny absolute change, large relative one: +0.05 ms on a 0.01 ms-scale service.
SLOWER = (0.0, 0.1, 0.3, 0.35, 0.25, 0.0)


def report_of(raw: RawData):
    return assemble.build_report(raw, prometheus="http://p", generated_at=T + 3600)


def cells(report):
    return {(s.service, c.sli): c for s in report.services for c in s.verdicts}


def test_every_verdict_row_says_why() -> None:
    raw = raw_with(
        {("cart", "connect_duration"): 1, ("ledger", "connect_duration"): 0,
         ("web", "connect_duration"): math.nan, ("ledger", "drops"): 0},
        {("cart", "connect_duration"): 1.2, ("ledger", "connect_duration"): 8.45},
        cohort("cart", "ebpf", SLOWER, 50_000), cohort("cart", "kube-proxy", SAME, 50_000),
        cohort("ledger", "ebpf", SAME, 400, flows=1000, drops=3),
        cohort("ledger", "kube-proxy", SAME, 400, flows=1000, drops=2),
        cohort("web", "ebpf", SAME, 20), cohort("web", "kube-proxy", SAME, 20))
    report = report_of(raw)
    found = cells(report)
    assert found[("cart", "connect_duration")].why.startswith(WHY_WORSE + ": ")
    assert "significant (p" in found[("cart", "connect_duration")].why
    ledger = found[("ledger", "connect_duration")].why
    assert ledger.startswith(WHY_NOT_SIGNIFICANT + " (p=") and "≥" in ledger
    drops = found[("ledger", "drops")].why
    assert WHY_NOT_SIGNIFICANT in drops and WHY_BELOW_FLOOR in drops
    assert found[("web", "connect_duration")].why.startswith(WHY_TOO_FEW + ": ")
    assert "20 handshakes < 100" in found[("web", "connect_duration")].why

    html = render_html(report, render_charts(report))
    rows = re.findall(r'<tr><td>shop/[a-z]+</td><td>[^<]+</td><td>[^<]+</td>'
                      r'<td><span class="v [^"]+">([^<]+)</span></td><td>.*?</td><td>([^<]*)</td>',
                      html)
    assert len(rows) == 4
    for word, why in rows:
        assert why.split(":")[0].split(" (")[0] in (
            WHY_WORSE, WHY_NOT_SIGNIFICANT, WHY_BELOW_FLOOR, "below the threshold", WHY_TOO_FEW), why
    assert "+845 %" in html  # the exported effect, next to its reason
    markdown = render_markdown(report)
    assert markdown.count(" not significant (p=") >= 2 and "too few events: " in markdown


def test_a_worse_row_always_shows_an_effect() -> None:
    raw = raw_with(
        {("cart", "kpr_sensitive_drops"): 1, ("cart", "connect_duration"): 1},
        {("cart", "kpr_sensitive_drops"): math.inf},  # none on kube-proxy: an infinite ratio
        cohort("cart", "ebpf", SLOWER, 50_000, flows=100_000, drops=400,
               reason="SERVICE_BACKEND_NOT_FOUND"),
        cohort("cart", "kube-proxy", SAME, 50_000, flows=100_000, drops=0))
    report = report_of(raw)
    found = cells(report)
    assert found[("cart", "kpr_sensitive_drops")].shown_effect == (math.inf, "")
    effect, source = found[("cart", "connect_duration")].shown_effect  # not exported
    assert effect is not None and effect > 0 and source == "report window"
    html = render_html(report, render_charts(report))
    markdown = render_markdown(report)
    for sli in ("handshake latency", "KPR-sensitive drops"):
        html_effect = re.search(rf"<tr><td>shop/cart</td><td>{sli}</td><td>canary-vs-control</td>"
                                r'<td><span class="v v-worse">worse</span></td><td>(.*?)</td>', html)
        md_effect = re.search(rf"\| shop/cart \| {sli} \| canary \| \*\*worse\*\* \| (.*?) \|",
                              markdown)
        assert html_effect and md_effect, sli
        for effect_cell in (html_effect.group(1), md_effect.group(1)):
            assert fmt.NO_DATA not in effect_cell and effect_cell, effect_cell
    assert "from 0" in markdown and "(report window)" in markdown


def test_findings_first_and_the_rest_folded() -> None:
    raw = raw_with(
        {("cart", "connect_duration"): 1, ("ledger", "connect_duration"): 0,
         ("web", "connect_duration"): math.nan},
        {}, cohort("cart", "ebpf", SLOWER, 50_000), cohort("cart", "kube-proxy", SAME, 50_000))
    report = report_of(raw)
    assert [(s.service, c.word) for s, c in report.findings] == [("cart", "worse")]
    assert [(s.service, c.word) for s, c in report.other_verdicts] == [
        ("web", "inconclusive"), ("ledger", "not worse")]
    html = render_html(report, render_charts(report))
    section = html.split('<h2 id="verdicts">')[1].split("<h2")[0]
    findings, folded = section.split("<details><summary>2 other verdicts (1 inconclusive, 1 not worse)")
    assert "shop/cart" in findings and "shop/ledger" not in findings and "shop/web" not in findings
    assert "shop/ledger" in folded and "shop/web" in folded
    markdown = render_markdown(report)
    found, others = markdown.split("## Findings")[1].split("## Other verdicts (not worse, inconclusive)")
    assert "| shop/cart |" in found and "| shop/ledger |" not in found
    assert "| shop/ledger |" in others.split("##")[0] and "| shop/web |" in others.split("##")[0]


def test_the_evidence_is_in_the_report_not_behind_a_link() -> None:
    raw = raw_with({("cart", "connect_duration"): 1, ("cart", "drops"): 0}, {},
                   cohort("cart", "ebpf", SLOWER, 50_000, flows=1000, drops=3),
                   cohort("cart", "kube-proxy", SAME, 50_000, flows=1000, drops=2))
    report = report_of(raw)
    html = render_html(report, render_charts(report))
    assert "/api/v1/verdicts" not in html
    assert html.count("<details><summary>evidence</summary>") == 2
    assert "mann-whitney-u" in html and "tail-exceedance" in html and "rate-ratio" in html
    assert "eBPF connections 50,000" in html


@pytest.mark.parametrize("seconds", [120, 300, 7200, 2 * 86400])
def test_time_axis_ticks_never_repeat(seconds: int) -> None:
    labels = time_tick_labels(T + 12, T + 12 + seconds)
    assert len(labels) >= 2
    assert len(set(labels)) == len(labels), labels


def test_title_and_change_id_head_both_documents() -> None:
    report = replace(report_of(raw_with({}, {})), title="prod-eu <b>switch</b>", change_id="CHG-1234")
    html = render_html(report, render_charts(report))
    assert "<h1>prod-eu &lt;b&gt;switch&lt;/b&gt;</h1>" in html
    assert "<title>CHG-1234: prod-eu &lt;b&gt;switch&lt;/b&gt;" in html
    assert "Change: <b>CHG-1234</b>" in html
    markdown = render_markdown(report)
    assert markdown.startswith("# prod-eu &lt;b&gt;switch&lt;/b&gt;\n")
    assert "- Change: **CHG-1234**" in markdown
    args = cli.build_parser().parse_args(["report", "--prometheus", "http://127.0.0.1:9090",
                                          "--title", "prod-eu", "--change-id", "CHG-1"])
    assert (args.title, args.change_id) == ("prod-eu", "CHG-1")


def test_the_evidence_follows_the_judges_two_windows() -> None:
    """Worse in the short window only is not worse, as the judge combines them: the row says
    why from the long window and names both."""
    raw = raw_with({("cart", "connect_duration"): 0}, {("cart", "connect_duration"): 1.2},
                   cohort("cart", "ebpf", SLOWER, 50_000), cohort("cart", "kube-proxy", SAME, 50_000))
    samples = dict(raw.samples)
    for window, shape in (("short", SLOWER), ("long", SAME)):
        for name, sample in (*cohort("cart", "ebpf", shape, 400),
                             *cohort("cart", "kube-proxy", SAME, 400)):
            samples[f"{window}:{name}"] = (*samples.get(f"{window}:{name}", ()), sample)
    raw = replace(raw, samples=samples, judge_windows=(
        Window("short", T + 3300, T + 3600), Window("long", T + 1800, T + 3600)))
    cell = cells(report_of(raw))[("cart", "connect_duration")]
    assert cell.evidence is not None and cell.evidence.outcome == "not worse"
    assert cell.why.startswith(WHY_NOT_SIGNIFICANT + " (p=")
    assert cell.why.endswith("[long window, 30m; the short window: worse]")
    assert cell.evidence.window == Window("long", T + 1800, T + 3600)
