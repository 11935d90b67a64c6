"""Wires the webhook receiver, the decision policy and the rollback runner together.

``build_rollback_service`` is what the composition root calls: it checks the safety
preconditions (enforce needs a token and Kubernetes access), chooses the rollbacker by
mode (``KubeRollbacker`` or the ``DryRunRollbacker`` null object), mounts
``POST /webhook/alertmanager`` on the given application and returns the pieces.
``RollbackService.start()`` seeds cooldown/cap from the persisted history (completed
rollbacks only) and resumes a rollback interrupted by a restart; ``run(timer)`` does that
and then keeps looking for an interrupted rollback (one whose holder died keeps its Lease
until it expires), counting each one it completes for cooldown and cap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.datapath.decide import migration_phase
from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.rollback.roles import ENFORCE, FAILED, SUCCEEDED, ClusterView, Result, Scope, Trigger
from exporter.rollback.backup import backup_store
from exporter.rollback.executor import DryRunRollbacker, KubeRollbacker
from exporter.rollback.actions import Plan
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


class StaticView:
    """``ClusterView`` of a fixed node -> datapath map (``--datapath.static``, no Kubernetes).

    The map is the operator's statement of where each node stands, so the phase is known
    from the start: all eBPF is ``after``, a mix ``canary``, none ``before``.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._by_datapath: dict[str, frozenset[str]] = {}
        for node, datapath in mapping.items():
            self._by_datapath[datapath] = self._by_datapath.get(datapath, frozenset()) | {node}
        self._phase = migration_phase(mapping.values(), None)

    def phase(self) -> str:
        return self._phase

    def nodes_by_datapath(self) -> Mapping[str, Collection[str]]:
        return self._by_datapath


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
    _clock: Callable[[], float] = field(default=time.time)

    async def start(self) -> Result | None:
        """Seed cooldown/cap from the recorded history, then resume an interrupted rollback."""
        history = getattr(self._rollbacker, "history", None)
        if history is not None:
            try:
                for ended in await history():
                    self.receiver.memory.record_rollback(ended)
            except KubeError as exc:
                log.warning("cannot read the rollback history", extra={"kv": {"error": str(exc)}})
        result = await self.runner.resume()
        if result is not None:
            self._completed(result)
        return result

    async def run(self, timer: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """``start()``, then look for an interrupted rollback every ``resume_interval``."""
        interval = getattr(self._rollbacker, "resume_interval", None)
        await self.start()
        if interval is None:
            return  # dry-run: nothing to resume
        await timer(interval)
        await self.runner.keep_resuming(interval, timer, self._completed)

    def _completed(self, result: Result) -> None:
        """A resumed rollback that ended counts for cooldown and cap, like a decided one."""
        if result.status in (SUCCEEDED, FAILED):
            self.receiver.memory.record_rollback(self._clock())


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
    return RollbackService(receiver, runner, build_ssl_context(webhook.tls), rollbacker, clock)
