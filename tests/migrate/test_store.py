"""The migration ConfigMap: compare-and-swap writes, requests beside the status."""

from __future__ import annotations

import pytest

from exporter.migrate.model import STEP_ABORTED, STEP_LABEL, MigrationSpec, MigrationStatus
from exporter.migrate.store import MigrationStore, Request, StoreConflict, StoreError

NS, NAME = "kpr", "kpr-exporter-migration"


async def test_create_load_and_save(fake_kube, kube):
    store = MigrationStore(kube, NS, NAME)
    assert await store.load() is None
    await store.create(MigrationSpec("m1"), MigrationStatus())
    stored = await store.load()
    assert stored.spec.id == "m1" and stored.status.step == "pending" and stored.request == Request()
    await store.save_status(stored.status.at_step(STEP_LABEL, 5.0))
    assert (await MigrationStore(kube, NS, NAME).load()).status.step == STEP_LABEL
    cm = fake_kube.get("configmaps", NAME, NS)
    assert set(cm["data"]) == {"spec.json", "status.json", "request.json"}


async def test_a_request_written_meanwhile_is_kept_and_the_status_still_saved(fake_kube, kube):
    controller = MigrationStore(kube, NS, NAME)
    await controller.create(MigrationSpec("m1"), MigrationStatus())
    stored = await controller.load()
    await MigrationStore(kube, NS, NAME).update_request(lambda q: Request(paused=True, by="ops"))
    await controller.save_status(stored.status.at_step(STEP_LABEL, 5.0))  # retried on the new version
    again = await MigrationStore(kube, NS, NAME).load()
    assert again.request.paused and again.status.step == STEP_LABEL


async def test_a_status_written_by_another_writer_stops_this_one(fake_kube, kube):
    mine, other = MigrationStore(kube, NS, NAME), MigrationStore(kube, NS, NAME)
    await mine.create(MigrationSpec("m1"), MigrationStatus())
    stored = await mine.load()
    await other.load()
    await other.save_status(stored.status.at_step(STEP_LABEL, 5.0))
    with pytest.raises(StoreConflict):
        await mine.save_status(stored.status.at_step(STEP_ABORTED, 6.0))
    assert (await other.load()).status.step == STEP_LABEL  # not overwritten


async def test_only_one_unfinished_migration(fake_kube, kube):
    store = MigrationStore(kube, NS, NAME)
    await store.create(MigrationSpec("m1"), MigrationStatus())
    with pytest.raises(StoreConflict, match="m1"):
        await store.create(MigrationSpec("m2"), MigrationStatus())
    stored = await store.load()
    await store.save_status(stored.status.at_step(STEP_ABORTED, 1.0))
    await store.create(MigrationSpec("m2"), MigrationStatus())  # a finished one may be replaced
    assert (await store.load()).spec.id == "m2"


async def test_an_unreadable_record_is_an_error_not_a_fresh_start(fake_kube, kube):
    fake_kube.seed({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": NAME, "namespace": NS},
                    "data": {"spec.json": "{not json"}})
    with pytest.raises(StoreError, match="unreadable"):
        await MigrationStore(kube, NS, NAME).load()
