"""``kpr-exporter probe``'s loop and listener against the emulated datapath: rounds on the
targets of the file, bad target files counted while the last good targets keep running,
the interval kept on an injected sleep, and ``/metrics`` serving every kpr_probe_* family."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from exporter.config_constraints import problems as check
from exporter.verify import results as r
from exporter.verify import targetfile
from exporter.verify.emulator.cluster import EmulatedCluster
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.verify.serve import Dialers, ProbeSettingsError, build, serve
from exporter.verify.service import ProbeLoop
from exporter.verify.settings import ProbeSettings
from tests.verify.conftest import LIMITS

#: Every check but the long-lived connection, whose default pings take seconds.
SHORT = tuple(c for c in r.CHECKS if c != r.LONG_LIVED_CONNECTION)
THREE = {"nodes": [{"name": "node-a"}, {"name": "node-b"}, {"name": "node-c"}]}


def write_targets(cluster: EmulatedCluster, path: Path) -> str:
    path.write_text(yaml.safe_dump(targetfile.dump(cluster.targets())))
    return str(path)


async def start_probes(cluster: EmulatedCluster, path: str,
                       servers: list[Any]) -> tuple[list[ProbeLoop], list[str]]:
    """One probe per node of ``cluster`` (targets from ``path``), each serving its metrics on
    loopback; the servers are appended to ``servers`` for the caller to stop."""
    loops, urls = [], []
    for node in cluster.nodes:
        cfg = ProbeSettings(node_name=node, targets_file=path, sample_size=2,
                            listen_address="127.0.0.1:0")
        loop, server = build(cfg, limits=LIMITS, dialers=Dialers(
            cluster.dialer(node, "host"), cluster.dialer(node, "pod")))
        await server.start()
        servers.append(server)
        loops.append(loop)
        urls.append(server.url)
    return loops, urls


def make_loop(cluster: EmulatedCluster, node: str, path: str, **kw: Any) -> ProbeLoop:
    registry = CollectorRegistry()
    return ProbeLoop(node=node, host=cluster.dialer(node, "host"),
                     pod=cluster.dialer(node, "pod"), load=lambda: targetfile.load(path),
                     metrics=ProbeMetrics(registry), status=ProbeStatus(node, registry),
                     k=1, limits=LIMITS, clock=lambda: 1000.0, **kw)


async def test_a_round_runs_every_check_on_the_files_targets(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate(THREE)
    loop = make_loop(cluster, "node-a", write_targets(cluster, tmp_path / "t.yaml"))
    found = await loop.round()
    assert {x.check for x in found} == set(r.CHECKS)
    assert all(x.result == r.PASS for x in found), [x.describe() for x in found if x.failed]
    status = loop.status
    assert (status.rounds, status.last_round, status.coverage_rounds) == (1, 1000.0, 2)
    assert status.datapaths == {"node-a": "kube-proxy", "node-b": "kube-proxy",
                                "node-c": "kube-proxy"}
    # the emulator's last node runs no endpoint of the eTP=Local Service
    assert status.not_applicable == {
        (r.ETP_LOCAL_SOURCE_IP, "node-c"): "no local endpoint of the eTP=Local Service"}


async def test_bad_targets_are_counted_and_the_last_good_ones_kept(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate(THREE)
    path = tmp_path / "t.yaml"
    path.write_text("nodes: [\n")
    loop = make_loop(cluster, "node-a", str(path), checks=(r.CLUSTERIP_POD,))
    assert await loop.round() == []  # nothing good yet: no round
    assert (loop.status.rounds, loop.status.target_errors) == (0, 1)
    write_targets(cluster, path)
    assert len(await loop.round()) == 1
    path.write_text("nodes: [\n")
    again = await loop.round()
    assert [x.result for x in again] == [r.PASS]
    assert (loop.status.rounds, loop.status.target_errors) == (2, 2)
    doc = targetfile.dump(cluster.targets())
    doc["nodes"] = [n for n in doc["nodes"] if n["name"] != "node-a"]
    path.write_text(yaml.safe_dump(doc))
    assert len(await loop.round()) == 1  # its own node missing: an error, old targets kept
    assert (loop.status.rounds, loop.status.target_errors) == (3, 3)


async def test_a_switch_in_the_file_is_the_datapath_of_the_next_round(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate(THREE)
    path = tmp_path / "t.yaml"
    loop = make_loop(cluster, "node-b", write_targets(cluster, path),
                     checks=(r.CLUSTERIP_POD,))
    assert {x.datapath for x in await loop.round()} == {"kube-proxy"}
    await cluster.switch("node-b", "ebpf")
    write_targets(cluster, path)
    assert {x.datapath for x in await loop.round()} == {"ebpf"}


class _Stop(Exception):
    pass


async def test_rounds_start_an_interval_apart_on_the_injected_sleep(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate(THREE)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            raise _Stop

    loop = make_loop(cluster, "node-a", write_targets(cluster, tmp_path / "t.yaml"),
                     checks=(r.CLUSTERIP_POD,), interval=30.0, sleep=sleep)
    with pytest.raises(_Stop):
        await loop.run()
    assert loop.status.rounds == 3
    assert len(waits) == 3 and all(29.0 < w <= 30.0 for w in waits)


def test_the_probe_needs_its_node_and_its_targets() -> None:
    with pytest.raises(ProbeSettingsError, match="--probe.node-name is required; "
                                                  "--probe.targets-file is required"):
        build(ProbeSettings())
    assert check(ProbeSettings(sample_size=0, checks=("nodeport-anywhere",),
                               listen_address="x"), "probe") == [
        "probe.listen_address 'x' is not [host]:port",
        "probe.sample_size must be at least 1, got 0",
        "probe.checks: unknown check(s) nodeport-anywhere; known: " + ", ".join(r.CHECKS)]


async def test_serve_exposes_every_probe_family_on_metrics(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate(THREE)
    cfg = ProbeSettings(node_name="node-a", targets_file=write_targets(cluster, tmp_path / "t"),
                        listen_address="127.0.0.1:0", interval_seconds=60.0,
                        checks=SHORT)
    first_round = asyncio.Event()

    async def sleep(seconds: float) -> None:
        first_round.set()
        await asyncio.Event().wait()  # the next round never comes

    out = io.StringIO()
    scraped: list[str] = []

    async def until() -> None:
        await first_round.wait()
        url = out.getvalue().split("metrics at ")[1].split()[0]
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            scraped.append(await resp.text())

    await serve(cfg, until, out=out, sleep=sleep,
                dialers=Dialers(cluster.dialer("node-a", "host"), cluster.dialer("node-a", "pod")))
    assert "probe on node node-a: 12 checks every 60s" in out.getvalue()
    text = scraped[0]
    for family in ("kpr_probe_checks_total", "kpr_probe_duration_seconds_bucket",
                   'kpr_probe_rounds_total{probe_node="node-a"} 1.0',
                   'kpr_probe_coverage_rounds{probe_node="node-a"} 1.0',
                   "kpr_probe_last_round_timestamp_seconds", "kpr_probe_target_errors_total",
                   "kpr_probe_not_applicable{", "kpr_probe_target_datapath_info{"):
        assert family in text
    assert 'result="fail"' not in text and 'result="error"' not in text


async def test_a_round_that_raises_is_logged_and_the_next_one_runs(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate(THREE)
    path = write_targets(cluster, tmp_path / "t.yaml")
    calls: list[int] = []

    def load() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in the loader")
        return targetfile.load(path)

    async def sleep(seconds: float) -> None:
        if len(calls) == 2:
            raise _Stop

    loop = make_loop(cluster, "node-a", path, checks=(r.CLUSTERIP_POD,), sleep=sleep)
    loop.load = load
    with pytest.raises(_Stop):
        await loop.run()
    assert loop.status.rounds == 1  # the second round ran after the first raised
