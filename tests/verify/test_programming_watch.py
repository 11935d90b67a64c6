"""Programming latency measured actively: on the emulated datapath, whose nodes serve a new
echo endpoint only after their datapath's programming delay (scenario data, on a virtual
clock), the chase's histogram per datapath matches the scenario; an endpoint never served
is missed once; and the EndpointSlices come from the fake Kubernetes API through the
product's client, their trigger time read as the change time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import results as r
from exporter.verify.emulator.cluster import EmulatedCluster
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.net import Dialer
from exporter.verify.programming import TRIGGER_ANNOTATION, NewEndpoint
from exporter.verify.programming_watch import ProgrammingWatch, SliceFeed, slice_selector
from exporter.verify.serve import Dialers, build
from exporter.verify.settings import ProbeSettings
from exporter.kube.resources import ENDPOINTSLICES
from tests.fakekube.fixtures import FakeKube, endpoint_slice
from tests.rollback.cluster import VirtualTime
from tests.verify.conftest import scenario
from tests.verify.test_load import samples
from tests.verify.test_probe_loop import write_targets

#: The scenario's truth: kube-proxy serves a new endpoint 1.5 s after its change, eBPF 10 ms.
DELAYS = {KUBE_PROXY: 1.5, EBPF: 0.01}
POLLS = 50.0  # the cap: one poll every 20 ms
NODES = {"node-a": KUBE_PROXY, "node-b": EBPF, "node-c": KUBE_PROXY}


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[EmulatedCluster, VirtualTime]]:
    time = VirtualTime()
    emulated = EmulatedCluster(scenario({
        "programming_seconds": DELAYS,
        "nodes": [{"name": name, "datapath": dp} for name, dp in NODES.items()]}), clock=time)
    await emulated.start()
    yield emulated, time
    await emulated.stop()


def chaser(cluster: EmulatedCluster, time: VirtualTime, node: str,
           metrics: MeasureMetrics, **kw: Any) -> ProgrammingWatch:
    return ProgrammingWatch(node, cluster.dialer(node, "pod"), lambda: cluster.vips["echo"],
                            lambda: cluster.datapath(node), metrics, polls_per_second=POLLS,
                            clock=time, sleep=time.sleep, **kw)


async def test_the_latency_per_datapath_is_the_scenarios_delay(
        cluster: tuple[EmulatedCluster, VirtualTime]) -> None:
    emulated, time = cluster
    registry = CollectorRegistry()
    metrics = MeasureMetrics(registry)
    for node in NODES:
        watch = chaser(emulated, time, node, metrics)
        for host in NODES:  # a new echo pod on each node, chased from this one
            added = await emulated.add_endpoint(host)
            watch.learn([NewEndpoint(added.pod, added.since)])
            await watch.chase()
            assert not watch.pending.pending
    got = samples(registry)
    backends = 3 + 9  # the echo pods at the end: one round-robin turn at most per poll
    for datapath, delay in DELAYS.items():
        count = sum(v for (name, labels), v in got.items()
                    if name == "kpr_probe_programming_latency_seconds_count"
                    and ("datapath", datapath) in labels)
        total = sum(v for (name, labels), v in got.items()
                    if name == "kpr_probe_programming_latency_seconds_sum"
                    and ("datapath", datapath) in labels)
        assert count == 3 * sum(1 for dp in NODES.values() if dp == datapath)
        assert delay <= total / count <= delay + backends / POLLS

    def bucket(node: str, le: str) -> float:
        labels = (("datapath", NODES[node]), ("le", le), ("node", node))
        return got[("kpr_probe_programming_latency_seconds_bucket", labels)]

    assert bucket("node-b", "0.25") == 3  # every eBPF sample within 250 ms
    assert bucket("node-a", "1.0") == bucket("node-c", "1.0") == 0  # no kube-proxy under 1 s
    assert bucket("node-a", "2.5") == bucket("node-c", "2.5") == 3
    assert "kpr_probe_programming_missed_total" not in {name for name, _ in got}


async def test_an_endpoint_never_served_is_missed_once(
        cluster: tuple[EmulatedCluster, VirtualTime]) -> None:
    emulated, time = cluster
    metrics = MeasureMetrics(CollectorRegistry())
    watch = chaser(emulated, time, "node-b", metrics, timeout=2.0)
    start = time.now
    watch.learn([NewEndpoint("echo-that-never-runs", start)])
    await watch.chase()
    assert metrics.missed_count == {("node-b", EBPF): 1}
    assert metrics.programming.rows == {}
    assert 2.0 <= time.now - start <= 2.0 + 2 / POLLS
    assert watch.polls == pytest.approx(2.0 * POLLS, abs=2)  # the cap held throughout


async def test_the_slices_come_from_the_api_with_their_trigger_time(
        fake_kube: FakeKube, kube: Any) -> None:
    time = VirtualTime(start=1_764_000_010.0)
    watch = ProgrammingWatch("node-a", Dialer("127.0.0.1"), lambda: None, lambda: KUBE_PROXY,
                             MeasureMetrics(), clock=time, sleep=time.sleep)
    first = endpoint_slice("echo-abc", "kpr-verify", "echo", ["10.0.0.1"], [8080])
    first["endpoints"][0]["targetRef"] = {"kind": "Pod", "name": "echo-1"}
    fake_kube.seed(first)
    fake_kube.seed(endpoint_slice("other-xyz", "kpr-verify", "other", ["10.0.0.9"], [80]))
    namespace, selector = slice_selector("kpr-verify/echo")
    events = kube.watch(ENDPOINTSLICES, namespace, label_selector=selector)
    sync = await anext(events)
    watch.on_event(sync.type, sync.object, sync.objects)
    assert watch.tracker.known() == {"echo-1"} and not watch.pending.pending
    grown = endpoint_slice("echo-abc", "kpr-verify", "echo", ["10.0.0.1", "10.0.0.2"], [8080])
    grown["endpoints"][0]["targetRef"] = {"kind": "Pod", "name": "echo-1"}
    grown["endpoints"][1]["targetRef"] = {"kind": "Pod", "name": "echo-2"}
    grown["metadata"]["annotations"] = {TRIGGER_ANNOTATION: "2025-11-24T16:00:08.25Z"}
    fake_kube.seed(grown)
    change = await anext(events)
    await events.aclose()
    watch.on_event(change.type, change.object, change.objects)
    assert watch.pending.pending == {"echo-2": (1_764_000_008.25, 1_764_000_010.0)}


async def test_a_refused_watch_is_logged_counted_and_retried(
        fake_kube: FakeKube, kube: Any) -> None:
    fake_kube.deny("list", "endpointslices")
    time = VirtualTime()

    class Enough(Exception):
        pass

    async def sleep(seconds: float) -> None:
        await time.sleep(seconds)
        if feed.failures == 2:
            raise Enough  # ends the test's follow after two attempts

    watch = ProgrammingWatch("node-a", Dialer("127.0.0.1"), lambda: None, lambda: KUBE_PROXY,
                             MeasureMetrics(), clock=time, sleep=sleep)
    counted: list[int] = []
    feed = SliceFeed(watch, kube, "kpr-verify/echo", retry_seconds=30.0,
                     on_failure=lambda: counted.append(1))
    start = time.now
    with pytest.raises(Enough):
        await feed.follow()
    assert feed.failures == len(counted) == 2 and time.now - start == 60.0


def test_the_probe_command_builds_the_chase_with_a_service(
        fake_kube: FakeKube) -> None:  # noqa: F811
    cfg = ProbeSettings(node_name="node-a", targets_file="unused", listen_address="127.0.0.1:0",
                        programming_service="kpr-verify/echo", programming_polls_per_second=5,
                        kubeconfig=fake_kube.kubeconfig)
    loop, _server = build(cfg)
    assert isinstance(loop.programming, SliceFeed)
    assert loop.programming.service == "kpr-verify/echo"
    assert loop.programming.watch.polls_per_second == 5 and loop.load_runner is None


class Signalling(MeasureMetrics):
    """The probe's measurements, telling the test when a latency was observed."""

    def __init__(self) -> None:
        super().__init__()
        self.observed = asyncio.Event()

    def programmed(self, node: str, datapath: str, seconds: float) -> None:
        super().programmed(node, datapath, seconds)
        self.observed.set()


