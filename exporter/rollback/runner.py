"""Runs rollbacks in the background, one at a time, and exports what happened.

``RollbackRunner.start(scope, trigger)`` flips ``busy`` at once (so the webhook's next
decision sees it), then, in a background task, finishes an interrupted rollback first
(if the rollbacker can resume one), plans the asked scope (read-only) on the cluster as
it is then, and hands that plan to the rollbacker. So a new alert whose scope is wider
than the interrupted plan still gets the rest rolled back. Every run ends in one
structured log line with the alert fingerprints and one increment of
``kpr_rollbacks_total{result,mode}``; ``kpr_rollback_in_progress`` is 1 meanwhile.

``keep_resuming(interval, timer)`` looks for an interrupted rollback every ``interval``
seconds, for as long as the process runs: whichever replica next holds the Lease
finishes it (the Lease of a dead holder expires within its duration).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from exporter.kube.errors import KubeError
from exporter.rollback.roles import (
    CLUSTER, FAILED, NOOP, RESULTS, SUCCEEDED, Planner, Result, Rollbacker, Scope, Trigger,
)
from exporter.rollback.actions import Plan

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

    async def keep_resuming(self, interval: float, timer: Callable[[float], Awaitable[object]],
                            on_result: Callable[[Result], None] | None = None) -> None:
        """Forever: try ``resume()`` now and then every ``interval`` seconds (``timer``)."""
        pending = getattr(self._rollbacker, "pending", None)
        if pending is None:
            return  # dry-run: nothing is ever interrupted
        while True:
            # Checked first without flipping ``busy``: a poll neither defers an alert nor
            # shows as a rollback in progress.
            result = await self.resume() if not self._busy and await pending() else None
            if result is not None:
                self._log(None, Trigger("resume of an interrupted rollback", (), "resume"), result)
                if on_result is not None:
                    on_result(result)
            await timer(interval)

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
        resume = getattr(self._rollbacker, "resume", None)
        first = await resume() if resume is not None else None
        if first is not None and not first.ok:
            result = Result(first.status, first.mode, f"the interrupted rollback {first.plan_id} did "
                            f"not finish: {first.message}; {scope.describe()} was not planned",
                            first.plan_id, first.done)
            self._log(None, trigger, result)
            return result
        plan: Plan | None = None
        for attempt in range(2):  # again when the rollbacker finished another interrupted plan
            rest = self._rest(scope) if first is not None else scope
            if rest is None:
                result = Result(NOOP, self.mode, f"{scope.describe()} was covered by it")
                break
            try:
                plan = await self._planner.plan(rest, trigger)
            except KubeError as exc:
                result = Result(FAILED, self.mode, f"cannot read the cluster to plan the rollback: "
                                f"{exc}; nothing was changed")
                break
            self.last_plan = plan
            result = await self._rollbacker.rollback(plan)
            if not result.ok or result.plan_id == plan.id or attempt:
                break
            first = _then(first, result) if first is not None else result
        if first is not None:
            result = _then(first, result)
        self._log(plan, trigger, result)
        return result

    def _rest(self, scope: Scope) -> Scope | None:
        """``scope`` without the nodes of the interrupted plan just finished (None: nothing left)."""
        finished = getattr(self._rollbacker, "last_run", None)
        covered = set(finished.nodes) if finished is not None else set()
        left = set(scope.nodes) - covered
        if scope.kind == CLUSTER:
            return Scope.cluster(left)  # switched-off nodes are no longer planned
        return Scope.of_nodes(left) if left else None

    def _log(self, plan: Plan | None, trigger: Trigger, result: Result) -> None:
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "rollback finished", extra={"kv": {
            "result": result.status, "mode": result.mode, "plan": result.plan_id,
            "scope": plan.scope.describe() if plan else "", "nodes": ",".join(plan.nodes) if plan else "",
            "fingerprints": ",".join(trigger.fingerprints), "trigger": trigger.source,
            "reason": trigger.reason, "message": result.message,
        }})


def _then(first: Result, second: Result) -> Result:
    """One result for an interrupted rollback finished first and the asked plan after it."""
    head = f"finished the interrupted rollback {first.plan_id} first ({first.message})"
    if second.status == NOOP:
        return Result(SUCCEEDED if first.ok else first.status, first.mode,
                      f"{head}; nothing more to do for this alert ({second.message})",
                      first.plan_id, first.done)
    return Result(second.status, second.mode, f"{head}; then: {second.message}", second.plan_id,
                  first.done + second.done)
