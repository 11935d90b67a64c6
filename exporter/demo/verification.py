"""The demo's active verification: an emulated datapath on loopback and one probe per node.

``kpr-exporter demo --scenario canary-datapath-faults`` (or any emulated-datapath scenario
of ``exporter.verify.emulator.scenario.NAMED``, or ``--scenario-file`` with one in YAML)
runs that scenario's nodes as an
``EmulatedCluster`` next to the simulator, and a probe loop per node (in process, each
binding its node's loopback address) with its own ``/metrics`` listener on 127.0.0.1.
The simulator is the cluster's truth: each emulated node starts on, and follows, the
datapath the simulated agents report, so the scenario's eBPF faults appear when the
canary switches. The summary shows the verify matrix (checks x nodes) when it changes.
Without an emulated scenario the story's own nodes run a healthy one. Either way the
emulated datapath costs what the story's profiles say (``exporter.demo.emulated``:
programming delay, throughput per connection, handshake cost). With ``measure`` (the demo
sets it when Prometheus scrapes the probes) each probe also runs the load option and the
programming chase (``exporter.demo.measures``), so the report's claims table has the
probes' throughput and programming latency; without Prometheus nothing would read them.

Without a real Prometheus the demo stands in for the shipped ``KprProbeCheckFailing`` rule
on the probes' last round (``failing``): a check failing on more than half of an eBPF
node's results while some kube-proxy node passes it. With one, Prometheus scrapes the
probes' listeners and evaluates the rule itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.demo import measures
from exporter.demo.emulated import for_story
from exporter.model import EBPF, KUBE_PROXY
from exporter.rulegen.probe_rules import FAILING_SHARE
from exporter.tasks import cancel_until_done
from exporter.verify import matrix as mx
from exporter.verify import results as r
from exporter.verify.checks import Limits
from exporter.verify.emulator.cluster import EmulatedCluster
from exporter.verify.emulator.proxy import EmulatorError
from exporter.verify.emulator.scenario import Scenario, named
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.verify.programming_watch import ProgrammingWatch
from exporter.verify.service import ProbeLoop
from exporter.web import Server, Surface, build_app

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[object]]

#: Seconds (of the demo's clock) between two rounds of one probe, and other nodes per round.
PROBE_INTERVAL = 5.0
PROBE_K = 3
#: The long-lived connection's pings in the demo: three, a second apart on the demo's clock.
PINGS, PING_INTERVAL = 3, 1.0
#: How often the emulated nodes catch up with the simulated agents' datapaths.
FOLLOW_INTERVAL = 0.5
#: The chase logs each new endpoint and each answer at INFO: twice a second per probe in
#: the demo, which would bury its summary. Its warnings (missed endpoints) still show.
_CHASE_LOG = logging.getLogger("exporter.verify.programming_watch")


def _ticks(sleep: Sleep, count: int, interval: float) -> Callable[[], AsyncIterator[int]]:
    async def ticks() -> AsyncIterator[int]:
        for i in range(count):
            if i:
                await sleep(interval)
            yield i
    return ticks


class Verification:
    """The emulated datapath of ``scenario`` (a named one, one loaded from a file, or None:
    the story's nodes, healthy) and its probes, following ``simulator``."""

    def __init__(self, scenario: Scenario | str | None, simulator: Any, *,
                 clock: Callable[[], float], sleep: Sleep,
                 interval: float = PROBE_INTERVAL, seed: int = 0, measure: bool = True) -> None:
        self.simulator = simulator
        self.measure = measure  # the load option and the programming chase
        base = named(scenario) if isinstance(scenario, str) else scenario
        self.scenario = self._following(for_story(simulator.scenario, base))
        self.clock = clock
        self.sleep = sleep
        self.interval = interval
        self.cluster = EmulatedCluster(self.scenario, clock=clock, sleep=sleep,
                                       rng=random.Random(seed))
        self.watches: list[ProgrammingWatch] = []
        self.rollout = measures.EndpointRollout(self.cluster, self.watches, sleep)
        self.loops: list[ProbeLoop] = []
        self.servers: list[Server] = []
        self._tasks: list[asyncio.Future[Any]] = []
        self._shown: str | None = None
        self._chase_level = logging.NOTSET

    def _sim_datapath(self, node: str) -> str | None:
        sim = self.simulator.scenario
        if node not in sim.cluster.node_names:
            return None
        return str(sim.datapath_at(node, self.simulator.scenario_time()))

    def _following(self, scenario: Scenario) -> Scenario:
        """``scenario`` with each node on the simulator's datapath now (where it has one)."""
        nodes = tuple(replace(n, datapath=self._sim_datapath(n.name) or n.datapath)
                      for n in scenario.nodes)
        return replace(scenario, nodes=nodes)

    def load_line(self) -> str:
        """What the probes measure besides their checks, in one line."""
        plan = measures.load_plan(self.interval)
        return (f"{plan.connections_per_second:g} connections/s and "
                f"{plan.bytes_per_second // 1024} KiB/s for {plan.seconds:g}s each after every "
                f"round; an echo endpoint added every {self.rollout.every:g}s and chased")

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    async def start(self) -> None:
        self._chase_level = _CHASE_LOG.level
        _CHASE_LOG.setLevel(max(logging.WARNING, _CHASE_LOG.getEffectiveLevel()))
        await self.cluster.start()
        limits = Limits(ticks=_ticks(self.sleep, PINGS, PING_INTERVAL))
        for node in self.cluster.nodes:
            registry = CollectorRegistry()
            loop = ProbeLoop(
                node=node, host=self.cluster.dialer(node, "host"),
                pod=self.cluster.dialer(node, "pod"), load=self.cluster.targets,
                metrics=ProbeMetrics(registry), status=ProbeStatus(node, registry),
                interval=self.interval, k=PROBE_K, limits=limits, clock=self.clock,
                sleep=self.sleep)
            self.loops.append(loop)
            if self.measure:
                self.watches.append(measures.attach(
                    loop, self.cluster, MeasureMetrics(registry), interval=self.interval,
                    clock=self.clock, sleep=self.sleep))
            server = Server(build_app(Surface(registry)), "127.0.0.1:0",
                            flag="--probe.listen-address")
            await server.start()
            self.servers.append(server)
        self._tasks = [asyncio.ensure_future(loop.run()) for loop in self.loops]
        self._tasks += [asyncio.ensure_future(watch.run()) for watch in self.watches]
        if self.measure:
            self._tasks.append(asyncio.ensure_future(self.rollout.run()))
        self._tasks.append(asyncio.ensure_future(self._follow()))

    async def stop(self) -> None:
        # a task that already died of an error must not stop the rest from being stopped
        for error in await cancel_until_done(self._tasks):
            log.warning("verification task had failed", extra={"kv": {"error": repr(error)}})
        for server in self.servers:
            await server.stop()
        await self.cluster.stop()
        _CHASE_LOG.setLevel(self._chase_level)

    async def follow_once(self) -> None:
        for node, datapath in self.cluster.datapaths().items():
            want = self._sim_datapath(node)
            if want is not None and want != datapath:
                await self.cluster.switch(node, want)

    async def _follow(self) -> None:
        while True:
            try:
                await self.follow_once()
            except (OSError, EmulatorError) as exc:  # could not rebind: try again next time
                log.warning("emulated datapath switch failed", extra={"kv": {"error": str(exc)}})
            await self.sleep(FOLLOW_INTERVAL)

    # --- what the probes found ------------------------------------------------------

    def results(self) -> list[r.CheckResult]:
        return [res for loop in self.loops for res in loop.probe.last]

    def matrix(self) -> mx.Matrix | None:
        """The matrix of every probe's last round; None until each probe completed one."""
        if not self.loops or any(loop.probe.rounds == 0 for loop in self.loops):
            return None
        return mx.build(self.results(), self.cluster.datapaths(),
                        skip=mx.not_applicable(self.cluster.targets()))

    def lines(self) -> list[str]:
        """The matrix when it changed since last shown, else one line saying how it stands."""
        matrix = self.matrix()
        if matrix is None:
            return ["  verify      (waiting for every probe's first round)"]
        table = mx.render_table(matrix)
        # What changes the matrix: the cells' states, not their connect times.
        state = repr(sorted((k, c.status, c.reason, c.failures) for k, c in matrix.cells.items()))
        fails = sorted(k for k, c in matrix.cells.items() if c.status == r.FAIL)
        head = (f"  verify      exit {mx.exit_code(matrix)}: "
                + (", ".join(f"{check} on {node}" for check, node in fails) + " FAIL"
                   if fails else "every applicable check passes on every node"))
        if state == self._shown:
            return [head + "  (matrix unchanged)"]
        self._shown = state
        return [head, *("              " + line if line else "" for line in
                        table.rstrip("\n").splitlines())]

    def failing(self) -> list[tuple[str, str, float]]:
        """(check, node, failed share) the shipped ``KprProbeCheckFailing`` rule would fire
        for on the last round: more than half the check's pass/fail results on an eBPF node
        failed while some kube-proxy node passes it."""
        counts: dict[tuple[str, str], list[int]] = {}
        datapaths: dict[str, str] = {}
        for res in self.results():
            if res.result == r.ERROR:
                continue
            node, datapath = res.served_by
            datapaths[node] = datapath
            row = counts.setdefault((res.check, node), [0, 0])
            row[res.result == r.FAIL] += 1
        share = {key: fail / (ok + fail) for key, (ok, fail) in counts.items()}
        passing = {check for (check, node), s in share.items()
                   if datapaths[node] == KUBE_PROXY and counts[(check, node)][0] > 0
                   and s <= FAILING_SHARE}
        return sorted((check, node, s) for (check, node), s in share.items()
                      if datapaths[node] == EBPF and s > FAILING_SHARE and check in passing)
