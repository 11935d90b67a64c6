"""The migration controller: reads the recorded migration, takes the Lease, applies what
people asked (pause, resume, promote, abort), runs steps until one has to wait, and
persists the status, an Event and a log line after every step.

Safety, in the order ``tick()`` checks it:

* dry-run (not enforce): the controller only logs the step it would run; nothing is
  written, not even the status;
* the kill-switch (``rollback.kill_switch`` or its file) stops it before anything;
* one migration or rollback at a time: the rollback's own Lease is taken for each tick
  and released after it, so a rollback (the webhook's, or ``kpr-exporter rollback``) can
  take it between two steps; while another holder has it the controller waits;
* a rollback wins: a rollback recorded as running, or finished after the migration started
  (not the migration's own abort), turns the migration into an abort;
* a failed step does what ``spec.on_fail`` says (abort by default); an unreachable API is
  retried at the next tick; a lost Lease or a status written by another writer stops the
  tick without writing anything more.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.kube.events import Regarding, event_body, record_event
from exporter.migrate import finish
from exporter.migrate.abort import abort_migration, remove_migration_pieces
from exporter.migrate.advance import Advance, Preflight
from exporter.migrate.gates.base import Gate
from exporter.migrate.metrics import MigrationMetrics
from exporter.migrate.model import (
    ABORT, BATCH_STEPS, FINAL_STEPS, STEP_ABORTED, STEP_ABORTING, STEP_GATES, STEP_PENDING, STEP_PREFLIGHT,
    MigrationSpec, MigrationStatus,
)
from exporter.migrate.settings import MigrateSettings
from exporter.migrate.steps import Steps
from exporter.migrate.store import MigrationStore, Request, StoreConflict, StoreError
from exporter.preflight import evaluate
from exporter.preflight.gather import gather
from exporter.rollback.appliers import StepFailed
from exporter.rollback.backup import backup_store
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.lease import LeaseLock, LeaseLost, Timer
from exporter.rollback.reader import KubePlanner
from exporter.rollback.settings import RollbackSettings
from exporter.rollback.state import RUNNING, StateError, StateStore

log = logging.getLogger(__name__)
_STOP = (LeaseLost, StoreConflict)


class MigrationController:
    """See the module docstring. ``enforce`` False: dry-run."""

    def __init__(self, kube: KubeClient, rollback: RollbackSettings, migrate: MigrateSettings, *,
                 enforce: bool, gates: Mapping[str, Gate] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 timer: Timer = asyncio.sleep, metrics: MigrationMetrics | None = None,
                 upgrade: finish.Upgrade | None = None, confirm: Callable[[str], bool] | None = None,
                 preflight: Preflight | None = None, kill_switch: Callable[[], bool] = lambda: False,
                 rollback_busy: Callable[[], bool] = lambda: False,
                 say: Callable[[str], None] | None = None) -> None:
        self._kube, self._r, self._m, self.enforce = kube, rollback, migrate, enforce
        self._clock, self._sleep, self._timer, self._metrics = clock, sleep, timer, metrics
        self._kill, self._busy, self._say = kill_switch, rollback_busy, say
        self.identity = rollback.identity or socket.gethostname()
        self.store = MigrationStore(kube, rollback.namespace, migrate.state_configmap)
        self._lease = LeaseLock(kube, rollback.namespace, rollback.lease_name, self.identity,
                                rollback.lease_seconds, clock)
        self.steps = Steps(kube, rollback, migrate, clock=clock, sleep=sleep,
                           guard=self._lease.ensure_held, watch=self._lease.raise_if_lost)
        self._backups = backup_store(kube, rollback)
        self._rollbacks = StateStore(kube, rollback.namespace, rollback.state_configmap)

        async def default_preflight():  # type: ignore[no-untyped-def]
            return evaluate(await gather(kube, rollback, self._backups), rollback)

        async def cluster_wide() -> finish.ClusterWide:
            return await finish.choose(kube, rollback, migrate, self.steps.actions, upgrade=upgrade,
                                       confirm=confirm, guard=self._lease.ensure_held)

        self.advance = Advance(kube, rollback, migrate, self.steps, backups=self._backups,
                               preflight=preflight or default_preflight, gates=gates or {},
                               cluster_wide=cluster_wide, clock=clock)
        self._said: tuple[str, ...] = ()

    async def run(self) -> MigrationStatus | None:
        """Tick until the migration is finished (foreground ``migrate run``); None: none recorded."""
        while True:
            status = await self.tick()
            if status is None or status.step in FINAL_STEPS:
                return status
            await self._sleep(self._m.poll_interval_seconds)

    async def keep_running(self) -> None:
        """Forever (in the exporter): a tick every poll interval; errors are logged."""
        while True:
            try:
                await self.tick()
            except Exception:  # a bug must not end the loop that also resumes after crashes
                log.exception("migration tick crashed")
            await self._timer(self._m.poll_interval_seconds)

    async def tick(self) -> MigrationStatus | None:
        try:
            stored = await self.store.load()
        except (KubeError, StoreError) as exc:
            log.error("cannot read the migration", extra={"kv": {"error": str(exc)}})
            return None
        if stored is None:
            return None
        if self._metrics is not None:
            self._metrics.observe(stored.status)
        status = stored.status
        if status.step in FINAL_STEPS:
            return status
        if not self.enforce:
            self._once(f"dry-run: migration {stored.spec.id} would run step {status.step}; nothing "
                       "is changed (rollback.mode=enforce, or migrate run --yes, acts)")
            return status
        if self._kill():
            self._once("kill-switch on: the migration does nothing until it is off")
            return status
        if self._busy() or not await self._lease.acquire():
            self._once(f"waiting: {self._lease.holder or 'a rollback'} holds {self._lease.ref}")
            return status
        try:
            async with self._lease.kept(self._timer):
                return await self._act()
        except _STOP as exc:
            log.warning("migration tick stopped", extra={"kv": {"error": str(exc)}})
            return status
        except KubeError as exc:  # the API is unreachable or refused: the next tick tries again
            log.warning("migration tick failed; retried", extra={"kv": {"error": str(exc)}})
            return status
        finally:
            try:
                await self._lease.release()
            except KubeError as exc:
                log.warning("cannot release the Lease", extra={"kv": {"error": str(exc)}})

    def _once(self, text: str) -> None:
        if text not in self._said:
            self._said = (*self._said[-20:], text)
            log.info(text)
            if self._say is not None:
                self._say(text)

    # --- acting (holding the Lease) ----------------------------------------------------

    async def _act(self) -> MigrationStatus | None:
        stored = await self.store.load()  # after taking the Lease: the latest status
        if stored is None:
            return None
        spec, status = stored.spec, stored.status
        before = status
        status = self._requests(spec, status, stored.request)
        if status.step not in (STEP_ABORTING, *FINAL_STEPS):
            status = await self._rollback_wins(status)
        if status.step == STEP_PENDING:
            status = status.at_step(STEP_PREFLIGHT, self._clock(), f"migration {spec.id} started",
                                    started_at=self._clock())
        if status != before:
            await self._record(spec, before, status)
        while not status.paused and status.step not in FINAL_STEPS:
            if status.step == STEP_ABORTING:
                return await self._abort(spec, status)
            current = status
            try:
                status = await self.advance.step(spec, status, self._save)
            except StepFailed as exc:
                status = self._failed(spec, status, str(exc))
            except KubeError as exc:
                log.warning("migration step will be retried", extra={"kv": {
                    "step": status.step, "error": str(exc)}})
                return status
            if status == current:
                return status  # waiting (soak, owner)
            await self._record(spec, current, status)
            if (status.step, status.batch) == (current.step, current.batch) and not status.paused:
                return status  # a message only (still waiting)
        return status

    def _failed(self, spec: MigrationSpec, status: MigrationStatus, why: str) -> MigrationStatus:
        text = f"step {status.step} failed: {why}"
        if status.step not in BATCH_STEPS or spec.on_fail != ABORT:
            # Before the first batch nothing is switched; at the end every node passed its
            # gates: a person decides. A batch that cannot be proven is rolled back.
            return replace(status, paused=True, pause_reason=text, message=text,
                           updated_at=self._clock())
        return status.at_step(STEP_ABORTING, self._clock(), text + " -> abort", aborted=True,
                              abort_reason=text)

    def _requests(self, spec: MigrationSpec, status: MigrationStatus, request: Request
                  ) -> MigrationStatus:
        now, by = self._clock(), request.by or "someone"
        if request.abort and status.step not in (STEP_ABORTING, *FINAL_STEPS):
            return status.at_step(STEP_ABORTING, now, f"abort asked by {by}: {request.abort}",
                                  aborted=True, abort_reason=request.abort, paused=False)
        if request.resume > status.resume_seen:
            status = replace(status, resume_seen=request.resume)
            if status.paused and not request.paused:
                extend = status.soak_extended_seconds
                ends = status.soak_ends(spec.soak_seconds)
                if status.step == STEP_GATES and ends is not None:
                    extend += max(0.0, now - ends) + spec.soak_seconds  # soak again, then gates
                status = replace(status, paused=False, pause_reason="", updated_at=now,
                                 message=f"resumed by {by}", soak_extended_seconds=extend)
        if request.paused and not status.paused:
            status = replace(status, paused=True, pause_reason=f"paused by {by}",
                             message=f"paused by {by}", updated_at=now)
        if request.promote > status.promote_seen:
            status = replace(status, promote_seen=request.promote, promoted=True,
                             message=f"promoted by {by}: the rest of the soak is skipped")
        return status

    async def _rollback_wins(self, status: MigrationStatus) -> MigrationStatus:
        try:
            state = await self._rollbacks.load()
        except StateError as exc:
            log.warning("rollback state unreadable", extra={"kv": {"error": str(exc)}})
            return status
        if state is None or state.plan.trigger.source == "migration":
            return status
        if state.status == RUNNING or state.updated_at >= status.started_at > 0:
            why = (f"rollback {state.plan.id} ({state.status}: {state.plan.trigger.reason}) ran "
                   "during the migration; the rollback wins")
            return status.at_step(STEP_ABORTING, self._clock(), why, aborted=True,
                                  abort_reason=why, paused=False)
        return status

    async def _abort(self, spec: MigrationSpec, status: MigrationStatus) -> MigrationStatus:
        rollbacker = KubeRollbacker(self._kube, self._r, clock=self._clock, sleep=self._sleep,
                                    timer=self._timer, lease=self._lease)
        planner = KubePlanner(self._kube, self._r, store=self._backups, clock=self._clock)
        switched = sorted({*status.migrated, *status.restarted, *status.current_batch}
                          if status.step != STEP_PREFLIGHT else set())
        result = await abort_migration(self._kube, self.steps, rollbacker, planner,
                                       switched=switched, reason=status.abort_reason)
        if not await self._lease.acquire():  # the rollback executor released it at its end
            return status
        if not result.ok:
            failed = replace(status, paused=True, pause_reason=f"abort stopped: {result.message}",
                             message=f"abort stopped: {result.message}", updated_at=self._clock())
            await self._record(spec, status, failed)
            return failed
        await remove_migration_pieces(self.steps, status.cordoned)
        done = status.at_step(STEP_ABORTED, self._clock(), f"aborted ({status.abort_reason}); "
                              f"{result.message}", migrated=(), restarted=(), cordoned=(),
                              paused=False)  # every switched node is back on kube-proxy
        await self._record(spec, status, done)
        return done

    async def _save(self, status: MigrationStatus) -> None:
        await self._lease.ensure_held()
        await self.store.save_status(status)
        if self._metrics is not None:
            self._metrics.observe(status)

    async def _record(self, spec: MigrationSpec, before: MigrationStatus, after: MigrationStatus
                      ) -> None:
        """Persist ``after``, then one Event and one log line for the change."""
        await self._save(after)
        warning = after.step in (STEP_ABORTING, STEP_ABORTED) or (after.paused and not before.paused)
        done = after.history[-1].step if len(after.history) > len(before.history) else after.step
        reason = "Migration" + "".join(p.title() for p in done.split("-"))
        if after.paused and not before.paused:
            reason = "MigrationPaused"
        text = f"[{spec.id}] " + (f"batch {after.batch + 1}: " if after.batch >= 0 else "") + after.message
        log.log(logging.WARNING if warning else logging.INFO, "migration step", extra={"kv": {
            "migration": spec.id, "step": after.step, "batch": after.batch + 1,
            "paused": after.paused, "message": after.message}})
        if self._say is not None:
            self._say(f"{done}: {after.message}")
        try:
            await self._lease.ensure_held()
        except (LeaseLost, KubeError):
            return
        await record_event(self._kube, event_body(
            Regarding("ConfigMap", self._r.namespace, self._m.state_configmap), reason=reason,
            message=text, action="Migrate", instance=self.identity, now=self._clock(),
            warning=warning, prefix="kpr-exporter-migration."))

