"""Persistence: the file store, the ConfigMap store (fake API server) and a restart.

Matrix: file (round trip, missing, corrupt, atomic replace, unwritable) x ConfigMap
(missing, create, replace keeps other keys, a concurrent write is retried, clear keeps
other keys, forbidden) x service (freeze -> saved; new process -> loaded; a failing store
retries; a clear in the store reaches a running exporter).
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.model import Baseline
from exporter.baseline.service import BaselineService
from exporter.baseline.settings import BaselineSettings
from exporter.baseline.store import KEY, ConfigMapStore, FileStore, StoreError, make_store
from exporter.judge.history import Cohort
from tests.fakekube.fixtures import configmap
from tests.judge.samples import BOUNDS, Feed, counts_at, sli

COUNTS = (0, 0, 0, 0, 20, 100, 60, 18, 2, 0, 0, 0, 0, 0, 0, 0)


def _baseline(captured: float = 1_700_000_000.0) -> Baseline:
    cohort = Cohort(COUNTS, attempts=204, established=200, flows=1000, drops=7, kpr_drops=2)
    return Baseline(captured, captured - 3600, captured, BOUNDS, {("shop", "cart"): cohort})


# --- file ---------------------------------------------------------------------------------


async def test_file_store_round_trip(tmp_path):
    store = FileStore(tmp_path / "state" / "baseline.json")
    assert await store.load() is None
    await store.save(_baseline())
    assert await store.load() == _baseline()
    await store.save(_baseline(1_800_000_000.0))  # replaced, not appended
    assert (await store.load()).captured_at == 1_800_000_000.0
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["baseline.json"]  # no temp left
    await store.clear()
    assert await store.load() is None
    await store.clear()  # clearing nothing is fine


async def test_file_store_errors(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    with pytest.raises(StoreError, match="unreadable"):
        await FileStore(corrupt).load()
    with pytest.raises(StoreError, match="cannot write"):
        await FileStore(tmp_path).save(_baseline())  # a directory is not a file


# --- ConfigMap ------------------------------------------------------------------------------


async def test_configmap_store_creates_replaces_and_clears(fake_kube, kube):
    store = ConfigMapStore(kube, "kube-system", "kpr-exporter-baseline")
    assert await store.load() is None
    await store.save(_baseline())
    stored = fake_kube.get("configmaps", "kpr-exporter-baseline", "kube-system")
    assert stored["metadata"]["labels"]["app.kubernetes.io/component"] == "baseline"
    assert json.loads(stored["data"][KEY])["services"][0]["service"] == "cart"
    assert await store.load() == _baseline()

    fake_kube.seed({**stored, "data": {**stored["data"], "note": "kept"}})
    await store.save(_baseline(1_800_000_000.0))
    stored = fake_kube.get("configmaps", "kpr-exporter-baseline", "kube-system")
    assert stored["data"]["note"] == "kept"
    assert (await store.load()).captured_at == 1_800_000_000.0

    await store.clear()
    stored = fake_kube.get("configmaps", "kpr-exporter-baseline", "kube-system")
    assert stored["data"] == {"note": "kept"}
    assert await store.load() is None


async def test_configmap_store_retries_a_concurrent_write(fake_kube, kube):
    fake_kube.seed(configmap("kpr-exporter-baseline", "kube-system", {"other": "1"}))
    store = ConfigMapStore(kube, "kube-system", "kpr-exporter-baseline")
    hold = fake_kube.hold("update", "configmaps", "kube-system")
    saving = asyncio.create_task(store.save(_baseline()))
    arrived = await asyncio.to_thread(hold.wait_arrived, 1, 5.0)
    assert arrived
    fake_kube.seed(configmap("kpr-exporter-baseline", "kube-system", {"other": "2"}))
    hold.release()
    await asyncio.wait_for(saving, 10.0)
    stored = fake_kube.get("configmaps", "kpr-exporter-baseline", "kube-system")
    assert stored["data"]["other"] == "2" and KEY in stored["data"]
    assert sum(1 for r in fake_kube.requests if r.method == "PUT") == 2  # a 409, then again


async def test_configmap_store_wraps_api_errors(fake_kube, kube):
    store = ConfigMapStore(kube, "kube-system", "kpr-exporter-baseline")
    fake_kube.deny("create", "configmaps", "kube-system")
    with pytest.raises(StoreError, match="cannot write ConfigMap kube-system/kpr-exporter-baseline"):
        await store.save(_baseline())


def test_make_store(tmp_path):
    assert isinstance(make_store(BaselineSettings(file=str(tmp_path / "b.json"))), FileStore)
    with pytest.raises(StoreError, match="no Kubernetes client"):
        make_store(BaselineSettings(store="configmap"))


# --- the running service ----------------------------------------------------------------------

KP = ("shop", "cart", "kube-proxy")
SETTINGS = BaselineSettings(window_seconds=600.0)


def _run_until_frozen(service: BaselineService, feed: Feed):
    async def go():
        for _ in range(25):
            await service.observe(feed.step(30.0, {KP: sli(counts_at(20, 0.001), flows=40)}),
                                  "before")
        return await service.observe(feed.step(30.0, {KP: sli(counts_at(20, 0.001))}), "canary")
    return go()


async def test_a_restart_keeps_the_frozen_baseline(tmp_path, clock):
    path = tmp_path / "baseline.json"
    first = BaselineService(BaselineKeeper(SETTINGS, clock=clock), FileStore(path), clock=clock)
    assert await first.start() is None
    frozen = await _run_until_frozen(first, Feed())
    assert frozen is not None and path.exists()

    # A new process: nothing in memory, the store has it.
    second = BaselineService(BaselineKeeper(SETTINGS, clock=clock), FileStore(path), clock=clock)
    assert await second.start() == frozen
    assert second.baseline == frozen
    # Still never overwritten: a new switch after a rollback keeps it.
    feed = Feed(start=2_000_000.0)
    await _run_until_frozen(second, feed)
    assert second.baseline == frozen
    assert await FileStore(path).load() == frozen


class FlakyStore(FileStore):
    """A file store whose saves fail until ``healthy`` is set."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.healthy = threading.Event()

    async def save(self, baseline: Baseline) -> None:
        if not self.healthy.is_set():
            raise StoreError("disk full")
        await super().save(baseline)


async def test_a_failed_save_is_retried_with_the_next_snapshot(tmp_path, clock):
    store = FlakyStore(tmp_path / "baseline.json")
    service = BaselineService(BaselineKeeper(SETTINGS, clock=clock), store, clock=clock)
    feed = Feed()
    frozen = await _run_until_frozen(service, feed)
    assert frozen is not None and await store.load() is None
    store.healthy.set()
    await service.observe(feed.step(30.0, {KP: sli(counts_at(20, 0.001))}), "canary")
    assert await store.load() == frozen


async def test_a_clear_in_the_store_reaches_the_running_exporter(tmp_path, clock):
    store = FileStore(tmp_path / "baseline.json")
    service = BaselineService(BaselineKeeper(SETTINGS, clock=clock), store, clock=clock,
                              reload_seconds=60.0)
    await service.start()
    feed = Feed()
    assert await _run_until_frozen(service, feed) is not None
    await FileStore(tmp_path / "baseline.json").clear()  # kpr-exporter baseline clear
    await service.observe(feed.step(30.0, {KP: sli(counts_at(20, 0.001))}), "canary")
    assert service.baseline is not None  # not re-read yet
    clock.now += 61
    await service.observe(feed.step(30.0, {KP: sli(counts_at(20, 0.001))}), "canary")
    assert service.baseline is None
