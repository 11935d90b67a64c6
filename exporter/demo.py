"""``kpr-exporter demo``: the simulator and the exporter on loopback, with a live summary.

The exporter learns each node's datapath from the simulated agents' KPR feature
gauge, exactly as it would from real Cilium >= 1.17 agents. Every ``interval``
seconds the terminal shows the phase, flows/s per node, handshake p50/p99 per
datapath over the last interval, and the Hubble reconnects.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TextIO

from exporter import app as app_module
from exporter.judge.histogram import histogram_quantile
from exporter.model import DATAPATHS, Event, Flow, SourceStatus
from exporter.roles import FlowSource
from exporter.simulator.runner import Simulator
from exporter.snapshot import SliSnapshot


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


class Demo:
    def __init__(self, settings: Any, *, out: TextIO, interval: float = 5.0,
                 with_prometheus: bool = False, report_dir: str | None = None) -> None:
        self.settings = settings
        self.out = out
        self.interval = max(0.5, interval)
        self.with_prometheus = with_prometheus
        self.report_dir = report_dir
        self.simulator = Simulator(settings.simulator)
        self.exporter: app_module.Exporter | None = None
        self.counter: CountingSource | None = None
        self._started = 0.0

    async def start(self) -> None:
        ports = await self.simulator.start()
        nodes = list(self.simulator.scenario.cluster.node_names)
        settings = app_module.for_simulator(self.settings, ports.grpc, ports.agents, nodes)
        # The exporter builds its own reader; the demo wraps it to count flows per node.
        self.exporter = app_module.Exporter(settings)
        self.counter = CountingSource(self.exporter.source)
        self.exporter.source = self.counter
        await self.exporter.start()
        self._started = time.monotonic()
        scenario = self.simulator.scenario
        self._print(
            f"kpr-exporter demo: scenario {scenario.name!r} (seed {self.settings.simulator.seed}, "
            f"speed x{self.settings.simulator.speed:g})\n"
            f"  {scenario.description}\n"
            f"  metrics        {self.exporter.url}/metrics\n"
            f"  readiness      {self.exporter.url}/readyz\n"
            f"  Hubble Relay   127.0.0.1:{ports.grpc} (simulated)\n"
            f"  agent metrics  http://127.0.0.1:{ports.agents}/nodes (simulated)\n"
            f"  rollback mode  {settings.rollback.mode}\n"
        )

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
        if self.exporter is not None:
            await self.exporter.stop()
        await self.simulator.stop()
        self._print("demo stopped")

    # --- the live summary ------------------------------------------------------------

    async def _summaries(self) -> None:
        assert self.exporter is not None and self.counter is not None
        previous = self.exporter.pipeline.snapshot(time.time())
        seen = Counter(self.counter.per_node)
        while True:
            await asyncio.sleep(self.interval)
            now_snap = self.exporter.pipeline.snapshot(time.time())
            now_seen = Counter(self.counter.per_node)
            self._print(self.summary(now_snap.minus(previous), now_seen - seen))
            previous, seen = now_snap, now_seen

    def summary(self, window: SliSnapshot, flows: Counter[str]) -> str:
        assert self.exporter is not None
        elapsed = time.monotonic() - self._started
        reader_status = self.exporter.source.status()
        reconnects = self.exporter.registry.get_sample_value("kpr_hubble_reconnects_total") or 0
        rates = "  ".join(f"{node} {count / self.interval:6.0f}/s" for node, count in sorted(flows.items()))
        lines = [
            f"[{elapsed:6.0f}s] scenario t={self.simulator.scenario_time():6.0f}s  "
            f"phase={self.exporter.tracker.phase:<11} hubble={'up' if reader_status.up else 'DOWN'}  "
            f"reconnects={reconnects:.0f}",
            f"  flows   {rates or '(none yet)'}",
            "  handshake   datapath      p50        p99    connections",
        ]
        for datapath in DATAPATHS:
            counts = _merge(window, datapath)
            total = sum(counts)
            if not total:
                continue
            p50 = histogram_quantile(0.5, window.connect_bounds, counts)
            p99 = histogram_quantile(0.99, window.connect_bounds, counts)
            lines.append(f"              {datapath:<10} {p50 * 1e3:7.2f}ms  {p99 * 1e3:7.2f}ms  {total:8d}")
        return "\n".join(lines) + "\n"

    def _print(self, text: str) -> None:
        self.out.write(text + ("" if text.endswith("\n") else "\n"))
        self.out.flush()


def _merge(window: SliSnapshot, datapath: str) -> list[int]:
    size = len(window.connect_bounds) + 1
    merged = [0] * size
    for key, sli in window.services.items():
        if key.datapath != datapath or len(sli.connect_counts) != size:
            continue
        for i, c in enumerate(sli.connect_counts):
            merged[i] += c
    return merged
