"""``cmd_report`` end to end against a Prometheus stand-in serving recorded API responses.

Matrix:

* recorded responses (RFC 3339 and relative ``--from``/``--to``) -> exit 0; the HTML holds
  the services, verdict words, embedded PNGs and escaped hostile labels, and nothing
  external; the Markdown holds the timeline, verdict and change rows;
* Prometheus unreachable / too slow / not Prometheus / refusing a query -> exit 1 and a
  message saying which;
* Prometheus without kpr-exporter data -> exit 0 and "no data" everywhere, never 0;
* bad ``--from``/``--to``/URL -> exit 2 before any request; unwritable output -> exit 1.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from exporter.report import client, queries
from exporter.report.fetch import fetch
from exporter.report.timeparse import parse_range
from tests.report import scenario
from tests.report.conftest import ReportRun, RunReport
from tests.report.promfixture import FixturePrometheus

HOSTILE_HTML = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; | $1"


def test_report_from_recorded_responses(recorded_run: ReportRun) -> None:
    run = recorded_run
    assert run.code == 0, run.out
    assert "phase canary, 4 services" in run.out
    html = run.html
    for service in ("shop/cart", "shop/checkout", "payments/ledger"):
        assert f"<td>{service}</td>" in html
    for word in ("worse", "not worse", "better", "inconclusive"):
        assert f'<span class="v v-{word.replace(" ", "-")}">{word}</span>' in html
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/]{100,}={0,2}"', html)) >= 6
    assert "node-b switched to eBPF" in html and "rollback planned (dry-run)" in html


def test_html_is_self_contained_and_escapes_labels(recorded_run: ReportRun) -> None:
    html = recorded_run.html
    assert HOSTILE_HTML in html
    assert "<script" not in html  # neither the hostile label nor any script of ours
    assert not re.search(r'(src|href)="(?!data:|#q-\d+")', html)  # in-page query links only
    assert "<link" not in html and "@import" not in html
    assert "SERVICE_BACKEND_NOT_FOUND</span> (KPR-sensitive)" in html


def test_markdown_summary_rows(recorded_run: ReportRun) -> None:
    md = recorded_run.markdown
    assert "- Phase at the end of the range: **canary**" in md
    assert "| 2025-11-24 16:40:00 UTC | node-b switched to eBPF |" in md
    assert "| 2025-11-24 17:40:00 UTC | rollback planned (dry-run) |" in md
    findings, others = md.split("## Findings")[1].split("## Other verdicts")
    others = others.split("## Top regressions")[0]
    for sli in ("handshake latency", "connect failures", "drops", "KPR-sensitive drops"):
        assert f"| shop/cart | {sli} | canary | **worse** | +210 % | worse: " in findings
    assert "| shop/checkout | handshake latency | canary | better | -31 % | better: " in findings
    assert "not worse" not in findings and "inconclusive" not in findings
    assert ("| shop/checkout | drops | canary | not worse | -31 % | not significant (p=0.65 "
            in others)
    hostile = r'web/&lt;script&gt;alert("x")&lt;/script&gt; \| $1'
    assert f"| {hostile} | handshake latency | canary | inconclusive | no data | too few events" in others
    assert "/api/v1/verdicts" not in md and "/api/v1/verdicts" not in recorded_run.html
    assert "<script" not in md
    top = md.split("## Top regressions")[1].split("##")[0]
    assert "| shop/cart | handshake p99 | canary-vs-control |" in top
    elsewhere = "\n".join(line for line in md.splitlines() if not line.startswith("- Prometheus: "))
    assert "http" not in elsewhere
    links = re.findall(r"\]\(([^)]*)\)", md)  # only the claims' numbers, to their queries
    assert links and all(re.fullmatch(r"report\.html#q-\d+", link) for link in links)


@pytest.mark.parametrize(("time_from", "time_to"), [
    ("2025-11-24T16:00:00Z", "2025-11-24T18:00:00Z"),
    ("now-120m", "2025-11-24T19:00:00+01:00"),
    ("1764000000", "now"),
])
async def test_time_forms_send_the_recorded_queries(time_from: str, time_to: str) -> None:
    start, end = parse_range(time_from, time_to, scenario.END)
    async with FixturePrometheus() as prometheus, client.session() as http:
        raw = await fetch(client.PrometheusClient(prometheus.url, http), start, end)
    assert prometheus.unknown == []
    assert [w.name for w in raw.windows] == ["before", "after"]


async def test_unreachable_prometheus_exits_1(run_report: RunReport, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = await run_report(f"http://127.0.0.1:{port}")
    assert run.code == 1
    assert f"cannot query Prometheus at http://127.0.0.1:{port}" in run.out
    assert "cannot connect" in run.out
    assert not run.directory.exists()


async def test_slow_prometheus_times_out(run_report: RunReport) -> None:
    async with FixturePrometheus("hang") as prometheus:
        run = await run_report(prometheus.url, timeout=0.3)
    assert run.code == 1
    assert "did not answer in time" in run.out


async def test_query_error_is_reported_with_the_query(run_report: RunReport) -> None:
    async with FixturePrometheus(overrides={queries.VERDICTS: "error_bad_data.json"}) as prometheus:
        run = await run_report(prometheus.url)
    assert run.code == 1
    assert "Prometheus query failed: Prometheus refused the query (bad_data): " in run.out
    assert "parse error" in run.out
    assert f"  query: {queries.VERDICTS}\n" in run.out


async def test_something_else_than_prometheus(run_report: RunReport) -> None:
    async with FixturePrometheus("html") as prometheus:
        run = await run_report(prometheus.url + "/grafana")
    assert run.code == 1
    assert "answered HTTP 404 without a Prometheus API response" in run.out
    assert "is this a Prometheus base URL?" in run.out


async def test_no_data_is_shown_as_no_data(run_report: RunReport) -> None:
    async with FixturePrometheus("empty") as prometheus:
        run = await run_report(prometheus.url)
    assert run.code == 0, run.out
    assert "Prometheus returned no kpr-exporter series" in run.out
    html, md = run.html, run.markdown
    assert "data:image/png" not in html
    assert '<div class="card">phase now<b>no data</b></div>' in html
    assert '<div class="card">worse verdicts<b>no data</b></div>' in html
    assert '<div class="card">rollbacks in range<b>no data</b></div>' in html
    assert "No data: no kpr_verdict series at the end of the range" in html
    assert "No data: no handshake histogram data in this range" in html
    assert "- Phase at the end of the range: **no data**" in md
    assert "- Verdicts: no data" in md
    assert "- Rollbacks in the range: no data" in md
    assert "No data: no kpr_migration_phase series in this range." in md
    for text in (html, md):
        assert not re.search(r"[>| ]0(\.0+)? ?(%|ms|µs|s)(?!\w)", text)
        assert "<td>0</td>" not in text


@pytest.mark.parametrize(("url", "time_from", "time_to", "message"), [
    ("http://127.0.0.1:9", "yesterday", "now", "--from: 'yesterday' is neither"),
    ("http://127.0.0.1:9", "-2h", "-3h", "must be before --to"),
    ("http://127.0.0.1:9", "2025-11-24T16:00:00", "now", "has no time zone"),
    ("http://127.0.0.1:9", "-2x", "now", "'2x' is not a duration"),
    ("localhost:9090", "-2h", "now", "is not an http:// or https:// URL"),
])
async def test_bad_arguments_exit_2(run_report: RunReport, url: str, time_from: str,
                                    time_to: str, message: str) -> None:
    run = await run_report(url, time_from, time_to)
    assert run.code == 2
    assert message in run.out
    assert not run.directory.exists()


async def test_unwritable_output_exits_1(run_report: RunReport, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    async with FixturePrometheus() as prometheus:
        run = await run_report(prometheus.url, output=blocker / "report")
    assert run.code == 1
    assert "cannot write the report into" in run.out


WHYS = ("worse: ", "better: ", "not significant (p=", "below the floor (", "below the threshold (",
        "too few events", "no data: ")


def test_every_recorded_verdict_row_says_why(recorded_run: ReportRun) -> None:
    section = recorded_run.html.split('<h2 id="verdicts">')[1].split("<h2")[0]
    rows = re.findall(r'<td><span class="v v-[a-z-]+">([a-z ]+)</span></td><td>.*?</td><td>([^<]*)</td>',
                      section)
    assert len(rows) == 23  # every kpr_verdict series of the scenario
    for word, why in rows:
        reason = why.split(" counts say ")[-1]
        assert reason.startswith(WHYS), (word, why)
    assert "<details><summary>14 other verdicts (3 inconclusive, 11 not worse)</summary>" in section
    assert section.count("<details><summary>evidence</summary>") == 23


async def test_title_and_change_id_reach_both_documents(run_report: RunReport) -> None:
    async with FixturePrometheus() as prometheus:
        run = await run_report(prometheus.url, title="prod-eu  kube-proxy removal",
                               change_id="CHG-4711")
    assert run.code == 0, run.out
    assert "<h1>prod-eu kube-proxy removal</h1>" in run.html
    assert "<title>CHG-4711: prod-eu kube-proxy removal" in run.html
    assert run.markdown.startswith("# prod-eu kube-proxy removal\n")
    assert "- Change: **CHG-4711**" in run.markdown
