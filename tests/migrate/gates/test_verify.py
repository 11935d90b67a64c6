"""The ``verify`` gate against real probes on the emulated datapath, read over HTTP.

Three emulated nodes on kube-proxy, one probe per node, each with its own ``/metrics``
listener on loopback. The batch (node-b) switches to eBPF; the gate waits for a fresh full
round, driven by an injected sleep that runs the probes' rounds and an injected clock.
A healthy eBPF datapath passes; one with a fault fails; probes that never complete a round,
or cannot be read, are inconclusive; a check that passed on a control node before the
batch and fails now is a regression.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from exporter.migrate.gates.base import FAIL, INCONCLUSIVE, PASS, BatchContext
from exporter.kube.client import KubeClient
from exporter.migrate.gates.verify import ClusterProbes, StaticProbes, VerifyGate, judge
from exporter.model import EBPF, KUBE_PROXY
from exporter.sources.probes_settings import ProbeSourceSettings
from exporter.verify import matrix as mx
from exporter.verify import results as r
from exporter.verify.emulator.cluster import EmulatedCluster
from exporter.verify.service import ProbeLoop
from exporter.web import Server
from tests.fakekube.fixtures import FakeKube, fake_kube  # noqa: F401 - the fixture
from tests.verify.conftest import emulate  # noqa: F401 - the fixture
from tests.verify.test_probe_loop import start_probes, write_targets
from tests.verify.test_verify_cluster import probe_pod

NODES = ("node-a", "node-b", "node-c")
CTX = BatchContext(batch=("node-b",), migrated=("node-b",), control=("node-a", "node-c"),
                   batch_started=5000.0, soak_seconds=0.0)


@dataclass
class Stand:
    cluster: EmulatedCluster
    loops: list[ProbeLoop]
    urls: list[str]
    targets: Path
    now: list[float]

    async def rounds(self) -> None:
        for loop in self.loops:
            await loop.round()

    async def switch(self, node: str, datapath: str = EBPF) -> None:
        await self.cluster.switch(node, datapath)
        write_targets(self.cluster, self.targets)  # the probes' targets follow the switch

    async def sleep(self, seconds: float) -> None:  # every probe completes one round a poll
        self.now[0] += seconds
        await self.rounds()

    def gate(self, wait: float = 60.0, **kw: Any) -> VerifyGate:
        return VerifyGate(StaticProbes(self.urls), wait, clock=lambda: self.now[0],
                          **{"sleep": self.sleep, **kw})


@pytest.fixture
async def stand(emulate: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Any]:  # noqa: F811
    servers: list[Server] = []

    async def start(faults: dict[str, list[str]] | None = None) -> Stand:
        nodes = [{"name": n, **({"faults": faults[n]} if faults and n in faults else {})}
                 for n in NODES]
        cluster = await emulate({"nodes": nodes})
        path = tmp_path / "targets.yaml"
        loops, urls = await start_probes(cluster, write_targets(cluster, path), servers)
        stand = Stand(cluster, loops, urls, path, [5000.0])
        await stand.rounds()  # results from before the batch
        return stand

    yield start
    for server in servers:
        await server.stop()


async def test_a_healthy_batch_passes(stand: Any) -> None:
    s = await stand()
    gate = s.gate()
    await gate.before_batch(CTX)
    await s.switch("node-b")
    result = await gate.evaluate(CTX)
    assert result.gate == "verify"
    assert result.result == PASS, result
    assert "no regression" in result.reason
    assert result.evidence == ("compared with the probes' results read before the batch",)


async def test_a_fault_on_the_batch_fails_it(stand: Any) -> None:
    s = await stand({"node-b": {EBPF: ["nodeport-loopback-refused"]}})
    gate = s.gate()
    await gate.before_batch(CTX)
    await s.switch("node-b")
    result = await gate.evaluate(CTX)
    assert result.result == FAIL, result
    assert result.evidence[0].startswith(f"{r.NODEPORT_LOOPBACK} on node-b: fail (")
    assert len([e for e in result.evidence if " on node-b: fail" in e]) == 1


async def test_no_fresh_round_within_the_wait_is_inconclusive(stand: Any) -> None:
    s = await stand()

    async def stuck(seconds: float) -> None:  # the probes never complete another round
        s.now[0] += seconds

    gate = s.gate(wait=10.0, sleep=stuck)
    await s.switch("node-b")
    result = await gate.evaluate(CTX)
    assert result.result == INCONCLUSIVE
    assert result.reason == "no fresh full round of every probe"
    assert [e.split(":")[0] for e in result.evidence] == [
        "no fresh full round within 10s"] * 3 + ["node-b"]
    assert result.evidence[-1] == "node-b: the probes still see it on kube-proxy"


async def test_the_migrations_wait_overrides_the_gates_default(stand: Any) -> None:
    s = await stand()
    waited: list[float] = []

    async def stuck(seconds: float) -> None:  # the probes never complete another round
        waited.append(seconds)
        s.now[0] += seconds

    gate = s.gate(wait=300.0, sleep=stuck)  # the in-cluster default
    await s.switch("node-b")
    result = await gate.evaluate(replace(CTX, wait_seconds=7.0))  # migrate start --wait 7s
    assert result.result == INCONCLUSIVE
    assert result.evidence[0].startswith("no fresh full round within 7s")
    assert 0 < sum(waited) <= 7.0 + gate.poll_seconds


async def test_a_batch_node_still_on_kube_proxy_is_inconclusive(stand: Any) -> None:
    s = await stand()
    result = await s.gate().evaluate(CTX)  # node-b was never switched
    assert result.result == INCONCLUSIVE
    assert result.evidence == ("node-b: the probes still see it on kube-proxy",)


async def test_unreadable_probes_are_inconclusive(stand: Any) -> None:
    s = await stand()
    gate = VerifyGate(StaticProbes(["http://127.0.0.1:9/"]), 10.0, clock=lambda: s.now[0],
                      sleep=s.sleep)
    result = await gate.evaluate(CTX)
    assert result.result == INCONCLUSIVE
    assert result.reason.startswith("cannot read the probes: cannot read http://127.0.0.1:9/")
    result = await VerifyGate(StaticProbes([]), 10.0).evaluate(CTX)
    assert (result.result, result.reason) == (INCONCLUSIVE,
                                              "cannot read the probes: no probe URL configured")


async def test_a_failure_that_predates_the_batch_is_not_a_regression(stand: Any) -> None:
    s = await stand({"node-c": {EBPF: ["hostport-missing"]}})
    ctx = BatchContext(batch=("node-b",), migrated=("node-b", "node-c"), control=("node-a",),
                       batch_started=5000.0, soak_seconds=0.0)
    await s.switch("node-c")  # node-c was migrated earlier; its hostPort fails since
    await s.rounds()
    gate = s.gate()
    await gate.before_batch(ctx)
    await s.switch("node-b")
    result = await gate.evaluate(ctx)
    assert result.result == PASS, result

    other = BatchContext(batch=("node-a",), migrated=(), control=("node-b", "node-c"),
                         batch_started=5000.0, soak_seconds=0.0)
    fresh_gate = s.gate()
    await fresh_gate.before_batch(other)  # read for another batch: not used for ctx
    result = await fresh_gate.evaluate(ctx)
    assert result.result == PASS, result
    assert result.evidence[-1].startswith("compared with no reading from before the batch")
    again = await fresh_gate.evaluate(ctx)  # the same batch again: the same reference
    assert again.evidence[-1] == result.evidence[-1]


def _matrix(results: dict[tuple[str, str], str], datapaths: dict[str, str]) -> mx.Matrix:
    found = [r.CheckResult(check, node, datapaths[node], "", "addr", result, "pass", result)
             for (check, node), result in results.items()]
    return mx.build(found, datapaths)


def test_a_check_that_passed_on_a_control_node_and_fails_now_is_a_regression() -> None:
    on = {"node-a": "kube-proxy", "node-b": EBPF, "node-c": "kube-proxy"}
    every = {(c, n): r.PASS for c in r.CHECKS for n in on}
    before = _matrix({**every, (r.HOSTPORT, "node-c"): r.FAIL}, {**on, "node-b": "kube-proxy"})
    fresh = _matrix({**every, (r.CLUSTERIP_HOST, "node-a"): r.FAIL,
                     (r.HOSTPORT, "node-c"): r.FAIL}, on)
    result = judge(CTX, fresh, before, [], "the probes' results read before the batch")
    assert result.result == FAIL
    assert result.reason == "0 check(s) failed on the batch's nodes, 1 regression(s) on other nodes"
    assert result.evidence == (
        f"{r.CLUSTERIP_HOST} on node-a (kube-proxy): passed before the batch, fails now",
        "compared with the probes' results read before the batch")
    healthy = judge(CTX, _matrix(every, on), before, [], "x")
    assert healthy.result == PASS
    assert healthy.reason == (f"{len(r.CHECKS)} check(s) passed on 1 batch node(s) (the others "
                              "do not apply); no regression on other nodes")


async def test_the_probe_pods_found_in_the_cluster_are_read(
        stand: Any, fake_kube: FakeKube) -> None:  # noqa: F811
    s = await stand()
    settings = ProbeSourceSettings(enabled=True, namespace="kpr")
    async with KubeClient.connect(fake_kube.kubeconfig) as kube:
        nothing = await VerifyGate(ClusterProbes(kube, settings), 10.0).evaluate(CTX)
        assert nothing.result == INCONCLUSIVE
        assert nothing.reason.startswith("cannot read the probes: no running probe pod")
        for loop, url in zip(s.loops, s.urls, strict=True):
            fake_kube.seed(probe_pod(f"kpr-probe-{loop.node}", loop.node, url))
        gate = VerifyGate(ClusterProbes(kube, settings), 60.0, clock=lambda: s.now[0],
                          sleep=s.sleep)
        await gate.before_batch(CTX)
        await s.switch("node-b")
        result = await gate.evaluate(CTX)
    assert result.result == PASS, result


async def test_a_regression_on_a_control_node_fails_the_batch_every_time_it_is_judged(
        stand: Any) -> None:
    s = await stand()
    gate = s.gate()
    await gate.before_batch(CTX)
    await s.switch("node-b")
    # node-a, still on kube-proxy, stops serving NodePorts on its loopback after the batch
    # (the emulator takes faults from the node's spec when it switches)
    node = s.cluster._node("node-a")
    node.spec = replace(node.spec, faults={KUBE_PROXY: ("nodeport-loopback-refused",)})
    await s.cluster.switch("node-a", KUBE_PROXY)
    first = await gate.evaluate(CTX)
    assert first.result == FAIL, first
    assert first.evidence[0] == (f"{r.NODEPORT_LOOPBACK} on node-a (kube-proxy): passed before "
                                 "the batch, fails now")
    again = await gate.evaluate(CTX)  # resumed after a pause: the reference stays the same
    assert again.result == FAIL and again.evidence == first.evidence


async def test_without_a_reading_before_the_batch_the_previous_batch_is_the_reference(
        stand: Any) -> None:
    s = await stand()
    gate = s.gate()  # the controller never calls before_batch here
    await s.switch("node-b")
    assert (await gate.evaluate(CTX)).result == PASS
    second = BatchContext(batch=("node-c",), migrated=("node-b", "node-c"),
                          control=("node-a",), batch_started=6000.0, soak_seconds=0.0)
    await s.switch("node-c")
    node = s.cluster._node("node-a")
    node.spec = replace(node.spec, faults={KUBE_PROXY: ("nodeport-loopback-refused",)})
    await s.cluster.switch("node-a", KUBE_PROXY)
    first = await gate.evaluate(second)
    assert first.result == FAIL, first
    assert first.evidence == (
        f"{r.NODEPORT_LOOPBACK} on node-a (kube-proxy): passed before the batch, fails now",
        "compared with the fresh round of the previous batch's gate")
    again = await gate.evaluate(second)  # judged again (resumed): the same reference
    assert again.result == FAIL and again.evidence == first.evidence
