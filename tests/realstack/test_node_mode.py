"""Node mode end to end on real components gives what relay mode gives on the same scenario.

One simulator process (``kpr-exporter simulate --node-grpc.listen-address``) plays
``canary-regression`` and serves it twice: as Hubble Relay and as one agent Hubble server per
node. Side by side on the same timeline:

- relay mode: one exporter (``web.role all``) reads Relay and every agent and judges its
  own snapshots; its Prometheus evaluates the shipped rules (windows squeezed into seconds)
  and its Alertmanager delivers rollback alerts to its webhook;
- node mode: three ``kpr-exporter run --web.role collector`` processes, one per node, each
  reading that node's Hubble server and agent; a Prometheus scrapes the three and evaluates
  the same rules; one central exporter (``web.role central``) judges the collectors' series
  in that Prometheus and receives that Alertmanager's rollback alerts. The simulator has no
  Kubernetes API for the central to watch: its datapath view is the static map of the nodes
  after the canary's switch.

Both give the same canary-vs-control verdicts (the same services worse, non-empty, the
regressed latency among them) and exactly one dry-run rollback of the canary node, although
Alertmanager keeps re-sending.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import app as app_module
from exporter import config
from exporter.demo.processes import ManagedProcess
from exporter.judge.verdict import CANARY_VS_CONTROL, CONNECT_DURATION, WORSE
from exporter.rulegen import render_rules
from exporter.simulator.cluster import SimulatedPlanner
from exporter.simulator.scenarios import get_scenario
from tests.realstack.harness import (
    ALERTMANAGER, PROMETHEUS, Alertmanager, AlertmanagerOptions, HarnessError, Prometheus,
    PrometheusOptions, ScrapeJob, WebhookReceiver, free_port, require_binary, wait_until,
)
from tests.realstack.test_scenarios import SPEED, TOKEN, _seconds_profile

SCENARIO = "canary-regression"
CANARY = "node-b"
FAST = {"--judge.short-window-seconds": "10", "--judge.long-window-seconds": "30",
        "--judge.evaluation-interval-seconds": "2", "--baseline.window-seconds": "10"}


def _settings(workdir: Path, name: str, flags: dict[str, str]) -> Any:
    return config.load(env={}, flags={"--web.listen-address": "127.0.0.1:0",
                                      "--kube.enabled": "false",
                                      "--webhook.token-file": str(workdir / "token"),
                                      "--baseline.file": str(workdir / f"{name}-baseline.json"),
                                      **FAST, **flags})


def _collector_argv(node: str, hubble_port: int, agents_port: int, listen_port: int) -> list[str]:
    base = f"http://127.0.0.1:{agents_port}/nodes/{node}"
    flags = {"--web.role": "collector", "--web.listen-address": f"127.0.0.1:{listen_port}",
             "--kube.enabled": "false", "--hubble.address": f"127.0.0.1:{hubble_port}",
             "--agents.static": f"{node}={base}/metrics", "--agents.interval-seconds": "1",
             "--kube-proxy.static": f"{node}={base}/kube-proxy/metrics",
             "--kube-proxy.interval-seconds": "1"}
    return [sys.executable, "-m", "exporter", "run",
            *(part for flag, value in flags.items() for part in (flag, value))]


class Side:
    """One topology's deciding exporter (``all`` in relay mode, ``central`` in node mode)."""

    def __init__(self, name: str, exporter: app_module.Exporter) -> None:
        self.name = name
        self.exporter = exporter

    def count(self, metric: str, **labels: str) -> float:
        return self.exporter.registry.get_sample_value(metric, labels) or 0.0

    def table(self) -> list[tuple[str, str, str]]:
        """The canary-vs-control latency verdicts (service, outcome, reason), for failures."""
        return [(v.service, v.outcome, v.reason[:160]) for v in self.exporter.judge.verdicts
                if v.comparison == CANARY_VS_CONTROL and v.sli == CONNECT_DURATION]

    def worse(self) -> frozenset[str]:
        """Services whose handshake latency is worse on eBPF than on kube-proxy now."""
        return frozenset(v.service for v in self.exporter.judge.verdicts
                         if v.comparison == CANARY_VS_CONTROL and v.sli == CONNECT_DURATION
                         and v.outcome == WORSE)


