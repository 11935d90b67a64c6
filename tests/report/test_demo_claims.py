"""The demo's improvement and regression stories produce claims tables a reader can check
against the scenario's known truth, and every number in them links to its query.

Each story runs as a user would run it: ``kpr-exporter demo --with-prometheus --report DIR``
(the simulator, the exporter, the emulated datapath with one probe per node, the real
Prometheus scraping them; wall time at ``--speed 30``). The truth comes from the scenario's
own profiles, the one home of the numbers both the simulator and the emulated datapath use
(``exporter.demo.emulated``): handshake medians, the CPU of the process serving Services
(kube-proxy on kube-proxy nodes, the whole agent on eBPF nodes), the programming medians and
the payload per connection the probes' load streams.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter import cli
from exporter.judge.settings import JudgeSettings
from exporter.report.model import BETTER, INCONCLUSIVE, NOT_WORSE, WORSE
from exporter.simulator.kube_proxy import AGENT_BASE_CPU_CORES
from exporter.simulator.scenarios import SCENARIOS, Scenario
from tests.realstack.harness import PROMETHEUS, require_binary

pytestmark = pytest.mark.realstack

#: The canary switches about 10 s in at this speed; the rest gives each side enough
#: handshakes, programming changes and node time for the judge's guards.
SPEED = "30"
DURATION = "120"
CLAIMS = {"throughput": "throughput +30–40 %", "latency": "latency −30 %", "cpu": "lower CPU",
          "programming": "faster programming"}


def direction(ebpf: float, kube_proxy: float) -> str:
    """The outcome a relative change of this size must get (lower is better)."""
    change = ebpf / kube_proxy - 1.0
    threshold = JudgeSettings().relative_threshold
    return BETTER if change < -threshold else WORSE if change > threshold else NOT_WORSE


def truth(scenario: Scenario) -> dict[str, str]:
    """What the claims table must say about the scenario, from its profiles."""
    ebpf, kp = scenario.ebpf, scenario.kube_proxy
    serving = direction(ebpf.service_cpu_cores, kp.service_cpu_cores)
    together = direction(ebpf.service_cpu_cores, kp.service_cpu_cores + AGENT_BASE_CPU_CORES)
    assert serving == together, "a scenario whose two CPU measures disagree has no single truth"
    # Throughput: higher is better, so the sides swap.
    return {"throughput": direction(kp.stream_bytes_per_s, ebpf.stream_bytes_per_s),
            "latency": direction(ebpf.connect.median_s, kp.connect.median_s),
            "cpu": serving,
            "programming": direction(ebpf.programming.median_s, kp.programming.median_s)}


def measured(rows: dict[str, tuple[str, list[list[str]]]], claim: str, evidence: str,
             comparison: str = "canary-vs-control") -> list[str]:
    """The cells of one measurement of a claim's row."""
    found = [cells for cells in rows[CLAIMS[claim]][1]
             if cells[3].startswith(evidence) and cells[4] == comparison]
    assert len(found) == 1, rows[CLAIMS[claim]]
    return found[0]


def change(cells: list[str]) -> float:
    """The relative change a measurement shows (``[+36 %](...)`` -> 0.36)."""
    found = re.search(r"\[([+-]?[\d.]+) %\]", cells[6].replace("\u2212", "-"))
    assert found, cells
    return float(found.group(1)) / 100


def assert_latency(rows: dict[str, tuple[str, list[list[str]]]], want: str, table: str) -> None:
    """The latency row against the truth. Hubble's pooled handshakes (thousands) decide as the
    profiles say. The probes' handshakes on the emulated datapath are draws of the same
    profiles, but a few hundred of them cannot always reach the judge's alpha for a quarter of a
    millisecond: they point the truth's way and never contradict it, so an improvement's row
    is better, or not worse when the probes cannot tell."""
    hubble = measured(rows, "latency", "handshake time, every Service pooled")
    assert hubble[1] == want, table
    allowed = {want} | ({NOT_WORSE} if want == BETTER else set())
    assert rows[CLAIMS["latency"]][0] in allowed, table
    for evidence in ("handshake time of the verification probes",
                     "handshake time of the probe load's connections"):
        cells = measured(rows, "latency", evidence)
        assert cells[1] in allowed | {INCONCLUSIVE}, table
        assert (change(cells) < 0) == (want == BETTER), table


