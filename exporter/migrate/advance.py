"""One step of the migration: carry out the current step, verify it, return the next status.

``Advance.step(spec, status, save)`` runs the step ``status.step`` names and returns the
status after it (the caller persists it, writes the Event and the log line). A step that
has to wait (the soak, a GitOps owner) returns the status unchanged or with a message. A
step that fails raises ``StepFailed`` (the caller applies ``spec.on_fail``); a preflight
that fails pauses the migration before anything changed.

Within a batch the agents restart one node at a time; the node being restarted (and the
uid of the pod deleted) is saved before the delete, so a resumed migration never deletes
the replacement.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from exporter.kube.client import KubeClient
from exporter.kube.errors import NotFound
from exporter.kube.resources import DAEMONSETS, NODES
from exporter.migrate import finish
from exporter.migrate.gates.base import (INCONCLUSIVE, BatchContext, Gate, GateResult, Remembers,
                                         decide)
from exporter.migrate.model import (
    ABORT, PAUSE, STEP_ABORTING, STEP_CLEANUP, STEP_CLUSTER_WIDE, STEP_COMPLETED, STEP_DRAIN,
    STEP_EXCLUDE, STEP_GATES, STEP_LABEL, STEP_NODE_CONFIG, STEP_PREFLIGHT, STEP_RESTART,
    STEP_UNCORDON, STEP_VERIFY, GateOutcome, MigrationSpec, MigrationStatus,
)
from exporter.migrate.plan import place_new_nodes, plan_batches
from exporter.migrate.settings import MigrateSettings
from exporter.migrate.steps import Steps
from exporter.preflight import FAIL, Row
from exporter.rollback.appliers import StepFailed
from exporter.rollback.backup import BackupError, BackupStore, take_backup
from exporter.rollback.settings import RollbackSettings

log = logging.getLogger(__name__)
Save = Callable[[MigrationStatus], Awaitable[None]]
Preflight = Callable[[], Awaitable[Sequence[Row]]]


class Advance:
    """Runs steps; see the module docstring."""

    def __init__(self, kube: KubeClient, rollback: RollbackSettings, migrate: MigrateSettings,
                 steps: Steps, *, backups: BackupStore, preflight: Preflight,
                 gates: Mapping[str, Gate], cluster_wide: Callable[[], Awaitable[finish.ClusterWide]],
                 clock: Callable[[], float]) -> None:
        self._kube, self._r, self._m, self._steps = kube, rollback, migrate, steps
        self._backups, self._preflight, self._gates = backups, preflight, gates
        self._cluster_wide, self._clock = cluster_wide, clock

    async def nodes(self) -> list[str]:
        return sorted(n["metadata"]["name"] for n in (await self._kube.list(NODES)).items)

    async def step(self, spec: MigrationSpec, status: MigrationStatus, save: Save) -> MigrationStatus:
        handler = {
            STEP_PREFLIGHT: self._preflight_step, STEP_EXCLUDE: self._exclude,
            STEP_NODE_CONFIG: self._node_config, STEP_DRAIN: self._drain, STEP_LABEL: self._label,
            STEP_RESTART: self._restart, STEP_VERIFY: self._verify, STEP_UNCORDON: self._uncordon,
            STEP_GATES: self._gates_step, STEP_CLUSTER_WIDE: self._cluster_wide_step,
            STEP_CLEANUP: self._cleanup,
        }[status.step]
        return await handler(spec, status, save)

    def _next(self, status: MigrationStatus, step: str, message: str = "", **changes: Any
              ) -> MigrationStatus:
        return status.at_step(step, self._clock(), message, **changes)

    # --- before the first batch -----------------------------------------------------------

    async def _preflight_step(self, spec: MigrationSpec, status: MigrationStatus, _: Save
                              ) -> MigrationStatus:
        try:
            backup = await self._backups.load()
        except BackupError as exc:
            raise StepFailed(f"{exc}; fix or delete it, then resume") from exc
        age = self._clock() - _parse_time(backup.taken_at) if backup else None
        notes: list[str] = []
        if age is None or age > self._m.backup_max_age_seconds:
            report = await take_backup(self._kube, self._r, clock=self._clock)
            await self._backups.save(report.backup)
            notes.append(f"backup taken ({self._backups.location})")
        failed = [r for r in await self._preflight() if r.status == FAIL]
        if failed:
            reason = "preflight failed, nothing was changed: " + "; ".join(
                f"{r.check}: {r.message}" for r in failed)
            return replace(status, paused=True, pause_reason=reason, message=reason,
                           updated_at=self._clock())
        nodes = await self.nodes()
        migrated = await self._already_migrated(nodes)
        batches = plan_batches(nodes, migrated, spec.batches)
        text = f"preflight passed; {len(batches)} batch(es): " + " | ".join(
            ", ".join(b) for b in batches) + ("; " + "; ".join(notes) if notes else "")
        return self._next(status, STEP_EXCLUDE, text, batches=batches, migrated=tuple(migrated))

    async def _already_migrated(self, nodes: Sequence[str]) -> list[str]:
        key, value = self._steps.label
        found = []
        for node in (await self._kube.list(NODES)).items:
            labels = node["metadata"].get("labels") or {}
            if labels.get(key) == value and node["metadata"]["name"] in nodes:
                found.append(node["metadata"]["name"])
        return found

    async def _exclude(self, spec: MigrationSpec, status: MigrationStatus, _: Save) -> MigrationStatus:
        await self._steps.exclude_kube_proxy()
        return self._next(status, STEP_NODE_CONFIG)

    async def _node_config(self, spec: MigrationSpec, status: MigrationStatus, _: Save
                           ) -> MigrationStatus:
        await self._steps.create_node_config()
        r, m = self._r, self._m
        return self._start_batch(status, 0, f"CiliumNodeConfig {r.cilium.namespace}/"
                                 f"{m.node_config} turns KPR on for labelled nodes")

    def _start_batch(self, status: MigrationStatus, index: int, done: str) -> MigrationStatus:
        if index >= len(status.batches):
            return self._next(status, STEP_CLUSTER_WIDE, f"{done}; every batch passed",
                              soak_started=None)
        return self._next(status, STEP_DRAIN, f"{done}; next: batch {index + 1}/"
                          f"{len(status.batches)}: " + ", ".join(status.batches[index]),
                          batch=index, restarted=(),
                          restarting={}, soak_started=None, soak_extended_seconds=0.0,
                          promoted=False, batch_started=self._clock())

    # --- one batch -----------------------------------------------------------------------

    async def _drain(self, spec: MigrationSpec, status: MigrationStatus, save: Save) -> MigrationStatus:
        if not spec.drain:
            return self._next(status, STEP_LABEL, "not draining (--drain not asked)")
        batch = status.current_batch
        cordoned = await self._steps.cordon(batch, status.cordoned)
        await save(replace(status, cordoned=cordoned))  # before the drain: a resume uncordons
        warnings = await self._steps.drain(batch)
        return self._next(status, STEP_LABEL, f"cordoned and drained {', '.join(batch)}",
                          cordoned=cordoned, warnings=(*status.warnings, *warnings))

    async def _label(self, spec: MigrationSpec, status: MigrationStatus, _: Save) -> MigrationStatus:
        await self._remember(spec, status)
        await self._steps.label_nodes(status.current_batch)
        key, value = self._steps.label
        return self._next(status, STEP_RESTART, f"labelled {', '.join(status.current_batch)} "
                          f"{key}={value}")

    async def _restart(self, spec: MigrationSpec, status: MigrationStatus, save: Save) -> MigrationStatus:
        for node in status.current_batch:
            if node in status.restarted:
                continue
            restarting = dict(status.restarting)

            async def record(current: dict[str, str] = restarting) -> None:
                await save(replace(status, restarting=dict(current)))

            await self._steps.restart_agent(node, restarting, record)
            status = replace(status, restarting=restarting, restarted=(*status.restarted, node),
                             updated_at=self._clock())
            await save(status)
        return self._next(status, STEP_VERIFY, "restarted the Cilium agents of "
                          + ", ".join(status.current_batch))

    async def _verify(self, spec: MigrationSpec, status: MigrationStatus, _: Save) -> MigrationStatus:
        details = [f"{n}: {await self._steps.verify_node(n, spec.wait_seconds)}"
                   for n in status.current_batch]
        migrated = tuple(sorted({*status.migrated, *status.current_batch}))
        return self._next(status, STEP_UNCORDON, "proven on KPR: " + " | ".join(details),
                          migrated=migrated, restarting={})

    async def _uncordon(self, spec: MigrationSpec, status: MigrationStatus, _: Save) -> MigrationStatus:
        mine = [n for n in status.current_batch if n in status.cordoned]
        await self._steps.uncordon(mine)
        cordoned = tuple(n for n in status.cordoned if n not in mine)
        return self._next(status, STEP_GATES, f"soak {spec.soak_seconds:.0f} s, then gates "
                          f"{', '.join(spec.gates) or 'NONE'}", cordoned=cordoned,
                          soak_started=self._clock())

    async def _context(self, spec: MigrationSpec, status: MigrationStatus) -> BatchContext:
        nodes = await self.nodes()
        return BatchContext(batch=status.current_batch, migrated=status.migrated,
                            control=tuple(n for n in nodes if n not in status.migrated),
                            batch_started=status.batch_started, soak_seconds=spec.soak_seconds,
                            wait_seconds=spec.wait_seconds)

    async def _remember(self, spec: MigrationSpec, status: MigrationStatus) -> None:
        """Let gates that keep a reference read it before the batch's nodes change."""
        ctx = await self._context(spec, status)
        for name in spec.gates:
            gate = self._gates.get(name)
            if isinstance(gate, Remembers):
                await gate.before_batch(ctx)

    async def _gates_step(self, spec: MigrationSpec, status: MigrationStatus, _: Save) -> MigrationStatus:
        ends = status.soak_ends(spec.soak_seconds)
        now = self._clock()
        if ends is None:
            status = replace(status, soak_started=now)
            ends = status.soak_ends(spec.soak_seconds)
        if not status.promoted and ends is not None and now < ends:
            return status  # soaking
        ctx = await self._context(spec, status)
        results = [await self._evaluate(name, ctx) for name in spec.gates]
        outcomes = tuple(GateOutcome(r.gate, r.result, r.reason, status.batch, now, r.evidence)
                         for r in results)
        status = replace(status, gate_results=(*status.gate_results, *outcomes))
        decision = decide(results, spec.on_fail, spec.on_inconclusive)
        text = ", ".join(f"{r.gate} {r.result} ({r.reason})" for r in results) or "no gate"
        if decision == ABORT:
            return self._next(status, STEP_ABORTING, f"gates: {text} -> abort", aborted=True,
                              abort_reason=f"batch {status.batch + 1}: {text}")
        if decision == PAUSE:
            return replace(status, paused=True, pause_reason=f"gates: {text}",
                           message=f"gates: {text} -> paused", updated_at=now)
        status, notes = place_new_nodes(status, await self.nodes())
        status = replace(status, warnings=(*status.warnings, *notes))
        return self._start_batch(status, status.batch + 1, f"gates: {text} -> proceed")

    async def _evaluate(self, name: str, ctx: BatchContext) -> GateResult:
        gate = self._gates.get(name)
        if gate is None:
            return GateResult(name, INCONCLUSIVE, "this gate is not available here")
        try:
            return await gate.evaluate(ctx)
        except Exception as exc:  # a gate's bug is no evidence: inconclusive, never a pass
            log.exception("gate failed", extra={"kv": {"gate": name}})
            return GateResult(name, INCONCLUSIVE, f"the gate raised {type(exc).__name__}: {exc}")

    # --- the end -------------------------------------------------------------------------

    async def _cluster_wide_step(self, spec: MigrationSpec, status: MigrationStatus, _: Save
                                 ) -> MigrationStatus:
        nodes = await self.nodes()
        status, notes = place_new_nodes(replace(status, step=STEP_GATES), nodes)
        status = replace(status, step=STEP_CLUSTER_WIDE, warnings=(*status.warnings, *notes))
        if status.batch + 1 < len(status.batches):
            return self._start_batch(status, status.batch + 1, "; ".join(notes))
        left = [n for n in nodes if n not in status.migrated]
        if left:
            raise StepFailed(f"node(s) {', '.join(left)} have not passed the gates; the "
                             "cluster-wide setting waits for every node")
        way = await self._cluster_wide()
        waiting = await way.apply()
        if waiting:
            since = status.waiting_since if status.waiting_since is not None else self._clock()
            if self._clock() - since > self._m.gitops_wait_seconds:
                return replace(status, paused=True, pause_reason=waiting, message=waiting,
                               waiting_since=None)
            return replace(status, message=waiting, waiting_since=since)
        return self._next(status, STEP_CLEANUP, f"cluster-wide kube-proxy-replacement=true "
                          f"through {way.describe()}", waiting_since=None)

    async def _cleanup(self, spec: MigrationSpec, status: MigrationStatus, _: Save) -> MigrationStatus:
        if not await finish.kpr_in_config(self._kube, self._r):
            raise StepFailed("cilium-config does not say kube-proxy-replacement=true; the kube-proxy "
                             "DaemonSet is not deleted")
        backup = await self._backups.load()
        if backup is None or backup.kube_proxy_daemonset is None:
            raise StepFailed(f"the backup ({self._backups.location}) holds no kube-proxy "
                             "DaemonSet; it is not deleted without one (rollback needs it)")
        kp = self._r.kube_proxy
        try:
            live = await self._kube.get(DAEMONSETS, kp.daemonset, kp.namespace)
            await self._steps.guard()
            await self._kube.delete(DAEMONSETS, kp.daemonset, kp.namespace,
                                    resource_version=live["metadata"]["resourceVersion"])
        except NotFound:
            pass  # deleted before a restart
        await self._steps.remove_node_pieces(await self.nodes())
        return self._next(status, STEP_COMPLETED, f"kube-proxy DaemonSet {kp.namespace}/"
                          f"{kp.daemonset} deleted (backup kept in {self._backups.location}); "
                          "per-node pieces removed", completed=True)


def _parse_time(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
