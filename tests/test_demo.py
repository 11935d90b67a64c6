"""``kpr-exporter demo``: every scenario starts, summarises and ends cleanly with --duration;
the regression story reaches a dry-run rollback plan. First contact: loopback and the
regression story by default (and ``--help`` says so), ``?`` has a legend, the plan is printed
when it changes, the stand-in alert is the shipped rule's, webhook outcomes keep their words."""

import asyncio
import io
import math
import re
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from exporter import cli, commands
from exporter.cilium import MIGRATION_LABEL
from exporter.demo import alert as demo_alert
from exporter.demo import defaults as demo_defaults
from exporter.demo import processes
from exporter.demo.summary import Summary
from exporter.demo.text import INCONCLUSIVE_LEGEND, webhook_answer
from exporter.judge.verdict import CANARY_VS_CONTROL, INCONCLUSIVE, NOT_WORSE, WORSE, Verdict
from exporter.rulegen import render_rules
from exporter.simulator.scenarios import SCENARIO_NAMES, SCENARIOS, get_scenario
from tests.emulated_networks import next_network
from tests.demo.fast_time import FastTime


class PacedTime(FastTime):
    """``FastTime`` that holds still while the demo's exporter is more than ``slack`` flows
    behind its simulator: on a busy machine the story runs slower on the wall instead of
    running ahead of its reader (the judge would see late data, the Relay would lose events).
    ``run_demo`` hands it the demo to ``watch``. For stories whose timeline holds flows only
    (no lost-events bursts): it counts the flows the exporter took against the events the
    simulator released since the stream opened."""

    def __init__(self, factor: float, slack: int = 2000) -> None:
        super().__init__(factor)
        self.slack = slack
        self.demo = None
        self._now, self._last = time.time(), time.monotonic()
        self._before_stream: int | None = None

    def watch(self, demo) -> None:
        self.demo = demo

    def _behind(self) -> bool:
        demo = self.demo
        ready = demo.counter.ready if demo is not None and demo.counter is not None else None
        if ready is None or not ready.is_set():
            return False
        read = sum(demo.counter.per_node.values())
        released = demo.simulator.timeline.total
        if self._before_stream is None:  # what was released before the stream opened
            self._before_stream = released - read
        return released - self._before_stream - read > self.slack

    def clock(self) -> float:
        wall = time.monotonic()
        if not self._behind():
            self._now += (wall - self._last) * self.factor
        self._last = wall
        return self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self.clock() + max(0.0, seconds)
        while (left := deadline - self.clock()) > 0:
            await asyncio.sleep(left / self.factor)


def with_traffic(monkeypatch, story: str, share: float) -> None:
    """The simulator story ``story`` with ``share`` of its traffic, for this test."""
    scenario = get_scenario(story)
    monkeypatch.setitem(SCENARIOS, story, replace(scenario, rate_scale=scenario.rate_scale * share))


def run_demo(argv: list[str], fast: FastTime | None = None) -> int:
    """``kpr-exporter demo ARGV`` (the command itself, without logging setup), on ``fast`` time
    when given."""
    args = cli.build_parser().parse_args(["demo", *argv])
    settings = cli.load_settings(args, {})
    if fast is None:
        return asyncio.run(commands.demo(settings, args))
    if isinstance(fast, PacedTime):
        from exporter.demo import session

        class Watched(session.Demo):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                fast.watch(self)

        real, session.Demo = session.Demo, Watched
        try:
            return asyncio.run(commands.demo(settings, args, clock=fast.clock, sleep=fast.sleep))
        finally:
            session.Demo = real
    return asyncio.run(commands.demo(settings, args, clock=fast.clock, sleep=fast.sleep))


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_demo_runs_each_scenario_for_its_duration(scenario, capsys):
    # 20 scenario seconds per wall second: the simulator generates every elapsed scenario
    # second's flows at once, so a rate a loaded machine cannot keep up with would make
    # each catch-up longer than the one before.
    code = run_demo(["--scenario", scenario, "--duration", "2.5", "--interval", "1",
                     "--speed", "2", "--web.listen-address", "127.0.0.1:0"], FastTime(10))
    out = capsys.readouterr().out
    assert code == 0
    assert f"scenario {scenario!r}" in out
    assert "metrics        http://127.0.0.1:" in out
    assert "phase=" in out and "handshake" in out
    assert out.rstrip().endswith("demo stopped")


