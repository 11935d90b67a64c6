"""The deciding instance's migration controller (part of the composition root).

With ``migrate.enabled`` the exporter carries out the migration recorded by ``kpr-exporter
migrate start``, so a closed laptop does not stop it. It acts only in ``rollback.mode``
enforce; in dry-run it logs the step it would run. It defers to the webhook's rollback
runner while that one is busy (the rollback wins), and the rollback's kill-switch stops it.
Its metrics (``kpr_migration_*``) are registered whenever the controller runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.kube.client import KubeClient
from exporter.migrate.cli import available_gates
from exporter.migrate.gates.registry import from_settings
from exporter.migrate.controller import MigrationController
from exporter.migrate.metrics import MigrationMetrics
from exporter.migrate.model import KNOWN_GATES
from exporter.rollback.roles import ENFORCE
from exporter.roles import Clock
from exporter.webhook.service import kill_switch

log = logging.getLogger(__name__)

Spawn = Callable[[Awaitable[Any], str], None]


def start_migration(kube: KubeClient, settings: Any, *, registry: CollectorRegistry, spawn: Spawn,
                    clock: Clock, timer: Callable[[float], Awaitable[Any]],
                    rollback_busy: Callable[[], bool] = lambda: False) -> MigrationController | None:
    """Build and spawn the controller when ``migrate.enabled``; None otherwise."""
    if not settings.migrate.enabled:
        return None
    gates, problems = available_gates(KNOWN_GATES, from_settings(settings, 300.0, kube=kube,
                                                                 clock=clock, sleep=timer))
    for problem in problems:
        log.warning("migration %s", problem)
    controller = MigrationController(
        kube, settings.rollback, settings.migrate, enforce=settings.rollback.mode == ENFORCE,
        gates=gates, clock=clock, sleep=timer, timer=timer, metrics=MigrationMetrics(registry),
        kill_switch=kill_switch(settings.rollback), rollback_busy=rollback_busy)
    spawn(controller.keep_running(), "migration")
    return controller