async def _observe(stack: AsyncExitStack, webhook: str, workdir: Path, rules: Path,
                   targets: list[str]) -> Prometheus:
    """An Alertmanager delivering rollback alerts to ``webhook``, and a Prometheus scraping
    ``targets`` with the rules, sending to it."""
    am = Alertmanager(workdir / "am", AlertmanagerOptions(
        receiver=WebhookReceiver(f"{webhook}/webhook/alertmanager", token=TOKEN),
        matchers=('kpr_action="rollback"',), group_interval="2s"))
    await stack.enter_async_context(am)
    prometheus = Prometheus(workdir / "prom", PrometheusOptions(
        rule_files=[rules], jobs=[ScrapeJob("kpr-exporter", tuple(targets))],
        alertmanagers=[am.address]))
    return await stack.enter_async_context(prometheus)


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports that were free a moment ago."""
    for _ in range(50):
        first = free_port()
        held = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise HarnessError(f"no {count} consecutive free ports")


class SimulatorProcess:
    """``kpr-exporter simulate`` in a process of its own, Relay and one Hubble per node."""

    def __init__(self, workdir: Path) -> None:
        self.scenario = get_scenario(SCENARIO)
        names = self.scenario.cluster.node_names
        self.grpc, self.agents, first = free_port(), free_port(), _free_ports(len(names))
        self.nodes = {node: first + i for i, node in enumerate(names)}
        self.process = ManagedProcess("simulator", [
            sys.executable, "-m", "exporter", "simulate", "--scenario", SCENARIO,
            "--speed", str(SPEED), "--grpc.listen-address", f"127.0.0.1:{self.grpc}",
            "--agents.listen-address", f"127.0.0.1:{self.agents}",
            "--node-grpc.listen-address", f"127.0.0.1:{first}"], workdir / "simulator.log")
        self.started = 0.0

    async def start(self) -> None:
        self.started = time.time()
        self.process.start()

        async def serving() -> bool | None:
            assert self.process.exited() is None, self.process.log_tail()
            return "Hubble of" in self.process.log_tail() or None

        await wait_until(serving, timeout=30, what="the simulator to listen")

    def scenario_time(self) -> float:
        """Scenario seconds now (the process started within a moment of ``started``)."""
        return max(0.0, (time.time() - self.started) * SPEED)


async def _exporter(stack: AsyncExitStack, settings: Any,
                    sim: SimulatorProcess) -> app_module.Exporter:
    planner = SimulatedPlanner(sim.scenario, sim.scenario_time, settings.rollback)
    exporter = app_module.Exporter(settings, planner=planner)
    await exporter.start()
    stack.push_async_callback(exporter.stop)
    return exporter


async def _collectors(stack: AsyncExitStack, sim: SimulatorProcess,
                      workdir: Path) -> list[tuple[ManagedProcess, str]]:
    """``kpr-exporter run --web.role collector`` for each node: its Hubble, its agent."""
    started = []
    for node, hubble_port in sim.nodes.items():
        listen = free_port()
        proc = ManagedProcess(f"collector-{node}", _collector_argv(
            node, hubble_port, sim.agents, listen), workdir / f"collector-{node}.log")
        proc.start()
        stack.push_async_callback(proc.stop)
        started.append((proc, f"127.0.0.1:{listen}"))
    return started


async def _same_worse(relay: Side, central: Side) -> frozenset[str]:
    """Until both judges find the same services' handshakes worse on the canary (non-empty)."""

    async def same() -> frozenset[str] | None:
        got = relay.worse()
        return got if got and got == central.worse() else None

    try:
        return await wait_until(same, timeout=90, interval=0.5,
                                what="both judges to find the same services worse")
    except HarnessError as err:
        raise AssertionError(f"{err}\nrelay: {relay.table()}\nnode: {central.table()}") from err