def claims_rows(markdown: str) -> dict[str, tuple[str, list[list[str]]]]:
    """claim -> (outcome, its measurement rows' cells) from the summary's claims table."""
    section = markdown.split("## Claims vs measured")[1].split("\n## ")[0]
    rows: dict[str, tuple[str, list[list[str]]]] = {}
    current = ""
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| claim"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells[0]:
            current = cells[0].strip("*")
            rows[current] = (cells[1].strip("*"), [])
        elif cells[3]:
            rows[current][1].append(cells)
    return rows


def unlinked_numbers(cell: str) -> list[str]:
    """Digits in a cell outside a Markdown link to a query."""
    bare = re.sub(r"\[[^\]]*\]\(report\.html#q-\d+\)", "", cell)
    bare = re.sub(r"\[\\\[\d+\\\]\]\(report\.html#q-\d+\)", "", bare)
    return re.findall(r"\d", bare)


@pytest.mark.parametrize("name", ["canary-improvement", "canary-regression"])
def test_the_demo_report_judges_the_claims_as_the_scenario_says(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_binary(PROMETHEUS)
    report = tmp_path / "report"
    code = cli.main(["demo", "--scenario", name, "--with-prometheus", "--report", str(report),
                     "--speed", SPEED, "--duration", DURATION, "--interval", "10",
                     "--web.listen-address", "127.0.0.1:0", "--log.level", "error"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    markdown = (report / "summary.md").read_text(encoding="utf-8")
    html = (report / "report.html").read_text(encoding="utf-8")
    rows = claims_rows(markdown)
    expected = truth(SCENARIOS[name])
    got = {key: rows[text][0] for key, text in CLAIMS.items()}
    table = markdown.split("## Claims vs measured")[1][:6000]
    assert {k: v for k, v in got.items() if k != "latency"} == \
        {k: v for k, v in expected.items() if k != "latency"}, table
    assert_latency(rows, expected["latency"], table)
    # Throughput comes from the probes' load on the emulated datapath, which forwards each
    # connection at the profile's rate: its change is the scenario's, within a few percent.
    scenario = SCENARIOS[name]
    stream = measured(rows, "throughput", "probe load: bytes per second")
    assert stream[1] == expected["throughput"], stream
    truth_change = scenario.ebpf.stream_bytes_per_s / scenario.kube_proxy.stream_bytes_per_s - 1
    assert abs(change(stream) - truth_change) <= 0.08, (stream, truth_change)
    # None of the load's connections fail on the emulated datapath: the guard never worsens.
    assert measured(rows, "throughput", "probe load: connections")[1] != WORSE
    # Programming measured by the probes chasing new echo endpoints agrees with the agents'.
    assert measured(rows, "programming", "programming latency measured by the probes")[1] \
        == expected["programming"]
    assert measured(rows, "programming", "programming latency: kube-proxy's")[1] \
        == expected["programming"]
    # Every number of every measurement links to a query the report lists.
    for outcome, measurements in rows.values():
        assert measurements, outcome
        for cells in measurements:
            for cell in cells[5:7]:
                assert not unlinked_numbers(cell), cell
                for target in re.findall(r"report\.html#(q-\d+)", cell):
                    assert f'<li id="{target}">' in html
    linked = [c for _, ms in rows.values() for cells in ms for c in cells[5:7]
              if "report.html#q-" in c]
    assert len(linked) >= 8  # latency, CPU and programming have numbers in both comparisons
