"""``kpr-exporter demo``: the simulator and the exporter on loopback, with a live summary.

The exporter learns each node's datapath from the simulated agents' KPR feature
gauge, exactly as it would from real Cilium >= 1.17 agents. Every ``interval``
seconds the terminal shows the phase, flows/s per node, handshake p50/p99 per
datapath over the last interval, the judge's verdicts and the rollback state.

By default (``exporter.demo.defaults``) everything listens on 127.0.0.1 and the story is
``canary-regression`` on scenario time (``--speed`` x wall time; 10 by default here) with
judge windows scaled to a demo: node-b switches after about 30 s, and the verdicts, the
alert and the dry-run rollback plan follow within the first minute. A rollback plan is
printed when it changes, not at every summary. With ``--with-prometheus`` (and both binaries
installed) a real Prometheus scrapes the exporter and evaluates the shipped rules of
the ``fast`` profile, and a real Alertmanager delivers the rollback alerts to the
exporter's webhook with the bearer token; the summary shows which rollback alerts
Prometheus has pending or firing. Without them, the demo stands in for the shipped alerting
rule on sustained ``kpr_verdict == 1`` (``exporter.demo.alert`` builds its alert from the rule
source): it posts the Alertmanager payload that rule would produce to the exporter's own
webhook, with the bearer token. Either way the
rollback runs in dry-run against the simulated cluster's view.

``--report DIR`` writes the migration report from the demo's Prometheus at the end. With
``--with-prometheus`` every story also runs the emulated datapath and its probes (below),
with the probes' load and programming chase, so the report's claims table has them.

``--scenario canary-datapath-faults`` (an emulated-datapath scenario), or ``--scenario-file``
with one in YAML (``docs/verification.md``), adds active verification
(``exporter.demo.verification``): the emulated loopback datapath and one probe per node next
to the simulator, the verify matrix in the summary, and the probes'
``KprProbeCheckFailing`` alert (the real rule with ``--with-prometheus``, which then scrapes
the probes too; else its stand-in) rolling the failing node back in dry-run.

``--scenario guided-migration`` (and ``guided-migration-regression``) tells another story:
the migration controller on a simulated cluster (``exporter.demo.migration``);
``demo_class`` picks ``MigrationDemo`` for those.

The demo runs on an injected ``clock`` and ``sleep``, handed on to the simulator and the
exporter, so a test can run the whole story on faster time.
"""


from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from exporter import app as app_module
from exporter.demo import alert as demo_alert
from exporter.demo.defaults import MIGRATION_STORIES
from exporter.demo.localstack import LocalStack
from exporter.demo.processes import LocalStackError, MissingBinaryError
from exporter.demo.summary import Summary
from exporter.demo.text import webhook_answer
from exporter.demo.verification import Verification
from exporter.judge.verdict import CANARY_VS_CONTROL, WORSE
from exporter.model import Event, Flow, SourceStatus
from exporter.roles import Clock, FlowSource, system_clock
from exporter.simulator.cluster import SimulatedPlanner
from exporter.simulator.runner import Simulator
from exporter.verify.emulator.scenario import Scenario

Sleep = Callable[[float], Awaitable[object]]


class CountingSource:
    """A flow source that counts flows per node on their way through (demo only)."""

    def __init__(self, inner: FlowSource) -> None:
        self.inner = inner
        self.per_node: Counter[str] = Counter()

    @property
    def ready(self) -> asyncio.Event | None:
        return getattr(self.inner, "ready", None)

    async def events(self) -> AsyncIterator[Event]:
        per_node = self.per_node
        async for event in self.inner.events():
            if type(event) is Flow:
                per_node[event.node_name] += 1
            yield event

    def status(self) -> SourceStatus:
        return self.inner.status()


def demo_class(emulated: str | Scenario | None) -> type[Demo]:
    """The demo that tells ``--scenario``'s story: the guided-migration stories run the
    migration controller (``exporter.demo.migration``), every other one the flow simulator."""
    if isinstance(emulated, str) and emulated in MIGRATION_STORIES:
        from exporter.demo.migration import MigrationDemo

        return MigrationDemo
    return Demo