async def _one_rollback_despite_resends(side: Side) -> list[str]:
    """The side plans one dry-run rollback of the canary and keeps it at one while
    Alertmanager re-sends; returns the plan's action types."""

    async def planned() -> bool | None:
        return side.count("kpr_rollbacks_total", result="planned", mode="dry-run") >= 1 or None

    async def resent() -> bool | None:
        again = sum(side.count("kpr_webhook_requests_total", outcome=o)
                    for o in ("duplicate", "cooldown"))
        return again >= 2 or None

    await wait_until(planned, timeout=90, what=f"the {side.name} side to plan a rollback")
    await wait_until(resent, timeout=60, what=f"Alertmanager to re-send ({side.name})")
    assert side.count("kpr_rollbacks_total", result="planned", mode="dry-run") == 1
    assert side.count("kpr_webhook_requests_total", outcome="unauthorized") == 0
    plan = side.exporter.rollback.runner.last_plan
    assert plan is not None and plan.nodes == (CANARY,), side.name
    return [type(action).__name__ for _, _, action in plan.actions()]


@pytest.mark.realstack
async def test_node_mode_gives_the_verdicts_and_the_rollback_of_relay_mode(tmp_path: Path) -> None:
    require_binary(PROMETHEUS)
    require_binary(ALERTMANAGER)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(render_rules("seconds", spec=_seconds_profile()),
                                    sort_keys=False), encoding="utf-8")
    (tmp_path / "token").write_text(TOKEN, encoding="utf-8")

    async with AsyncExitStack() as stack:
        sim = SimulatorProcess(tmp_path)
        stack.push_async_callback(sim.process.stop)
        await sim.start()
        nodes = list(sim.nodes)
        assert len(nodes) == 3 and CANARY in nodes
        for node, port in sim.nodes.items():
            assert f"Hubble of {node:<8} 127.0.0.1:{port}" in sim.process.log_tail()
        collectors = await _collectors(stack, sim, tmp_path)

        # relay mode: one exporter reading Relay and every agent, as test_scenarios runs it
        relay_settings = app_module.for_simulator(
            _settings(tmp_path, "relay", {}), sim.grpc, sim.agents, nodes)
        relay_settings = dataclasses.replace(relay_settings, agents=dataclasses.replace(
            relay_settings.agents, interval_seconds=1.0))
        relay = Side("relay", await _exporter(stack, relay_settings, sim))
        await _observe(stack, relay.exporter.url, tmp_path / "relay", rules,
                       [relay.exporter.url.removeprefix("http://")])

        # node mode: Alertmanager and Prometheus first (the central judges from that one)
        central_address = f"127.0.0.1:{free_port()}"
        node_prom = await _observe(stack, f"http://{central_address}", tmp_path / "node", rules,
                                   [address for _, address in collectors] + [central_address])
        static = ",".join(f"{n}={'ebpf' if n == CANARY else 'kube-proxy'}" for n in nodes)
        central = Side("node", await _exporter(stack, _settings(tmp_path, "central", {
            "--web.role": "central", "--web.listen-address": central_address,
            "--judge.source": "prometheus", "--judge.prometheus.url": node_prom.url,
            "--datapath.static": static}), sim))
        await node_prom.wait_for_targets_up(timeout=60)

        worse = await _same_worse(relay, central)
        assert worse == relay.worse() == central.worse()
        problems = [v.reason for v in central.exporter.judge.verdicts
                    if v.reason.startswith(("Prometheus", "no exporter", "stale"))]
        assert not problems, problems

        plans = [await _one_rollback_despite_resends(side) for side in (relay, central)]
        assert plans[0] == plans[1] and plans[0]
        for proc, _ in collectors:
            assert proc.exited() is None, proc.log_tail()
