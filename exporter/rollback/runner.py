"""Runs rollbacks in the background, one at a time, and exports what happened.

``RollbackRunner.start(scope, trigger)`` flips ``busy`` at once (so the webhook's next
decision sees it), then plans (read-only) and hands the plan to the rollbacker in a
background task. Every run ends in one structured log line with the alert fingerprints
and one increment of ``kpr_rollbacks_total{result,mode}``; ``kpr_rollback_in_progress``
is 1 meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from exporter.kube.errors import KubeError
from exporter.rollback.api import FAILED, RESULTS, Planner, Result, Rollbacker, Scope, Trigger
from exporter.rollback.plan import Plan

log = logging.getLogger(__name__)


class Resumable(Protocol):
    async def resume(self) -> Result | None: ...


class RollbackRunner:
    """Single-flight background execution of plans, with metrics and a log line per run."""

    def __init__(self, *, planner: Planner, rollbacker: Rollbacker, registry: CollectorRegistry) -> None:
        self._planner = planner
        self._rollbacker = rollbacker
        self.mode = rollbacker.mode
        self._task: asyncio.Task[Result] | None = None
        self._busy = False
        self.last_plan: Plan | None = None
        self.last_result: Result | None = None
        self._total = Counter("kpr_rollbacks", "Rollbacks by result and mode.", ["result", "mode"],
                              registry=registry)
        for result in RESULTS:
            self._total.labels(result, self.mode)
        self._in_progress = Gauge("kpr_rollback_in_progress", "1 while a rollback runs.",
                                  registry=registry)

    @property
    def busy(self) -> bool:
        return self._busy

    def start(self, scope: Scope, trigger: Trigger) -> asyncio.Task[Result]:
        """Start a rollback in the background; raises RuntimeError when one is running."""
        if self._busy:
            raise RuntimeError("a rollback is already running")
        self._enter()
        self._task = asyncio.ensure_future(self._guarded(self._plan_and_run(scope, trigger)))
        return self._task

    async def run(self, scope: Scope, trigger: Trigger) -> Result:
        """Plan and run in the foreground (CLI)."""
        return await self.start(scope, trigger)

    async def resume(self) -> Result | None:
        """Finish a rollback interrupted by a restart, if the rollbacker can (enforce)."""
        resume = getattr(self._rollbacker, "resume", None)
        if resume is None or self._busy:
            return None
        self._enter()
        result = await self._guarded(resume())
        return result

    async def wait(self) -> Result | None:
        """The result of the current or last background run."""
        return await self._task if self._task is not None else None

    def _enter(self) -> None:
        self._busy = True
        self._in_progress.set(1)

    async def _guarded(self, work) -> Result:
        result: Result | None = None
        try:
            result = await work
        except Exception as exc:  # a bug or an unexpected library error: report, never crash the loop
            log.exception("rollback crashed")
            result = Result(FAILED, self.mode, f"rollback crashed: {exc}")
        finally:
            self._busy = False
            self._in_progress.set(0)
        if result is not None:
            self.last_result = result
            self._total.labels(result.status, self.mode).inc()
        return result

    async def _plan_and_run(self, scope: Scope, trigger: Trigger) -> Result:
        try:
            plan = await self._planner.plan(scope, trigger)
        except KubeError as exc:
            result = Result(FAILED, self.mode, f"cannot read the cluster to plan the rollback: {exc}; "
                                               "nothing was changed")
            self._log(None, trigger, result)
            return result
        self.last_plan = plan
        result = await self._rollbacker.rollback(plan)
        self._log(plan, trigger, result)
        return result

    def _log(self, plan: Plan | None, trigger: Trigger, result: Result) -> None:
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "rollback finished", extra={"kv": {
            "result": result.status, "mode": result.mode, "plan": result.plan_id,
            "scope": plan.scope.describe() if plan else "", "nodes": ",".join(plan.nodes) if plan else "",
            "fingerprints": ",".join(trigger.fingerprints), "trigger": trigger.source,
            "reason": trigger.reason, "message": result.message,
        }})
