"""The report's verification section from the recorded Prometheus: the probes' checks x nodes
matrix before the switch, on the canary and after; hostile labels stay escaped; a range
without probe results says so."""

from __future__ import annotations

import re

from exporter.report import assemble
from exporter.report.charts import render_charts
from exporter.report.data import RawData, Sample, Window
from exporter.report.render_html import render_html
from exporter.report.render_md import render_markdown
from exporter.report.model import PhaseSegment
from exporter.report.verification import FAIL, PASS, matrix, phase_windows
from exporter.verify.results import CHECKS
from tests.report import scenario
from tests.report.test_render import EVIL, hostile_raw


def test_the_scenario_probes_the_whole_vocabulary():
    assert scenario.PROBE_CHECKS == CHECKS


def test_phase_windows_span_each_phase_in_order():
    segments = [PhaseSegment("before", 0, 10), PhaseSegment(None, 10, 20),
                PhaseSegment("canary", 20, 30), PhaseSegment("before", 30, 40),
                PhaseSegment("rolled-back", 40, 50)]
    assert phase_windows(segments) == (Window("before", 0, 40), Window("canary", 20, 30))
    assert phase_windows([]) == ()


def test_a_cell_fails_on_any_failed_result_and_errors_decide_nothing():
    w = Window("canary", 0, 60)
    s = [Sample({"check": "hostport", "node": "n1", "datapath": "ebpf", "result": "pass"}, 9),
         Sample({"check": "hostport", "node": "n1", "datapath": "ebpf", "result": "fail"}, 1),
         Sample({"check": "hostport", "node": "n2", "datapath": "kube-proxy",
                 "result": "error"}, 4),
         Sample({"check": "hostport", "node": "n2", "datapath": "kube-proxy", "result": "pass"}, 2)]
    m = matrix(w, s)
    assert m is not None
    assert m.cell("hostport", "n1").status == FAIL and m.cell("hostport", "n1").judged == 10
    assert m.cell("hostport", "n2").status == PASS and m.cell("hostport", "n2").errors == 4
    assert matrix(w, [Sample({"check": "hostport", "node": "n1", "datapath": "ebpf",
                              "result": "pass"}, 0)]) is None


def test_recorded_report_shows_the_canary_failing_two_checks_after_its_switch(recorded_run):
    assert recorded_run.code == 0
    md = recorded_run.markdown
    section = md[md.index("## Verification (active probes)"):]
    assert "- Before the switch (16:00-16:40 UTC): every check passed on every node" in section
    assert "- On the canary (16:40-18:00 UTC): **2 failing** of 13 checks × 3 nodes" in section
    failing = re.findall(r"^  - \*\*(.+?)\*\* on (\S+): (\d+) of (\d+) results failed$",
                         section, re.M)
    assert failing == [("nodeport-loopback", "node-b", "320", "320"),
                       ("session-affinity", "node-b", "320", "320")]
    html = recorded_run.html
    part = html[html.index('<h2 id="verification">'):]
    part = part[:part.index("<h2", 5)]
    assert "<h3>Before the switch" in part and "<h3>On the canary" in part
    assert "node-b (ebpf)" in part and "node-a (kube-proxy)" in part
    assert "node-c (ebpf+kube-proxy)" in part  # node-c switched inside the canary window
    assert part.count("v v-worse") == 2
    assert part.count("v v-better") == 13 * 3 + 13 * 3 - 2


def test_a_range_without_probe_results_says_so_and_hostile_labels_stay_escaped():
    raw = hostile_raw()
    report = assemble.build_report(raw, prometheus="http://p", generated_at=0.0)
    assert report.verification == ()
    assert "No kpr_probe_checks_total results in any phase." in render_markdown(report)
    window = Window("canary", raw.start, raw.end)
    samples = {**raw.samples, "probe:canary": (
        Sample({"check": EVIL, "node": EVIL, "datapath": EVIL, "result": "fail"}, 3.0),)}
    evil = RawData(raw.start, raw.end, raw.step, raw.rate_window, raw.windows, raw.series,
                   samples, raw.queries, raw.warnings, raw.judge_windows, (window,))
    report = assemble.build_report(evil, prometheus="http://p", generated_at=0.0)
    assert len(report.verification) == 1
    html = render_html(report, render_charts(report))
    assert EVIL not in html and "&lt;img src=x" in html
    section = render_markdown(report).split("## Verification (active probes)")[1]
    assert "&lt;img src=x" in section and "\\|" in section and "<img" not in section
