"""The report's claims table from recorded Prometheus responses.

The recordings (``tests/data/prometheus``, re-made with ``python -m tests.report.record``)
hold the two-hour canary of ``scenario.py`` with the claims' series of
``scenario_claims.py``; its known truth is checked row by row. A local stand-in serves them
over HTTP on 127.0.0.1; overrides take one source away (cAdvisor, kube-state-metrics) to show
that absent evidence is named, not read as zero.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.judge.settings import JudgeSettings
from exporter.report import claims_queries, queries
from exporter.report import client as prom
from exporter.report.assemble import build_report
from exporter.report.fetch import fetch
from exporter.report.model import BETTER, INCONCLUSIVE, WORSE, Report
from exporter.report.render_html import render_html
from exporter.report.render_md import render_markdown
from tests.report import scenario, scenario_claims
from tests.report.promfixture import FixturePrometheus

EMPTY = Path(__file__).resolve().parent.parent / "data" / "prometheus-empty"
RATE = queries.rate_window_for(queries.step_for(scenario.START, scenario.END))


async def claims_report(mode: str = "replay", overrides: dict[str, str] | None = None) -> Report:
    async with FixturePrometheus(mode, overrides=overrides) as prometheus:
        async with prom.session(10.0) as session:
            raw = await fetch(prom.PrometheusClient(prometheus.url, session), scenario.START,
                              scenario.END)
    assert prometheus.unknown == []
    return build_report(raw, prometheus=prometheus.url, generated_at=scenario.END,
                        judge=JudgeSettings())


def _empty(kind: str) -> str:
    return str(EMPTY / f"{kind}.json")


async def test_each_claim_matches_the_recorded_scenarios_truth() -> None:
    report = await claims_report()
    claims = report.claims
    assert claims is not None
    assert [row.key for row in claims.rows] == ["throughput", "latency", "cpu", "programming"]
    outcome = {row.key: row.outcome for row in claims.rows}
    # eBPF streams 35 % more bytes per second, no load connection fails; the pooled handshakes
    # are slower (shop/cart dominates the traffic); both CPU measures and programming are lower.
    assert outcome == {"throughput": BETTER, "latency": WORSE, "cpu": BETTER,
                       "programming": BETTER}
    assert claims.row("throughput").against_claim == "confirmed: +35 % (claimed +30 %)"
    assert claims.row("latency").against_claim == "contradicted: measured worse"
    cpu = claims.row("cpu").measurements
    assert {(m.what.split(",")[0], m.comparison) for m in cpu} == {
        (what, comparison) for what in ("CPU of the process serving Services",
                                        "CPU of kube-proxy and the Cilium agent together",
                                        "cAdvisor: kube-proxy and cilium-agent containers")
        for comparison in ("canary-vs-control", "after-vs-baseline")}
    assert all(m.outcome == BETTER for m in cpu)
    served = next(m for m in cpu if m.what.startswith("CPU of the process")
                  and m.comparison == "after-vs-baseline")
    assert served.relative == pytest.approx(scenario_claims.CPU["ebpf"] / scenario_claims.CPU[
        "kube-proxy"] - 1, abs=0.02)
    guard = [m for m in claims.row("throughput").measurements if "failed" in m.what]
    assert guard and all(m.outcome != WORSE for m in guard)
    # What was looked for and is absent is said, never counted as zero.
    notes = " ".join(n for row in claims.rows for n in row.notes)
    assert "handshake time of the verification probes: not measured" in notes
    assert "programming latency measured by the probes: not measured" in notes
    assert claims.services.exact and claims.services.count is not None
    assert claims.services.count.text == str(scenario_claims.SERVICE_COUNT)
    assert claims.scale_line.startswith("Your Service count is 40 (kube-state-metrics")
    assert "~20,000 Services" in claims.scale_line and "~1,000 Services" in claims.scale_line
    assert any("softirq" in c for c in claims.caveats)
    assert any("does other work" in c or "unrelated to Services" in c for c in claims.caveats)


async def test_every_number_links_to_the_query_it_came_from() -> None:
    report = await claims_report()
    assert report.claims is not None
    figures = [f for row in report.claims.rows for m in row.measurements
               for f in (m.ebpf, m.reference, m.change)]
    assert figures and all(f.queries for f in figures if f.text != "no data")
    html = render_html(report, charts=_no_charts())
    section = html.split('<h2 id="claims">')[1].split("<h2")[0]
    targets = set(re.findall(r'href="#(q-\d+)"', section))
    assert targets and all(f'<li id="{t}">' in html for t in targets)
    for fig in figures:
        for query in fig.queries:
            index = report.queries.index(query)
            assert f'<li id="q-{index}">' in html and f"#q-{index}" in section
    markdown = render_markdown(report)
    claims_md = markdown.split("## Claims vs measured")[1].split("\n## ")[0]
    md_targets = set(re.findall(r"\(report\.html#(q-\d+)\)", claims_md))
    assert md_targets == targets
    count_query = report.claims.services.count.queries[0]
    assert count_query.expr == claims_queries.SERVICES_KSM
    assert f"[40](report.html#q-{report.queries.index(count_query)})" in claims_md


async def test_without_cadvisor_or_kube_state_metrics_the_report_says_so() -> None:
    overrides = {claims_queries.cadvisor_cpu(RATE): _empty("matrix"),
                 claims_queries.SERVICES_KSM: _empty("vector")}
    report = await claims_report(overrides=overrides)
    assert report.claims is not None
    cpu = report.claims.row("cpu")
    assert not any(m.what.startswith("cAdvisor") for m in cpu.measurements)
    assert any(n.startswith("cAdvisor: kube-proxy and cilium-agent containers, per node: not "
                            "measured (the cluster's Prometheus has no cAdvisor") for n in cpu.notes)
    assert cpu.outcome == BETTER  # the exporter's own CPU numbers still decide
    services = report.claims.services
    assert not services.exact and services.count is not None and services.count.text == "4"
    assert report.claims.scale_line.startswith("Your Service count is at least 4 (Services with")


async def test_no_data_is_inconclusive_never_a_pass() -> None:
    report = await claims_report("empty")
    assert report.claims is not None
    for row in report.claims.rows:
        assert row.outcome == INCONCLUSIVE, row.key
        assert row.against_claim == "cannot tell: not enough data"
        assert all(m.outcome == INCONCLUSIVE for m in row.measurements)
        assert all(m.relative is None and m.change.text == "no data" for m in row.measurements)
    assert report.claims.services.count is None
    assert report.claims.scale_line.startswith("Your Service count is unknown")


def _no_charts():
    from exporter.report.charts import Charts

    return Charts(None, None, None, None, ())
