"""The exporter runs the migration controller only when asked, with its metrics."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry

from exporter import config
from exporter.app_migrate import start_migration


def test_off_unless_enabled_and_on_with_its_metrics_when_enabled():
    settings = config.Settings()
    spawned: list[str] = []

    def spawn(coro, name):
        spawned.append(name)
        coro.close()

    registry = CollectorRegistry()
    kw = dict(registry=registry, spawn=spawn, clock=lambda: 0.0, timer=None)
    assert start_migration(object(), settings, **kw) is None and spawned == []
    enabled = replace(settings, migrate=replace(settings.migrate, enabled=True))
    controller = start_migration(object(), enabled, **kw)
    assert controller is not None and spawned == ["migration"]
    assert not controller.enforce  # rollback.mode defaults to dry-run: it only logs
    assert registry.get_sample_value("kpr_migration_step", {"step": "pending"}) == 1