async def test_the_probe_measures_a_new_endpoint_from_the_api_end_to_end(
        fake_kube: FakeKube, tmp_path: Path, emulate: Callable[..., Any]) -> None:  # noqa: F811
    cluster = await emulate({"programming_seconds": {EBPF: 0.0},
                             "nodes": [{"name": "node-a", "datapath": EBPF}]})
    echo = endpoint_slice("echo-abc", "kpr-verify", "echo", ["10.0.0.1"], [8080])
    echo["endpoints"][0]["targetRef"] = {"kind": "Pod", "name": "echo-node-a"}
    fake_kube.seed(echo)
    cfg = ProbeSettings(node_name="node-a", targets_file=write_targets(cluster, tmp_path / "t"),
                        listen_address="127.0.0.1:0", checks=(r.CLUSTERIP_POD,),
                        programming_service="kpr-verify/echo",
                        kubeconfig=fake_kube.kubeconfig)
    loop, _server = build(cfg, dialers=Dialers(cluster.dialer("node-a", "host"),
                                                cluster.dialer("node-a", "pod")))
    assert await loop.round()  # the targets: the chase goes to their ClusterIP
    feed = loop.programming
    metrics = feed.watch.metrics = Signalling()
    running = asyncio.ensure_future(feed.run())
    try:
        assert await asyncio.to_thread(fake_kube.wait_for, lambda: fake_kube.open_watches > 0)
        added = await cluster.add_endpoint("node-a")
        changed = datetime.fromtimestamp(added.since, timezone.utc)
        grown = endpoint_slice("echo-abc", "kpr-verify", "echo", ["10.0.0.1", "10.0.0.2"],
                               [8080])
        grown["endpoints"][0]["targetRef"] = {"kind": "Pod", "name": "echo-node-a"}
        grown["endpoints"][1]["targetRef"] = {"kind": "Pod", "name": added.pod}
        grown["metadata"]["annotations"] = {TRIGGER_ANNOTATION: changed.isoformat()}
        fake_kube.seed(grown)
        await asyncio.wait_for(metrics.observed.wait(), 10)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await feed.close()
    [(key, row)] = metrics.programming.rows.items()
    assert key == ("node-a", EBPF) and sum(row[:-1]) == 1
    assert 0 <= row[-1] < 5  # the watch's delivery and a poll or two on loopback
    assert feed.watch.tracker.known() == {"echo-node-a", added.pod}