class Demo:
    def __init__(self, settings: Any, *, out: TextIO, interval: float = 5.0,
                 with_prometheus: bool = False, report_dir: str | None = None,
                 emulated: str | Scenario | None = None,
                 clock: Clock = system_clock, sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        self.out = out
        self.interval = max(0.5, interval)
        self.clock = clock
        self.sleep = sleep
        self.want_prometheus = with_prometheus
        self.stack: LocalStack | None = None  # set once Prometheus and Alertmanager run
        self.report_dir = report_dir
        self.simulator = Simulator(settings.simulator, clock=clock, sleep=sleep)
        self.exporter: app_module.Exporter | None = None
        self.counter: CountingSource | None = None
        self.view: Summary | None = None  # the live summary, once the exporter runs
        # The probes' measurements (load, programming chase) reach the report through
        # Prometheus: with it, every story runs an emulated datapath (its own nodes, healthy,
        # unless one is named) and probes that measure; without it, nothing would read them.
        self.verification: Verification | None = (
            Verification(emulated, self.simulator, clock=clock, sleep=sleep,
                         seed=settings.simulator.seed, measure=with_prometheus)
            if emulated or with_prometheus else None)
        self._started = 0.0
        self._token_dir = tempfile.TemporaryDirectory(prefix="kpr-demo-")
        self._token = secrets.token_urlsafe(24)
        self._alerted: set[tuple[str, str, str]] = set()
        self._alerted_probe: set[tuple[str, str]] = set()
        self.alerts_sent = 0

    @property
    def with_prometheus(self) -> bool:
        return self.stack is not None

    async def start(self) -> None:
        ports = await self.simulator.start()
        nodes = list(self.simulator.scenario.cluster.node_names)
        settings = app_module.for_simulator(self.settings, ports.grpc, ports.agents, nodes)
        token_file = os.path.join(self._token_dir.name, "token")
        with open(token_file, "w") as fh:
            fh.write(self._token)
        settings = demo_settings(settings, token_file)
        planner = SimulatedPlanner(self.simulator.scenario, self.simulator.scenario_time,
                                   settings.rollback)
        # The exporter builds its own reader; the demo wraps it to count flows per node.
        self.exporter = app_module.Exporter(settings, planner=planner, clock=self.clock,
                                            sleep=self.sleep)
        assert self.exporter.source is not None, "the demo's exporter reads the simulator"
        self.counter = CountingSource(self.exporter.source)
        self.exporter.source = self.counter
        await self.exporter.start()
        if self.verification is not None:
            await self.verification.start()
        if self.want_prometheus:
            await self._start_stack()
        self._started = self.clock()
        self.view = Summary(self.exporter, self.simulator, interval=self.interval,
                            elapsed=lambda: self.elapsed)
        scenario = self.simulator.scenario
        if self.stack is not None:
            alerting = (f"  prometheus     {self.stack.prometheus_url} (rules: "
                        f"{self.stack.profile.name} profile)\n"
                        f"  alertmanager   {self.stack.alertmanager_url} "
                        "(rollback alerts -> the exporter's webhook)\n")
        else:
            alerting = (f"  alerting       stand-in: the demo posts the shipped rule's alert "
                        f"({demo_alert.judge_rule(CANARY_VS_CONTROL)['alert']}"
                        + (f", {demo_alert.probe_rule()['alert']}" if self.verification else "")
                        + ") itself\n")
        self._print(
            f"kpr-exporter demo: scenario {scenario.name!r} (seed {self.settings.simulator.seed}, "
            f"speed x{self.settings.simulator.speed:g})\n"
            f"  {scenario.description}\n"
            f"  metrics        {self.exporter.url}/metrics\n"
            f"  readiness      {self.exporter.url}/readyz\n"
            f"  Hubble Relay   127.0.0.1:{ports.grpc} (simulated)\n"
            f"  agent metrics  http://127.0.0.1:{ports.agents}/nodes (simulated)\n"
            f"{alerting}"
            f"  rollback mode  {settings.rollback.mode}\n"
            + self._verification_intro()
        )

    async def _start_stack(self) -> None:
        assert self.exporter is not None
        await self._start_stack_for(self.exporter.url.removeprefix("http://"),
                                    (self.exporter.webhook_server or self.exporter.server).url)

    async def _start_stack_for(self, exporter_address: str, webhook_base: str) -> None:
        """Prometheus + Alertmanager for this exporter; on failure say why and keep the stand-in."""
        try:
            stack = LocalStack(Path(self._token_dir.name) / "stack",
                               exporter_address=exporter_address,
                               webhook_url=webhook_base + "/webhook/alertmanager",
                               token=self._token, profile="fast",
                               probe_addresses=tuple(
                                   u.removeprefix("http://") for u in self.verification.urls)
                               if self.verification is not None else ())
            await stack.start()
        except MissingBinaryError as exc:
            self._print(f"note: --with-prometheus: {exc}; continuing with the stand-in alert")
            return
        except LocalStackError as exc:
            self._print(f"note: --with-prometheus: {exc}\ncontinuing with the stand-in alert")
            return
        self.stack = stack

    @property
    def elapsed(self) -> float:
        return self.clock() - self._started if self._started else 0.0

    async def write_report(self) -> int:
        """The migration report into ``report_dir`` from the demo's Prometheus (0 when not asked)."""
        if not self.report_dir:
            return 0
        if self.stack is None:
            self._print("note: --report needs a Prometheus that scraped the demo: run with "
                        "--with-prometheus (Debian packages prometheus, prometheus-alertmanager), "
                        "or point `kpr-exporter report --prometheus URL` at an external one")
            return 0
        from exporter.report.report_cmd import cmd_report

        self._print(f"writing the report for the last {self.elapsed:.0f}s into {self.report_dir}")
        judge = self.exporter.settings.judge if self.exporter is not None else None
        code = await cmd_report(self.stack.prometheus_url, f"-{self.elapsed:.0f}s", "now",
                                self.report_dir, out=self.out, judge=judge)
        if code == 0:
            self._print(f"report written to {os.path.abspath(self.report_dir)} "
                        "(report.html, summary.md)")
        return code

    async def run_for(self, duration: float,
                      until: Callable[[float], Awaitable[None]]) -> None:
        summary = asyncio.ensure_future(self._summaries())
        try:
            await until(duration)
        finally:
            summary.cancel()
            try:
                await summary
            except asyncio.CancelledError:
                pass

    async def stop(self) -> None:
        if self.stack is not None:
            await self.stack.stop()
        if self.verification is not None:
            await self.verification.stop()
        if self.exporter is not None:
            await self.exporter.stop()
        await self.simulator.stop()
        self._token_dir.cleanup()
        self._print("demo stopped")

    # --- the live summary ------------------------------------------------------------

    async def _summaries(self) -> None:
        assert self.exporter is not None and self.counter is not None and self.view is not None
        previous = self.exporter.pipeline.snapshot(self.clock())
        seen = Counter(self.counter.per_node)
        while True:
            await self.sleep(self.interval)
            now_snap = self.exporter.pipeline.snapshot(self.clock())
            now_seen = Counter(self.counter.per_node)
            alert_lines = []
            if self.stack is not None:
                alert_lines = (await self.view.prometheus_lines(self.stack)
                               + self.view.webhook_lines())
            self._print(self.view.render(now_snap.minus(previous), now_seen - seen, alert_lines))
            previous, seen = now_snap, now_seen
            if self.verification is not None:
                self._print("\n".join(self.verification.lines()))
            if self.stack is None:
                await self._alert_on_worse()
                await self._alert_on_probes()

    def _verification_intro(self) -> str:
        if self.verification is None:
            return ""
        v = self.verification
        nodes = ", ".join(f"{spec.name} ({spec.datapath})" for spec in v.scenario.nodes)
        return (f"  emulated       datapath {v.scenario.name!r} on "
                f"127.{v.scenario.network}.0.0/16: {nodes}; following the simulated agents' "
                "datapaths\n"
                f"  probes         {', '.join(u + '/metrics' for u in v.urls)}\n"
                + (f"  probe load     {v.load_line()}\n" if v.measure else ""))

    async def _alert_on_probes(self) -> None:
        """Stand in for the shipped KprProbeCheckFailing rule: its alert for every (check,
        eBPF node) failing in the probes' last round, posted once to the webhook."""
        if self.verification is None:
            return
        fresh = [f for f in self.verification.failing() if f[:2] not in self._alerted_probe]
        if not fresh:
            return
        rule = demo_alert.probe_rule()
        self._alerted_probe.update(f[:2] for f in fresh)
        alerts = [demo_alert.alert(rule, {"check": check, "node": node}, share,
                                   starts_at=self.clock()) for check, node, share in fresh]
        status, answer = await self._post(alerts)
        self._print(f"  >> alert {rule['alert']} firing for "
                    f"{', '.join(f'{check} on {node}' for check, node, _ in fresh)}\n"
                    f"  >> webhook answered {status} {webhook_answer(answer)}")

    async def _post(self, alerts: list[dict[str, Any]]) -> tuple[int, str]:
        assert self.exporter is not None
        async with aiohttp.ClientSession() as session:
            async with session.post(self.exporter.url + "/webhook/alertmanager",
                                    json=demo_alert.payload(alerts),
                                    headers={"Authorization": f"Bearer {self._token}"}) as r:
                return r.status, await r.text()

    async def _alert_on_worse(self) -> None:
        """Stand in for Prometheus + Alertmanager: the shipped judge rule's alert, posted to the
        exporter's webhook for every canary-vs-control verdict that turned worse."""
        assert self.exporter is not None
        worse = [v for v in self.exporter.judge.verdicts
                 if v.outcome == WORSE and v.comparison == CANARY_VS_CONTROL
                 and (v.namespace, v.service, v.sli) not in self._alerted]
        if not worse:
            return
        rule = demo_alert.judge_rule(CANARY_VS_CONTROL)
        alerts = []
        for v in worse:
            self._alerted.add((v.namespace, v.service, v.sli))
            series = {"namespace": v.namespace, "service": v.service, "sli": v.sli,
                      "comparison": v.comparison}
            alerts.append(demo_alert.alert(rule, series, v.effect_size, starts_at=self.clock()))
        status, answer = await self._post(alerts)
        self.alerts_sent += 1
        self._print(f"  >> alert {rule['alert']} firing for "
                    f"{', '.join(f'{v.namespace}/{v.service} {v.sli}' for v in worse)}\n"
                    f"  >> webhook answered {status} {webhook_answer(answer)}")

    def _print(self, text: str) -> None:
        self.out.write(text + ("" if text.endswith("\n") else "\n"))
        self.out.flush()


def demo_settings(settings: Any, token_file: str) -> Any:
    """Judge and baseline windows scaled to a demo of a few minutes; the webhook token."""
    from dataclasses import replace

    judge = replace(settings.judge, short_window_seconds=min(settings.judge.short_window_seconds, 20.0),
                    long_window_seconds=min(settings.judge.long_window_seconds, 60.0),
                    evaluation_interval_seconds=min(settings.judge.evaluation_interval_seconds, 5.0),
                    stale_after_seconds=min(settings.judge.stale_after_seconds, 30.0))
    baseline = replace(settings.baseline, window_seconds=min(settings.baseline.window_seconds, 20.0),
                       store="file", file=os.path.join(os.path.dirname(token_file), "baseline.json"))
    webhook = replace(settings.webhook, token_file=token_file)
    return replace(settings, judge=judge, baseline=baseline, webhook=webhook)
