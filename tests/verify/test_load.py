"""The probes' load option against a real echo on loopback, paced on a virtual clock: the
echo counts exactly the connections and bytes the plan allows and no two connections are
closer than the rate permits; failures are counted apart; the settings cap every rate;
and a probe round runs the load from kube-proxy and eBPF nodes alike."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config_constraints import problems as check
from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import results as r
from exporter.verify.echo import EchoServer, Identity
from exporter.verify.load import LoadPlan, LoadRunner
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.net import Dialer, Outcome
from exporter.verify.pacing import budget
from exporter.verify.serve import Dialers, build, serve
from exporter.verify.settings import LOAD_MAX_BYTES_PER_SECOND, ProbeSettings
from exporter.verify.targets import Endpoint
from tests.rollback.cluster import VirtualTime
from tests.verify.test_probe_loop import make_loop, write_targets

LOOP = "127.0.0.1"


class RecordingDialer(Dialer):
    """A loopback dialer noting the virtual time of every connection it opens."""

    def __init__(self, time: VirtualTime) -> None:
        super().__init__(LOOP)
        self.time = time
        self.opened: list[float] = []

    async def connect_only(self, endpoint: Endpoint, timeout: float) -> Outcome:
        self.opened.append(self.time.now)
        return await super().connect_only(endpoint, timeout)


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer(Identity("echo-0", "node-a"), LOOP, read_timeout=5.0)
    await server.start()
    yield server
    await server.stop()


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind((LOOP, 0))
        return int(s.getsockname()[1])


async def test_the_connection_rate_never_exceeds_its_plan(echo: EchoServer) -> None:
    time = VirtualTime()
    registry = CollectorRegistry()
    plan = LoadPlan(connections_per_second=20.0, bytes_per_second=0, seconds=3.0)
    runner = LoadRunner(plan, MeasureMetrics(registry), clock=time, sleep=time.sleep)
    dialer = RecordingDialer(time)
    made = await runner.connections("node-a", KUBE_PROXY, dialer, (LOOP, echo.port))
    assert made == budget(20.0, 3.0) == 60
    assert echo.connections == 60  # counted by the server, not by the client
    gaps = [b - a for a, b in zip(dialer.opened, dialer.opened[1:])]
    assert len(gaps) == 59 and min(gaps) >= 1 / 20 - 1e-6
    for first in dialer.opened:  # no window of one second holds more than the rate
        assert sum(1 for t in dialer.opened if first <= t < first + 1 - 1e-6) <= 20
    got = samples(registry)
    key = (("datapath", KUBE_PROXY), ("node", "node-a"))
    assert got[("kpr_probe_load_connections_total", (*key, ("result", r.PASS)))] == 60
    assert got[("kpr_probe_load_connect_duration_seconds_count", key)] == 60


async def test_the_stream_sends_its_rate_for_its_window_and_the_echo_sinks_it(
        echo: EchoServer) -> None:
    time = VirtualTime()
    registry = CollectorRegistry()
    plan = LoadPlan(connections_per_second=0.0, bytes_per_second=40_000, seconds=2.5)
    runner = LoadRunner(plan, MeasureMetrics(registry), clock=time, sleep=time.sleep)
    start = time.now
    outcome = await runner.stream("node-b", EBPF, Dialer(LOOP), (LOOP, echo.port))
    assert outcome.result == r.PASS
    assert outcome.received == echo.sunk_bytes == plan.total_bytes == 100_000
    assert time.now - start == pytest.approx(2.5)  # the stream lasts its window, not less
    got = samples(registry)
    key = (("datapath", EBPF), ("node", "node-b"))
    assert got[("kpr_probe_load_bytes_total", key)] == 100_000
    assert got[("kpr_probe_load_seconds_total", key)] == pytest.approx(2.5)
    assert got[("kpr_probe_load_streams_total", (*key, ("result", r.PASS)))] == 1
    assert echo.connections == 1  # the connection phase had a rate of 0: none


async def test_a_refusing_service_counts_failures_and_no_bytes() -> None:
    time = VirtualTime()
    registry = CollectorRegistry()
    plan = LoadPlan(connections_per_second=5.0, bytes_per_second=1000, seconds=1.0,
                    timeout=1.0)
    runner = LoadRunner(plan, MeasureMetrics(registry), clock=time, sleep=time.sleep)
    await runner.run("node-a", lambda: KUBE_PROXY, Dialer(LOOP), (LOOP, closed_port()))
    got = samples(registry)
    key = (("datapath", KUBE_PROXY), ("node", "node-a"))
    assert got[("kpr_probe_load_connections_total", (*key, ("result", r.FAIL)))] == 5
    assert got[("kpr_probe_load_streams_total", (*key, ("result", r.FAIL)))] == 1
    assert ("kpr_probe_load_bytes_total", key) not in got  # no throughput from a failure
    assert ("kpr_probe_load_connect_duration_seconds_count", key) not in got


def test_the_load_is_off_by_default_and_every_rate_is_capped() -> None:
    default = ProbeSettings()
    assert not default.load_enabled and check(default, "probe") == []
    too_much = ProbeSettings(load_enabled=True, load_connections_per_second=51.0,
                             load_bytes_per_second=LOAD_MAX_BYTES_PER_SECOND + 1,
                             load_seconds=21.0, programming_polls_per_second=60.0,
                             programming_timeout_seconds=301.0, interval_seconds=300.0)
    assert check(too_much, "probe") == [
        "probe.load_connections_per_second must be at least 0 and at most its cap 50, got 51.0",
        "probe.load_bytes_per_second must be at least 0 and at most its cap 4194304, "
        "got 4194305",
        "probe.load_seconds must be above 0 and at most its cap 20, got 21.0",
        "probe.programming_polls_per_second must be above 0 and at most its cap 50, got 60.0",
        "probe.programming_timeout_seconds must be above 0 and at most its cap 300, got 301.0",
    ]
    assert check(ProbeSettings(load_enabled=True, load_seconds=8.0), "probe") == [
        "probe.load_seconds 8: its two phases take 16s, more than half the 30s interval"]
    assert check(ProbeSettings(programming_service="echo"), "probe") == [
        "probe.programming_service 'echo' is not namespace/name"]


async def test_a_round_runs_the_load_from_kube_proxy_and_ebpf_nodes_alike(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate({"nodes": [{"name": "node-a"},
                                       {"name": "node-b", "datapath": EBPF}]})
    path = write_targets(cluster, tmp_path / "t.yaml")
    time = VirtualTime()
    registry = CollectorRegistry()
    metrics = MeasureMetrics(registry)
    plan = LoadPlan(connections_per_second=10.0, bytes_per_second=20_000, seconds=1.0)
    for node in ("node-a", "node-b"):
        runner = LoadRunner(plan, metrics, clock=time, sleep=time.sleep)
        loop = make_loop(cluster, node, path, checks=(r.CLUSTERIP_POD,),
                         load_runner=runner)
        assert await loop.round()
    got = samples(registry)
    for node, datapath in (("node-a", KUBE_PROXY), ("node-b", EBPF)):
        key = (("datapath", datapath), ("node", node))
        assert got[("kpr_probe_load_connections_total", (*key, ("result", r.PASS)))] == 10
        assert got[("kpr_probe_load_bytes_total", key)] == 20_000


async def test_the_probe_command_attaches_the_load_only_when_enabled(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate({"nodes": [{"name": "node-a"}]})
    path = write_targets(cluster, tmp_path / "t.yaml")
    dialers = Dialers(cluster.dialer("node-a", "host"), cluster.dialer("node-a", "pod"))
    base = {"node_name": "node-a", "targets_file": path, "listen_address": f"{LOOP}:0"}
    loop, _ = build(ProbeSettings(**base), dialers=dialers)
    assert loop.load_runner is None and loop.programming is None
    time = VirtualTime()
    loop, _ = build(ProbeSettings(**base, load_enabled=True, load_connections_per_second=4.0,
                                  load_bytes_per_second=1000, load_seconds=1.0),
                    dialers=dialers, sleep=time.sleep)
    assert loop.load_runner is not None
    assert loop.load_runner.plan == LoadPlan(4.0, 1000, 1.0, 2.0)
    loop.checks = (r.CLUSTERIP_POD,)
    await asyncio.wait_for(loop.round(), 30)
    assert loop.load_runner.metrics.connections == {("node-a", KUBE_PROXY, r.PASS): 4}


async def test_the_probe_serves_its_load_on_metrics(emulate: Callable[..., Any],
                                                    tmp_path: Path) -> None:
    cluster = await emulate({"nodes": [{"name": "node-a", "datapath": EBPF}]})
    cfg = ProbeSettings(node_name="node-a", targets_file=write_targets(cluster, tmp_path / "t"),
                        listen_address=f"{LOOP}:0", interval_seconds=60.0,
                        checks=(r.CLUSTERIP_POD,), load_enabled=True,
                        load_connections_per_second=4.0, load_bytes_per_second=2000,
                        load_seconds=1.0)
    first_round = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if seconds > 30:  # the wait for the next round: the first one is done
            first_round.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)  # the load's pacing: no real wait

    out = io.StringIO()
    scraped: list[str] = []

    async def until() -> None:
        await asyncio.wait_for(first_round.wait(), 30)
        url = out.getvalue().split("metrics at ")[1].split()[0]
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            scraped.append(await resp.text())

    await serve(cfg, until, out=out, sleep=sleep,
                dialers=Dialers(cluster.dialer("node-a", "host"), cluster.dialer("node-a", "pod")))
    assert "load after each round: 4 connections/s and 2000 bytes/s for 1s each" in out.getvalue()
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for fam in text_string_to_metric_families(scraped[0]) for s in fam.samples}
    me = (("datapath", EBPF), ("node", "node-a"))
    assert got[("kpr_probe_load_connections_total", (*me, ("result", r.PASS)))] == 4
    assert got[("kpr_probe_load_bytes_total", me)] == 2000
    assert got[("kpr_probe_load_streams_total", (*me, ("result", r.PASS)))] == 1