def test_the_demo_runs_on_its_injected_clock_and_sleep(capsys):
    # 20 s of the demo's clock, 20 times faster than the wall's: about one wall second.
    started = time.monotonic()
    code = run_demo(["--scenario", "baseline", "--duration", "20", "--interval", "2",
                     "--speed", "1", "--web.listen-address", "127.0.0.1:0"], FastTime(20))
    wall = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0
    assert wall < 10, f"the demo took {wall:.1f}s of wall time: it waited on the wall's clock"
    stamps = [int(x) for x in re.findall(r"^\[\s*(\d+)s\] scenario t=", out, re.M)]
    assert len(stamps) >= 3, out
    # The summaries' times are the demo's clock: seconds of it, not of the wall.
    assert stamps == sorted(stamps) and stamps[-1] >= 10
    assert out.rstrip().endswith("demo stopped")


def test_canary_regression_demo_shows_the_dry_run_rollback(capsys, monkeypatch):
    # The story with half its traffic, at the demo's own speed (x10) on paced time: as fast
    # as the exporter reads the ~700 flows per demo second, never ahead of it. node-b
    # switches at scenario t=300s (30 s in), the first rollback alert comes about 41 s in,
    # the cooldowns from about 47 s on.
    with_traffic(monkeypatch, "canary-regression", 0.5)
    code = run_demo(["--scenario", "canary-regression", "--duration", "58", "--interval", "2",
                     "--web.listen-address", "127.0.0.1:0"], PacedTime(10))
    out = capsys.readouterr().out
    assert code == 0
    assert "phase=canary" in out
    assert "connect_duration=WORSE" in out
    assert ">> alert KprJudgeServiceWorse firing" in out
    assert "webhook answered 200 accepted: would roll back node node-b" in out
    assert "planned: dry-run: would run" in out
    # The plan is printed once, then only said to be unchanged.
    assert out.count(f"remove label {MIGRATION_LABEL} from node node-b") == 1
    assert "plan unchanged since" in out
    # Later worse services meet the cooldown: their own word, not "refused".
    assert "webhook answered 200 cooldown: last rollback" in out
    assert "webhook answered 200 refused" not in out


