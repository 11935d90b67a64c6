"""DatapathWatcher feeding a DatapathTracker from the fake API server.

Matrix:
- the documented per-node rollout: cilium-config false, kube-proxy everywhere, a
  CiliumNodeConfig (v2) selecting the migration label; label one node, move kube-proxy
  off it, then all nodes; phase before -> canary -> after
- only cilium.io/v2alpha1 served (Cilium < 1.16): its CiliumNodeConfigs count
- `strict` in a CiliumNodeConfig with a 1.16 agent image: reported, not honoured
- RBAC refuses CiliumNodeConfigs: logged once with verb and resource, the signal is
  unknown (cilium-config decides), and it recovers when access is granted
- cilium-config deleted: unknown, the kube-proxy pods decide
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from exporter.cilium import MIGRATION_LABEL
from exporter.datapath.tracker import DatapathTracker
from exporter.kube.datapath_feed import DatapathWatcher
from exporter.kube.settings import KubeSettings
from exporter.model import EBPF, KUBE_PROXY
from tests.fakekube.fixtures import cilium_node_config, configmap, node, pod

NS = "kube-system"
NODES = ("worker-1", "worker-2", "worker-3")
LABEL = MIGRATION_LABEL
SETTINGS = KubeSettings(retry_min_seconds=0.01, retry_max_seconds=0.05)


def seed_cluster(fake, *, cnc_version="v2", cnc_value="true", image_tag="v1.16.3"):
    for name in NODES:
        fake.seed(node(name))
        fake.seed(pod(f"kube-proxy-{name}", NS, name, {"k8s-app": "kube-proxy"}))
        fake.seed(pod(f"cilium-{name}", NS, name, {"k8s-app": "cilium"},
                      image=f"quay.io/cilium/cilium:{image_tag}"))
    fake.seed(configmap("cilium-config", NS, {"kube-proxy-replacement": "false"}))
    fake.seed(cilium_node_config("kube-proxy-replacement-rollout", NS,
                                 {"matchLabels": {LABEL: "true"}},
                                 {"kube-proxy-replacement": cnc_value}, version=cnc_version))


def migrate(fake, name):
    """The per-node procedure: label the node, kube-proxy leaves it."""
    fake.seed(node(name, {LABEL: "true"}))
    fake.remove("pods", f"kube-proxy-{name}", NS)


@pytest.fixture
async def running(fake_kube, kube):
    tracker = DatapathTracker(clock=lambda: 1_700_000_000.0)
    watcher = DatapathWatcher(kube, SETTINGS, tracker)

    async def start():
        task = asyncio.create_task(watcher.run())
        tasks.append(task)
        async with asyncio.timeout(5):
            await watcher.wait_synced()
        return tracker, watcher

    tasks: list[asyncio.Task] = []
    yield start
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(tracker, predicate, timeout=5.0):
    """Wait until ``predicate()`` holds, re-checking on every tracker change."""
    changed = asyncio.Event()
    tracker.add_listener(changed.set)
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                changed.clear()
                await changed.wait()
    finally:
        tracker.remove_listener(changed.set)


async def test_per_node_rollout_from_before_to_after(fake_kube, running):
    seed_cluster(fake_kube)
    tracker, _ = await running()
    await until(tracker, lambda: len(tracker.decisions()) == 3)
    assert tracker.phase == "before"
    assert {tracker.decision(n).source for n in NODES} == {"cilium-config"}

    migrate(fake_kube, "worker-1")
    # label and pod removal arrive through two watches: wait for both
    await until(tracker, lambda: tracker.datapath("worker-1") == EBPF
                and not tracker.decision("worker-1").problems)
    assert tracker.decision("worker-1").source == "cilium-node-config"
    assert tracker.phase == "canary"
    assert tracker.datapath("worker-2") == KUBE_PROXY

    for name in NODES[1:]:
        migrate(fake_kube, name)
    await until(tracker, lambda: tracker.phase == "after")
    assert set(tracker.switch_times()) == set(NODES)


async def test_only_v2alpha1_served(fake_kube, running):
    fake_kube.unserve("cilium.io", "v2")
    seed_cluster(fake_kube, cnc_version="v2alpha1", image_tag="v1.15.19")
    migrate(fake_kube, "worker-2")
    tracker, watcher = await running()
    await until(tracker, lambda: tracker.datapath("worker-2") == EBPF)
    assert tracker.decision("worker-2").source == "cilium-node-config"
    assert not watcher.node_configs[0].available
    assert watcher.node_configs[1].available


async def test_strict_in_a_node_config_is_reported_not_honoured(fake_kube, running):
    seed_cluster(fake_kube, cnc_value="strict", image_tag="v1.16.3")
    migrate(fake_kube, "worker-1")
    tracker, _ = await running()
    await until(tracker, lambda: "strict-not-honoured" in getattr(
        tracker.decision("worker-1"), "problem_kinds", ()))
    decision = tracker.decision("worker-1")
    assert decision.datapath == KUBE_PROXY
    assert "kube-proxy-missing" in decision.problem_kinds  # kube-proxy left, KPR not on


async def test_refused_node_configs_are_unknown_and_logged_once(fake_kube, running, caplog):
    caplog.set_level(logging.INFO)
    seed_cluster(fake_kube)
    migrate(fake_kube, "worker-1")
    fake_kube.deny("list", "ciliumnodeconfigs", NS)
    tracker, watcher = await running()
    await until(tracker, lambda: tracker.decision("worker-1") is not None)
    # without the CiliumNodeConfig, cilium-config decides and kube-proxy is missed
    assert tracker.decision("worker-1").source == "cilium-config"
    assert tracker.datapath("worker-1") == KUBE_PROXY

    errors = [r for r in caplog.records
              if r.getMessage() == "Kubernetes API refused access (check RBAC)"]
    assert sorted(r.kv["resource"] for r in errors) == [
        "ciliumnodeconfigs.cilium.io in namespace kube-system"] * 2  # v2 and v2alpha1, once
    assert errors[0].kv["verb"] == "list"
    assert errors[0].kv["error"].startswith(
        "forbidden: not allowed to list ciliumnodeconfigs.cilium.io in namespace kube-system")

    fake_kube.allow_all()
    await until(tracker, lambda: tracker.datapath("worker-1") == EBPF)
    assert tracker.decision("worker-1").source == "cilium-node-config"


async def test_deleted_cilium_config_leaves_the_kube_proxy_pods_to_decide(fake_kube, running):
    seed_cluster(fake_kube)
    tracker, _ = await running()
    await until(tracker, lambda: len(tracker.decisions()) == 3)
    fake_kube.remove("configmaps", "cilium-config", NS)
    fake_kube.remove("pods", "kube-proxy-worker-3", NS)
    await until(tracker, lambda: tracker.datapath("worker-3") == EBPF)
    assert tracker.decision("worker-3").source == "kube-proxy-pod"
    assert tracker.decision("worker-1").source == "kube-proxy-pod"
    assert tracker.datapath("worker-1") == KUBE_PROXY
