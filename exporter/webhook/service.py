"""Wires the webhook receiver, the decision policy and the rollback runner together.

``build_rollback_service`` is what the composition root calls: it checks the safety
preconditions (enforce needs a token and Kubernetes access), chooses the rollbacker by
mode (``KubeRollbacker`` or the ``DryRunRollbacker`` null object), mounts
``POST /webhook/alertmanager`` on the given application and returns the pieces.
``RollbackService.start()`` seeds cooldown/cap from the persisted history and resumes a
rollback interrupted by a restart.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.rollback.api import ENFORCE, ClusterView, Result, Scope, Trigger
from exporter.rollback.backup import backup_store
from exporter.rollback.executor import DryRunRollbacker, KubeRollbacker
from exporter.rollback.plan import Plan
from exporter.rollback.reader import KubePlanner
from exporter.rollback.runner import RollbackRunner
from exporter.rollback.settings import RollbackSettings
from exporter.webhook import decision as dec
from exporter.webhook.receiver import (
    WebhookConfigError, WebhookReceiver, add_webhook_route, build_ssl_context, token_source,
)
from exporter.webhook.settings import WebhookSettings

log = logging.getLogger(__name__)


class Planner(Protocol):
    async def plan(self, scope: Scope, trigger: Trigger) -> Plan: ...


class OfflinePlanner:
    """Without Kubernetes access (demo, static datapaths) a plan cannot be computed: say so."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    async def plan(self, scope: Scope, trigger: Trigger) -> Plan:
        now = self._clock()
        return Plan(f"{int(now)}-offline", scope, trigger, now, scope.nodes,
                    refusal="no Kubernetes access: the rollback plan cannot be computed")


def kill_switch(settings: RollbackSettings) -> Callable[[], bool]:
    """True while ``rollback.kill_switch`` is set or ``rollback.kill_switch_file`` exists."""
    path = settings.kill_switch_file

    def engaged() -> bool:
        return settings.kill_switch or bool(path and os.path.exists(path))

    return engaged


@dataclass
class RollbackService:
    receiver: WebhookReceiver
    runner: RollbackRunner
    ssl_context: ssl.SSLContext | None
    _rollbacker: object

    async def start(self) -> Result | None:
        """Seed cooldown/cap from the recorded history, then resume an interrupted rollback."""
        history = getattr(self._rollbacker, "history", None)
        if history is not None:
            try:
                for started in await history():
                    self.receiver.memory.record_rollback(started)
            except KubeError as exc:
                log.warning("cannot read the rollback history", extra={"kv": {"error": str(exc)}})
        return await self.runner.resume()


def build_rollback_service(
    app: web.Application,
    *,
    webhook: WebhookSettings,
    rollback: RollbackSettings,
    view: ClusterView,
    kube: KubeClient | None,
    registry: CollectorRegistry,
    clock: Callable[[], float] = time.time,
    planner: Planner | None = None,
) -> RollbackService:
    """Mount the receiver on ``app``; raises ``WebhookConfigError`` when unsafe to start.

    ``planner`` replaces the planner chosen by the Kubernetes access (the demo plans
    against its simulated cluster); it is only accepted in dry-run mode.
    """
    token = token_source(webhook, rollback.mode)
    if rollback.mode == ENFORCE and kube is None:
        raise WebhookConfigError("rollback mode enforce needs Kubernetes access (kube.enabled)")
    if planner is not None:
        if rollback.mode == ENFORCE:
            raise WebhookConfigError("a substitute planner is for dry-run only")
        rollbacker: KubeRollbacker | DryRunRollbacker = DryRunRollbacker()
    elif kube is None:
        planner = OfflinePlanner(clock)
        rollbacker = DryRunRollbacker()
    else:
        planner = KubePlanner(kube, rollback, store=backup_store(kube, rollback), clock=clock)
        rollbacker = KubeRollbacker(kube, rollback, clock=clock) if rollback.mode == ENFORCE \
            else DryRunRollbacker()
    runner = RollbackRunner(planner=planner, rollbacker=rollbacker, registry=registry)
    receiver = WebhookReceiver(
        settings=webhook, policy=dec.Policy.from_settings(webhook, rollback), view=view,
        runner=runner, registry=registry, token=token, kill_switch=kill_switch(rollback), clock=clock,
    )
    add_webhook_route(app, receiver)
    log.info("webhook receiver ready", extra={"kv": {
        "mode": rollback.mode, "auth": "bearer" if token else "none",
        "tls": "mtls" if webhook.tls.client_ca_file else ("tls" if webhook.tls.enabled else "off"),
    }})
    return RollbackService(receiver, runner, build_ssl_context(webhook.tls), rollbacker)
