"""Rollbackers: ``KubeRollbacker`` executes a plan against the API, ``DryRunRollbacker`` only reports it.

``KubeRollbacker.rollback(plan)``:

* refuses (changing nothing) a refused plan, or when another replica holds the Lease;
* one rollback at a time per process (``asyncio.Lock``) and per cluster (Lease). The
  Lease is renewed on a timer while the rollback runs, however long one action takes,
  and checked immediately before every write (actions, progress, Events): a replica that
  lost it stops at once, records nothing more, and never takes it back mid-run;
* persists progress after every action (``state.StateStore``) as a compare-and-swap on
  the state ConfigMap, so a stale writer gets a conflict and stops. The holder reloads
  the progress after taking the Lease and never repeats an action recorded as done. An
  unfinished rollback found there is finished first, from where it stopped, instead of
  the given plan (the result then carries the interrupted plan's id: the caller plans
  its scope again); ``resume()`` does the same when no other replica holds the Lease;
* applies each action idempotently and verifies it before the next (``actions``);
* a failure stops at once and reports what was done and what failed. Nothing in the
  plan deletes kube-proxy, runs ``kube-proxy --cleanup`` or unsets ``k8sServiceHost``,
  so stopping mid-way leaves kube-proxy running alongside the agents (no worse);
* records Events (``RollbackStarted``/``Succeeded``/``Failed``/``Refused``) on the state
  ConfigMap, with the alert fingerprints, and the end time of each completed rollback
  (succeeded or failed) in the history that seeds cooldown and cap.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Final

from exporter.kube.client import KubeClient
from exporter.kube.errors import Forbidden, KubeError
from exporter.kube.events import Regarding, event_body, record_event
from exporter.rollback.appliers import ATTEMPTS, ActionRunner, StepFailed, pod_ready
from exporter.rollback.roles import DRY_RUN, ENFORCE, FAILED, NOOP, PLANNED, REFUSED, SUCCEEDED, Result
from exporter.rollback.lease import LeaseLock, LeaseLost, Timer
from exporter.rollback.actions import READY, Action, Plan, Step
from exporter.rollback.settings import RollbackSettings
from exporter.rollback.state import RUNNING, RollbackState, StateConflict, StateError, StateStore

__all__ = ["ATTEMPTS", "DryRunRollbacker", "KubeRollbacker", "StepFailed", "pod_ready"]

log = logging.getLogger(__name__)

_PERMISSION_HINT: Final = ("; grant it to the exporter (exporter/rollback/permissions.py lists "
                           "every permission the rollback needs)")
_NOT_OURS: Final = (LeaseLost, StateConflict)


class DryRunRollbacker:
    """The null object: logs exactly the plan enforce would run and changes nothing."""

    mode = DRY_RUN

    async def rollback(self, plan: Plan) -> Result:
        status = {READY: PLANNED, NOOP: NOOP, REFUSED: REFUSED}[plan.status]
        count = len(plan.actions())
        message = plan.refusal or (f"dry-run: would run {count} action(s); nothing was changed"
                                   if count else "dry-run: nothing to do")
        log.info("rollback plan (dry-run, nothing changed)", extra={"kv": {
            "plan": plan.id, "status": status, "scope": plan.scope.describe(),
            "fingerprints": ",".join(plan.trigger.fingerprints), "steps": plan.render(),
        }})
        return Result(status, DRY_RUN, message, plan.id)


class KubeRollbacker:
    """Executes rollback plans against the Kubernetes API; see the module docstring."""

    mode = ENFORCE

    def __init__(
        self,
        kube: KubeClient,
        settings: RollbackSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timer: Timer = asyncio.sleep,
        store: StateStore | None = None,
        lease: LeaseLock | None = None,
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._clock = clock
        self._timer = timer
        self.identity = settings.identity or socket.gethostname()
        self._store = store or StateStore(kube, settings.namespace, settings.state_configmap)
        self._lease = lease or LeaseLock(kube, settings.namespace, settings.lease_name, self.identity,
                                         settings.lease_seconds, clock)
        self._actions = ActionRunner(kube, settings, clock=clock, sleep=sleep,
                                     guard=self._lease.ensure_held, watch=self._lease.raise_if_lost)
        self._lock = asyncio.Lock()
        self.last_run: Plan | None = None  # the plan executed last (a resumed one included)

    @property
    def resume_interval(self) -> float:
        """How often a replica looks for an interrupted rollback to resume."""
        return self._settings.lease_seconds / 4

    # --- entry points -------------------------------------------------------------------

    async def rollback(self, plan: Plan) -> Result:
        if plan.status == REFUSED:
            await self._event(plan, "RollbackRefused", f"refused: {plan.refusal}", warning=True,
                              guarded=False)
            return Result(REFUSED, ENFORCE, plan.refusal, plan.id)
        if plan.status == NOOP:
            return Result(NOOP, ENFORCE, "nothing to roll back: " + "; ".join(plan.notes), plan.id)
        return await self._locked(plan)

    async def resume(self) -> Result | None:
        """Finish a rollback recorded as running (interrupted by a crash or a lost Lease).

        None when there is none, or while another replica holds a live Lease (that
        replica is running it, or the Lease of a dead one has not expired yet): the
        caller tries again later.
        """
        return await self._locked(None) if await self.pending() else None

    async def pending(self) -> bool:
        """True when a rollback is recorded as running and no other replica holds the Lease."""
        try:
            state = await self._store.load()
            if state is None or state.status != RUNNING:
                return False
            holder = await self._lease.live_holder()
        except (KubeError, StateError) as exc:
            log.error("cannot read rollback state", extra={"kv": {"error": str(exc)}})
            return False
        if holder:
            log.info("interrupted rollback waits for the Lease", extra={"kv": {
                "plan": state.plan.id, "holder": holder}})
        return not holder

    async def history(self) -> list[float]:
        """End times of completed rollbacks (seeds the decision's cooldown and cap)."""
        return await self._store.history()

    async def _locked(self, plan: Plan | None) -> Result:
        plan_id = plan.id if plan else ""
        async with self._lock:
            try:
                if not await self._lease.acquire():
                    return Result(REFUSED, ENFORCE, f"another replica ({self._lease.holder}) holds "
                                  f"{self._lease.ref}: one rollback at a time", plan_id)
            except KubeError as exc:
                return Result(FAILED, ENFORCE, f"cannot take the rollback Lease: {_explain(exc)}", plan_id)
            try:
                async with self._lease.kept(self._timer):
                    return await self._start_or_resume(plan)
            finally:
                try:
                    await self._lease.release()
                except KubeError as exc:
                    log.warning("cannot release the rollback Lease", extra={"kv": {"error": str(exc)}})

    async def _start_or_resume(self, plan: Plan | None) -> Result:
        plan_id = plan.id if plan else ""
        try:
            state = await self._store.load()  # after taking the Lease: the holder's latest progress
        except (KubeError, StateError) as exc:
            return Result(FAILED, ENFORCE, f"cannot read rollback state: {_explain(exc)}; "
                          "nothing was changed", plan_id)
        if state is not None and state.status == RUNNING:
            prefix = (f"finished the interrupted rollback {state.plan.id} instead of starting "
                      f"{plan.id}; " if plan is not None and state.plan.id != plan.id else "")
            log.info("resuming interrupted rollback", extra={"kv": {
                "plan": state.plan.id, "done": len(state.done), "of": len(state.plan.actions()),
                "previous_holder": state.holder}})
            state.holder = self.identity
            started = False
        elif plan is None:
            return Result(NOOP, ENFORCE, "no interrupted rollback to resume")
        else:
            prefix, started, now = "", True, self._clock()
            state = RollbackState(plan, started_at=now, updated_at=now, holder=self.identity)
        try:
            await self._save(state)  # claims the progress: a stale writer's next save conflicts
        except _NOT_OURS as exc:
            return Result(FAILED, ENFORCE, f"{exc}; nothing was changed", plan_id)
        except KubeError as exc:
            return Result(FAILED, ENFORCE, f"cannot record rollback progress in "
                          f"{self._store.location}: {_explain(exc)}; nothing was changed", plan_id)
        if started:
            await self._event(state.plan, "RollbackStarted",
                              f"rolling back {state.plan.scope.describe()}: {state.plan.trigger.reason}")
        self.last_run = state.plan
        result = await self._execute(state)
        if prefix:
            result = Result(result.status, result.mode, prefix + result.message, result.plan_id, result.done)
        return result

    # --- execution ------------------------------------------------------------------------

    async def _execute(self, state: RollbackState) -> Result:
        plan = state.plan
        done = [a.describe() for i, _, a in plan.actions() if i in state.done]
        for index, step, action in plan.actions():
            if index in state.done:
                continue
            log.info("rollback action", extra={"kv": {"plan": plan.id, "step": step.name,
                                                      "action": action.describe()}})
            try:
                await self._actions.apply(action, state.restarting, lambda: self._save(state))
                state.done.append(index)
                done.append(action.describe())
                await self._save(state)
            except _NOT_OURS as exc:
                return self._stopped(plan, action, exc, done)
            except (StepFailed, KubeError) as exc:
                return await self._failed(state, step, action, exc, done)
        state.status = SUCCEEDED
        state.message = f"rolled back {plan.scope.describe()} ({len(done)} action(s))"
        try:
            await self._save(state, ended=True)
        except _NOT_OURS as exc:
            return self._stopped(plan, None, exc, done)
        except KubeError as exc:
            log.error("cannot record rollback progress", extra={"kv": {"error": str(exc)}})
        await self._event(plan, "RollbackSucceeded", state.message)
        return Result(SUCCEEDED, ENFORCE, state.message, plan.id, tuple(done))

    async def _failed(self, state: RollbackState, step: Step, action: Action,
                      exc: StepFailed | KubeError, done: list[str]) -> Result:
        text = _explain(exc) if isinstance(exc, KubeError) else str(exc)
        message = (f"step {step.name} failed at '{action.describe()}': {text}. Stopped; "
                   f"{len(done)} action(s) done before. kube-proxy was not removed and "
                   "k8sServiceHost was not touched")
        state.status, state.message = FAILED, message
        try:
            await self._save(state, ended=True)
        except (*_NOT_OURS, KubeError) as save_exc:
            log.error("cannot record rollback progress", extra={"kv": {"error": str(save_exc)}})
        await self._event(state.plan, "RollbackFailed", message, warning=True)
        return Result(FAILED, ENFORCE, message, state.plan.id, tuple(done))

    def _stopped(self, plan: Plan, action: Action | None, exc: Exception, done: list[str]) -> Result:
        """Another replica holds the rollback now: stop without writing anything more."""
        where = f" at '{action.describe()}'" if action is not None else " after the last action"
        message = (f"stopped{where}: {exc}. Nothing more was written; the Lease holder continues "
                   f"from the recorded progress ({len(done)} action(s) done here or before)")
        log.warning("rollback stopped: Lease lost", extra={"kv": {"plan": plan.id, "message": message}})
        return Result(FAILED, ENFORCE, message, plan.id, tuple(done))

    async def _save(self, state: RollbackState, *, ended: bool = False) -> None:
        """Persist progress while holding the Lease; ``ended`` adds it to the history."""
        await self._lease.ensure_held()
        state.updated_at = self._clock()
        await self._store.save(state, ended_at=state.updated_at if ended else None)

    # --- records ---------------------------------------------------------------------------

    async def _event(self, plan: Plan, reason: str, message: str, *, warning: bool = False,
                     guarded: bool = True) -> None:
        """An Event on the state ConfigMap; while running, only if we still hold the Lease."""
        if guarded:
            try:
                await self._lease.ensure_held()
            except (LeaseLost, KubeError) as exc:
                log.warning("rollback event not recorded", extra={"kv": {
                    "reason": reason, "message": message, "error": str(exc)}})
                return
        s = self._settings
        prints = ",".join(plan.trigger.fingerprints)
        text = f"{message} [plan {plan.id}" + (f"; alerts {prints}" if prints else "") + "]"
        await record_event(self._kube, event_body(
            Regarding("ConfigMap", s.namespace, s.state_configmap), reason=reason, message=text,
            action="Rollback", instance=self.identity, now=self._clock(), warning=warning,
            prefix="kpr-exporter-rollback."))


def _explain(exc: KubeError | StateError) -> str:
    return str(exc) + (_PERMISSION_HINT if isinstance(exc, Forbidden) else "")