def test_demo_without_the_binaries_says_so_and_keeps_the_stand_in(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(processes, "find_binary", lambda name: None)
    report = tmp_path / "report"
    # Through the command line: the flags reach the demo.
    code = cli.main(["demo", "--scenario", "baseline", "--duration", "0.2", "--interval", "1",
                     "--speed", "20", "--web.listen-address", "127.0.0.1:0", "--log.level", "error",
                     "--with-prometheus", "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert "prometheus is not installed (Debian package prometheus" in out
    assert "continuing with the stand-in alert" in out
    assert "alerting       stand-in" in out
    assert "--report needs a Prometheus that scraped the demo" in out
    assert "kpr-exporter report --prometheus URL" in out
    assert "not available" not in out
    assert not report.exists()
    assert out.rstrip().endswith("demo stopped")


# --- first contact: defaults, help, legend, plan, stand-in alert, webhook words -------------




def demo_settings_for(argv: list[str], env: dict[str, str] | None = None):
    args = cli.build_parser().parse_args(["demo", *argv])
    given = {k.removeprefix("flag:") for k in vars(args) if k.startswith("flag:")}
    return demo_defaults.apply(cli.load_settings(args, env or {}), given)


def test_the_demo_listens_on_loopback_and_plays_the_regression_story_by_default():
    settings = demo_settings_for([])
    assert settings.web.listen_address == "127.0.0.1:9977"
    assert settings.simulator.grpc_listen_address == "127.0.0.1:0"
    assert settings.simulator.agents_listen_address == "127.0.0.1:0"
    assert settings.simulator.scenario == "canary-regression"
    scenario = get_scenario(settings.simulator.scenario)
    assert scenario.switches, "the default story has a switch"
    # The switch comes within the first minute of wall time, the verdicts right after it.
    assert min(s.at_s for s in scenario.switches) / settings.simulator.speed <= 60
    assert any(o.verdict == "worse" for o in scenario.outcomes)


def test_what_the_user_sets_wins_over_the_demo_defaults():
    settings = demo_settings_for(["--speed", "1", "--scenario", "baseline"],
                                 env={"KPR_WEB_LISTEN_ADDRESS": "127.0.0.1:9100"})
    assert settings.simulator.speed == 1.0
    assert settings.simulator.scenario == "baseline"
    assert settings.web.listen_address == "127.0.0.1:9100"


def test_demo_help_shows_the_defaults_the_demo_uses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: canary-regression)" in text
    assert "(default: 10)" in text
    assert "(default: 127.0.0.1:9977)" in text
    assert "(default: 127.0.0.1:0, a free loopback port)" in text
    assert "(default: :9977)" not in text and "(default: 1.0)" not in text
    assert "(default: 127.0.0.1:4245)" not in text


def test_the_stand_in_alert_is_the_shipped_judge_rule():
    shipped = [r for g in render_rules(demo_alert.PROFILE)["groups"] for r in g["rules"]
               if 'kpr_verdict{comparison="canary-vs-control"}' in r.get("expr", "")
               and r.get("alert")]
    assert len(shipped) == 1
    rule = demo_alert.judge_rule(CANARY_VS_CONTROL)
    assert rule == shipped[0]
    series = {"namespace": "shop", "service": "cart", "sli": "connect_duration",
              "comparison": CANARY_VS_CONTROL}
    alert = demo_alert.alert(rule, series, 0.42)
    assert alert["labels"]["alertname"] == rule["alert"] == "KprJudgeServiceWorse"
    assert alert["labels"] == {**series, **rule["labels"], "alertname": rule["alert"]}
    assert alert["labels"]["kpr_action"] == "rollback"
    description = alert["annotations"]["description"]
    assert "shop/cart" in description and "42%" in description and "{{" not in description
    assert set(alert["annotations"]) == set(rule["annotations"])
    payload = demo_alert.payload([alert])
    assert payload["groupLabels"] == {"alertname": "KprJudgeServiceWorse"}
    assert payload["commonLabels"]["kpr_action"] == "rollback"


def test_the_stand_in_follows_the_rule_source(monkeypatch):
    rule = {"alert": "RenamedJudgeAlert", "labels": {"kpr_action": "rollback", "kpr_scope": "canary"},
            "expr": 'max by (namespace) (kpr_verdict{comparison="canary-vs-control"} == 1)',
            "annotations": {"summary": "{{ $labels.namespace }} worse, effect "
                                       "{{ with query `x` }}{{ . }}{{ else }}no data{{ end }}"}}
    monkeypatch.setattr(demo_alert, "render_rules", lambda profile: {"groups": [{"rules": [rule]}]})
    alert = demo_alert.alert(demo_alert.judge_rule(CANARY_VS_CONTROL), {"namespace": "ns"}, math.nan)
    assert alert["labels"]["alertname"] == "RenamedJudgeAlert"
    assert alert["annotations"]["summary"] == "ns worse, effect no data"
    monkeypatch.setattr(demo_alert, "render_rules", lambda profile: {"groups": []})
    with pytest.raises(demo_alert.StandInError):
        demo_alert.judge_rule(CANARY_VS_CONTROL)


def offline_summary(**exporter: object) -> Summary:
    """The summary of a demo of the default story, over a stand-in exporter."""
    simulator = SimpleNamespace(scenario=get_scenario(demo_settings_for([]).simulator.scenario))
    return Summary(SimpleNamespace(**exporter), simulator, interval=1.0, elapsed=lambda: 7.0)


def verdict(service: str, outcome: str) -> Verdict:
    return Verdict("shop", service, "connect_duration", CANARY_VS_CONTROL, outcome, False, "r",
                   math.nan, 0.0)


def test_inconclusive_verdicts_come_with_a_legend():
    judge = SimpleNamespace(verdicts=[verdict("cart", INCONCLUSIVE), verdict("web", NOT_WORSE)],
                            problem="")
    lines = offline_summary(judge=judge, tracker=SimpleNamespace(phase="before")).verdict_lines()
    assert any("connect_duration=?" in line for line in lines)
    assert lines[-1].strip() == INCONCLUSIVE_LEGEND
    assert "inconclusive: too little data" in INCONCLUSIVE_LEGEND
    assert "no node on eBPF yet; the first switches at scenario t=300s" in lines[0]
    judge.verdicts = [verdict("cart", WORSE)]
    lines = offline_summary(judge=judge, tracker=SimpleNamespace(phase="canary")).verdict_lines()
    assert not any(INCONCLUSIVE_LEGEND in line for line in lines)
    assert "no node on eBPF yet" not in lines[0]


def test_the_rollback_plan_is_printed_when_it_changes():
    class Plan:
        def __init__(self, text: str) -> None:
            self.text = text

        def render(self) -> str:
            return self.text

    runner = SimpleNamespace(last_result=SimpleNamespace(status="planned", message="dry-run"),
                             last_plan=Plan("Rollback plan p1\n  remove label from node-b"))
    summary = offline_summary(rollback=SimpleNamespace(runner=runner))
    first = summary.rollback_lines()
    assert any("remove label from node-b" in line for line in first)
    again = summary.rollback_lines()
    assert not any("remove label" in line for line in again)
    assert any("plan unchanged since" in line for line in again)
    runner.last_plan = Plan("Rollback plan p2\n  remove label from node-c")
    assert any("remove label from node-c" in line for line in summary.rollback_lines())


def test_webhook_outcomes_keep_their_own_words():
    assert webhook_answer('{"outcome": "cooldown", "reason": "last rollback 5s ago"}') == (
        "cooldown (a rollback ran recently; waiting out the cooldown): last rollback 5s ago")
    assert webhook_answer('{"outcome": "duplicate", "reason": "x"}').startswith(
        "duplicate (already acted on)")
    assert webhook_answer('{"outcome": "accepted", "reason": "plan"}') == "accepted: plan"
    assert webhook_answer('{"outcome": "cooldown", "reason": "cooldown: 5s ago"}') == "cooldown: 5s ago"
    assert webhook_answer("not json") == "not json"


# --- active verification: the emulated datapath's fault scenario -----------------------


def test_the_demo_takes_an_emulated_datapath_scenario_with_its_simulator_story():
    from exporter.verify.emulator.scenario import NAMED

    assert set(demo_defaults.EMULATED_STORIES) <= set(NAMED)
    args = cli.build_parser().parse_args(["demo", "--scenario", "canary-datapath-faults"])
    assert args.emulated == "canary-datapath-faults"
    settings = cli.load_settings(args, {})
    assert settings.simulator.scenario == "canary-improvement"
    # Its story switches the canary within the first minute at the demo's speed.
    switches = get_scenario(settings.simulator.scenario).switches
    assert [s.node for s in switches] == ["node-b"]
    assert switches[0].at_s / demo_defaults.DEMO_SPEED <= 60
    plain = cli.build_parser().parse_args(["demo", "--scenario", "baseline"])
    assert plain.emulated is None and cli.load_settings(plain, {}).simulator.scenario == "baseline"


def test_the_probe_stand_in_alert_is_the_shipped_rule():
    shipped = [r for g in render_rules(demo_alert.PROFILE)["groups"] for r in g["rules"]
               if r.get("alert") == "KprProbeCheckFailing"]
    assert len(shipped) == 1
    rule = demo_alert.probe_rule()
    assert rule == shipped[0]
    alert = demo_alert.alert(rule, {"check": "session-affinity", "node": "node-b"}, 1.0)
    assert alert["labels"]["kpr_action"] == "rollback" and alert["labels"]["node"] == "node-b"
    description = alert["annotations"]["description"]
    assert "session-affinity" in description and "node-b" in description
    assert "100%" in description and "{{" not in description


def test_the_fault_scenario_fails_two_checks_on_the_canary_only_and_rolls_it_back(
        capsys, monkeypatch):
    # 70 s of the demo's clock, ten times faster than the wall's; node-b switches to eBPF
    # at scenario t=300s, i.e. 30 s in at the demo's speed x10. The probes are what is
    # checked here: the story's application traffic runs at a tenth, so that its flows do
    # not keep the event loop from the probes.
    with_traffic(monkeypatch, demo_defaults.EMULATED_STORIES["canary-datapath-faults"], 0.1)
    code = run_demo(["--scenario", "canary-datapath-faults", "--duration", "70",
                     "--interval", "5", "--web.listen-address", "127.0.0.1:0"], FastTime(10))
    out = capsys.readouterr().out
    assert code == 0
    assert "emulated       datapath 'canary-datapath-faults' on 127." in out
    passing = out.find("verify      exit 0: every applicable check passes on every node")
    failing = out.find("verify      exit 1: nodeport-loopback on node-b, "
                       "session-affinity on node-b FAIL")
    assert 0 <= passing < failing, out
    # The matrix: the two checks fail on node-b (now eBPF) only, everything else passes.
    table = out[failing:]
    header = re.search(r"check\s+node-a \(kube-proxy\)\s+node-b \(ebpf\)\s+node-c \(kube-proxy\)",
                       table)
    assert header, table
    rows = {m.group(1): m.group(2).split() for m in
            re.finditer(r"^\s+([a-z-]+)\s+((?:(?:ok|FAIL|n/a|-)\s*){3})$", table, re.M)}
    assert len(rows) == 13, rows
    failed = {(check, node) for check, marks in rows.items()
              for node, mark in zip(("node-a", "node-b", "node-c"), marks) if mark == "FAIL"}
    assert failed == {("nodeport-loopback", "node-b"), ("session-affinity", "node-b")}
    assert all(mark in ("ok", "n/a") for check, marks in rows.items() for node, mark in
               zip(("node-a", "node-b", "node-c"), marks) if (check, node) not in failed)
    # The shipped rule's alert, the webhook's answer and the dry-run plan for node-b alone.
    assert ">> alert KprProbeCheckFailing firing for nodeport-loopback on node-b, " \
           "session-affinity on node-b" in out
    assert "webhook answered 200 accepted: would roll back node node-b" in out
    assert "Rollback plan" in out and "affected nodes: node-b\n" in out
    assert f"remove label {MIGRATION_LABEL} from node node-b" in out
    assert "from node node-a" not in out and "from node node-c" not in out
    assert out.rstrip().endswith("demo stopped")


async def _demo_with_probes(**kw):
    from exporter.demo.session import Demo

    settings = demo_settings_for(["--scenario", "canary-datapath-faults",
                                  "--web.listen-address", "127.0.0.1:0"])
    demo = Demo(settings, out=io.StringIO(), emulated="canary-datapath-faults", **kw)
    await demo.start()
    return demo


@pytest.mark.realstack
def test_with_prometheus_the_demo_prometheus_scrapes_the_probes():
    from tests.realstack.harness import require_binary

    require_binary("prometheus")
    require_binary("prometheus-alertmanager")

    async def run():
        demo = await _demo_with_probes(with_prometheus=True)
        try:
            assert demo.stack is not None and demo.stack.prometheus is not None
            deadline = time.monotonic() + 60
            found: list = []
            while not found and time.monotonic() < deadline:
                found = await demo.stack.prometheus.query(
                    'kpr_probe_checks_total{job="kpr-probe"}')
                if not found:
                    await asyncio.sleep(0.5)  # polling Prometheus' own scrape schedule
            return {s["metric"]["node"] for s in found}, demo.verification.urls
        finally:
            await demo.stop()

    nodes, urls = asyncio.run(run())
    assert len(urls) == 3
    assert nodes == {"node-a", "node-b", "node-c"}


# --- an emulated-datapath scenario from a YAML file (--scenario-file) ---------------------


def _scenario_file(tmp_path, text: str):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return str(path)


def test_a_scenario_file_runs_in_the_demo_and_its_fault_shows_on_its_node(tmp_path, capsys,
                                                                           monkeypatch):
    with_traffic(monkeypatch, demo_defaults.FILE_STORY, 0.1)  # the probes are checked here
    # edge-1 is no simulated node: it stays on eBPF, where its hostPort is not programmed.
    path = _scenario_file(tmp_path, f"""\
name: edge-hostport
network: {next_network()}
nodes:
  - name: node-a
  - name: node-c
  - name: edge-1
    datapath: ebpf
    faults:
      ebpf: [hostport-missing]
""")
    # 20 s of the demo's clock: the first round's matrix shows in a summary even when the
    # machine is busy (the probes also run their load and chase after each round).
    code = run_demo(["--scenario-file", path, "--duration", "20", "--interval", "5",
                     "--web.listen-address", "127.0.0.1:0"], FastTime(10))
    out = capsys.readouterr().out
    assert code == 0
    # Next to the file's scenario the simulator plays the default story for one.
    assert f"scenario {demo_defaults.FILE_STORY!r}" in out
    assert "emulated       datapath 'edge-hostport' on 127." in out
    assert "edge-1 (ebpf)" in out
    failing = out.find("verify      exit 1: hostport on edge-1 FAIL")
    assert failing >= 0, out
    table = out[failing:]
    rows = {m.group(1): m.group(2).split() for m in
            re.finditer(r"^\s+([a-z-]+)\s+((?:(?:ok|FAIL|n/a|-)\s*){3})$", table, re.M)}
    assert len(rows) == 13, rows
    header = re.search(r"check\s+edge-1 \(ebpf\)\s+node-a \(kube-proxy\)\s+"
                       r"node-c \(kube-proxy\)", table)
    assert header, table
    failed = {(check, node) for check, marks in rows.items()
              for node, mark in zip(("edge-1", "node-a", "node-c"), marks) if mark == "FAIL"}
    assert failed == {("hostport", "edge-1")}
    assert ">> alert KprProbeCheckFailing firing for hostport on edge-1" in out


def test_a_broken_scenario_file_is_refused_naming_the_file_and_every_problem(tmp_path, capsys):
    path = _scenario_file(tmp_path, """\
colour: red
nodes:
  - name: node-a
    datapath: bpf
    faults:
      ebpf: [hostport-gone]
""")
    assert cli.main(["demo", "--scenario-file", path, "--duration", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "nothing started"
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("kpr-exporter demo: invalid emulated-datapath scenario: ")
    for problem in ("unknown key 'colour'", "nodes[0]: datapath 'bpf' is not one of",
                    "nodes[0]: unknown fault 'hostport-gone'"):
        assert f"{path}: {problem}" in lines[0]
    missing = str(tmp_path / "missing.yaml")
    assert cli.main(["demo", "--scenario-file", missing, "--duration", "1"]) == 2
    assert f"cannot read {missing}" in capsys.readouterr().err


def test_a_scenario_file_and_an_emulated_scenario_name_do_not_mix(tmp_path, capsys):
    path = _scenario_file(tmp_path, "nodes: [{name: node-a}]\n")
    assert cli.main(["demo", "--scenario", "canary-datapath-faults", "--scenario-file", path,
                     "--duration", "1"]) == 2
    assert "give one" in capsys.readouterr().err


def test_a_scenario_file_plays_its_default_story_unless_one_is_named():
    args = cli.build_parser().parse_args(["demo", "--scenario-file", "s.yaml"])
    settings = demo_defaults.apply(cli.load_settings(args, {}), set(), scenario_file=True)
    assert settings.simulator.scenario == demo_defaults.FILE_STORY == "canary-improvement"
    named = demo_settings_for(["--scenario-file", "s.yaml", "--scenario", "baseline"])
    assert named.simulator.scenario == "baseline"


def test_the_documented_scenario_file_example_loads():
    from pathlib import Path

    from exporter.verify.emulator.scenario import load_yaml

    doc = (Path(__file__).parent.parent / "docs" / "verification.md").read_text()
    section = doc[doc.index("### Your own scenario: `--scenario-file`"):]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example, "the section shows an example"
    scenario = load_yaml(example.group(1))
    assert scenario.node_names == ("node-a", "node-b", "edge-1")
    assert scenario.nodes[2].faults_on("ebpf") == ("hostport-missing",)


# --- the probes' measurements: the story's numbers on the emulated datapath ----------------


@pytest.mark.parametrize("story", ["canary-improvement", "canary-regression"])
def test_the_emulated_datapath_takes_its_numbers_from_the_story(story):
    from exporter.demo.emulated import for_story
    from exporter.model import EBPF, KUBE_PROXY
    from exporter.verify.emulator.scenario import named

    sim = get_scenario(story)
    got = for_story(sim)
    assert got.node_names == sim.cluster.node_names
    assert all(not n.faults for n in got.nodes)  # the story's own nodes run healthy
    for dp, profile in ((KUBE_PROXY, sim.kube_proxy), (EBPF, sim.ebpf)):
        assert got.programming(dp) == profile.programming.median_s
        assert got.throughput(dp) == profile.stream_bytes_per_s
        assert got.connect_seconds[dp] == (profile.connect.median_s, profile.connect.p99_s)
    # A named scenario keeps its nodes and faults; what a scenario states wins over the story.
    faults = for_story(sim, named("canary-datapath-faults"))
    assert faults.nodes == named("canary-datapath-faults").nodes
    assert faults.throughput(EBPF) == sim.ebpf.stream_bytes_per_s
    stated = for_story(sim, replace(named("healthy"), throughput_bytes_per_second={EBPF: 4096.0}))
    assert stated.throughput(EBPF) == 4096.0
    assert stated.throughput(KUBE_PROXY) == sim.kube_proxy.stream_bytes_per_s


def test_the_probe_load_runs_at_the_default_rates_within_the_demos_round():
    from exporter.demo import measures
    from exporter.demo.verification import PROBE_INTERVAL
    from exporter.verify.settings import ProbeSettings

    plan = measures.load_plan(PROBE_INTERVAL)
    defaults = ProbeSettings()
    assert (plan.connections_per_second, plan.bytes_per_second) == (
        defaults.load_connections_per_second, defaults.load_bytes_per_second)
    assert 0 < 2 * plan.seconds <= PROBE_INTERVAL / 2  # the option's own rule ...
    demo = replace(defaults, load_enabled=True, interval_seconds=PROBE_INTERVAL,
                   load_seconds=plan.seconds)
    assert demo.load_problems() == []  # ... as its validation applies it


async def test_the_rollout_adds_endpoints_for_the_probes_and_takes_out_the_reached_ones():
    from exporter.demo.measures import EndpointRollout
    from exporter.verify.emulator.cluster import EmulatedCluster
    from exporter.verify.emulator.scenario import load
    from exporter.verify.measure_metrics import MeasureMetrics
    from exporter.verify.programming_watch import ProgrammingWatch

    cluster = EmulatedCluster(load({"network": next_network(),
                                    "nodes": [{"name": "a"}, {"name": "b"}],
                                    "programming_seconds": {"kube-proxy": 0.0}}))
    await cluster.start()
    try:
        metrics = MeasureMetrics()
        watches = [ProgrammingWatch(node, cluster.dialer(node, "pod"),
                                    lambda: cluster.targets().cluster_ip,
                                    lambda node=node: cluster.datapath(node), metrics)
                   for node in ("a", "b")]
        rollout = EndpointRollout(cluster, watches, asyncio.sleep)
        await rollout.step()
        first = cluster.added_endpoints()
        assert len(first) == 1 and rollout.chased() == {first[0].pod}
        await rollout.step()  # still chased: kept, and one more added on the next node
        assert [b.node for b in cluster.added_endpoints()] == ["a", "b"]
        for watch in watches:
            await asyncio.wait_for(watch.chase(), 10)  # polls until both answered
        assert rollout.chased() == set()
        await rollout.step()  # both reached: taken out, the Service keeps its size
        assert len(cluster.added_endpoints()) == 1 and rollout.removed == 2
        # One programming sample per endpoint and probe (the rows: bucket counts, then sum).
        assert sum(sum(row[:-1]) for row in metrics.programming.rows.values()) == 4
    finally:
        await cluster.stop()
