"""``kpr-exporter migrate plan | start | status | pause | resume | promote | abort | run``.

Plain async functions the CLI wires in; each prints to ``out`` and returns the exit code:
0 done (or nothing to do, or a dry-run printed, or the migration completed), 1 failed or
aborted, 3 refused (nothing was changed), 2 bad input.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Final, TextIO

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError, NotFound
from exporter.kube.resources import CONFIGMAPS, NODES
from exporter.migrate.controller import MigrationController
from exporter.migrate.gates.base import Gate
from exporter.migrate.model import (
    STEP_COMPLETED, MigrationSpec, MigrationStatus, SpecError, parse_batches, parse_gates,
)
from exporter.migrate.plan import Targets, plan_batches, render_plan
from exporter.migrate.settings import MigrateSettings
from exporter.migrate.store import MigrationStore, Request, StoreConflict, StoreError
from exporter.ownership import detect_owner
from exporter.rollback.settings import RollbackSettings

OK: Final = 0
FAILED: Final = 1
BAD_INPUT: Final = 2
REFUSED: Final = 3
ACTIONS: Final = ("pause", "resume", "promote", "abort")
Render = Callable[[MigrationSpec, MigrationStatus, float], str]


def spec_from(*, batches: str, soak: float, gates: str, on_fail: str = "abort",
              on_inconclusive: str = "pause", drain: bool = False, wait: float = 300.0,
              now: float, by: str = "") -> MigrationSpec:
    """The spec the options ask for; ``SpecError`` naming every problem."""
    spec = MigrationSpec(id=f"m-{int(now)}", batches=parse_batches(batches), soak_seconds=soak,
                         gates=parse_gates(gates), on_fail=on_fail, on_inconclusive=on_inconclusive,
                         drain=drain, wait_seconds=wait, created_at=now, requested_by=by)
    if spec.problems():
        raise SpecError("; ".join(spec.problems()))
    return spec


def _store(kube: KubeClient, r: RollbackSettings, m: MigrateSettings) -> MigrationStore:
    return MigrationStore(kube, r.namespace, m.state_configmap)


async def cmd_plan(r: RollbackSettings, m: MigrateSettings, kube: KubeClient, spec: MigrationSpec,
                   *, out: TextIO) -> int:
    """Print every step for this cluster; change nothing."""
    try:
        nodes = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                 for n in (await kube.list(NODES)).items}
        owner = await _owner(kube, r, m)
    except KubeError as exc:
        print(f"error: cannot read the cluster: {exc}", file=out)
        return FAILED
    key = r.kube_proxy.migration_label
    done = sorted(n for n, labels in nodes.items() if labels.get(key) == m.label_value)
    batches = plan_batches(nodes, done, spec.batches)
    print(render_plan(spec, batches, done, Targets(
        key, m.label_value, f"{r.kube_proxy.namespace}/{r.kube_proxy.daemonset}",
        f"{r.cilium.namespace}/{m.node_config}", m.healthz_bind_address, owner)), file=out)
    print("plan only: nothing was changed", file=out)
    return OK


async def _owner(kube: KubeClient, r: RollbackSettings, m: MigrateSettings) -> str:
    if m.owner != "auto":
        return {"helm": "a new Helm release revision", "gitops": "a Git commit (GitOps)",
                "direct": "a direct patch of cilium-config"}[m.owner]
    try:
        cm = await kube.get(CONFIGMAPS, r.cilium.configmap, r.cilium.namespace)
    except NotFound:
        return "cilium-config's owner (cilium-config not found)"
    return f"cilium-config's owner: {detect_owner(cm).describe()}"


async def cmd_start(r: RollbackSettings, m: MigrateSettings, kube: KubeClient, spec: MigrationSpec,
                    *, out: TextIO) -> int:
    """Record the desired migration; the in-cluster exporter (or ``migrate run``) does it."""
    warnings = spec.gate_warnings()
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    try:
        await _store(kube, r, m).create(spec, MigrationStatus(warnings=warnings))
    except StoreConflict as exc:
        print(f"refused: {exc}", file=out)
        return REFUSED
    except (KubeError, StoreError) as exc:
        print(f"error: {exc}", file=out)
        return FAILED
    print(f"migration {spec.id} recorded in ConfigMap {r.namespace}/{m.state_configmap}; the "
          "exporter carries it out in enforce mode with migrate.enabled (or run `kpr-exporter "
          "migrate run --yes` from here). Follow it with `kpr-exporter migrate status --watch`",
          file=out)
    return OK


def plain_render(spec: MigrationSpec, status: MigrationStatus, now: float) -> str:
    """The status as plain lines (when no richer view is available)."""
    lines = [f"Migration {spec.id}: step {status.step}"
             + (f", batch {status.batch + 1}/{len(status.batches)}" if status.batch >= 0 else "")
             + (" (PAUSED: " + status.pause_reason + ")" if status.paused else ""),
             f"  {status.message}", f"  migrated: {', '.join(status.migrated) or 'none'}"]
    lines += [f"  gate {g.gate}: {g.result} ({g.reason})" for g in status.batch_results()]
    lines += [f"  warning: {w}" for w in status.warnings]
    return "\n".join(lines)


def _render() -> Render:
    try:
        from exporter.migrate.view import render
    except ImportError:
        return plain_render
    return render


async def cmd_status(r: RollbackSettings, m: MigrateSettings, kube: KubeClient, *, out: TextIO,
                     watch: bool = False, clock: Callable[[], float] = time.time,
                     sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                     interval: float = 2.0, render: Render | None = None) -> int:
    """Print the status; ``watch``: again every ``interval`` until the migration ends."""
    show = render or _render()
    store = _store(kube, r, m)
    while True:
        try:
            stored = await store.load()
        except (KubeError, StoreError) as exc:
            print(f"error: {exc}", file=out)
            return FAILED
        if stored is None:
            print(f"no migration recorded in ConfigMap {r.namespace}/{m.state_configmap}", file=out)
            return OK
        if watch and getattr(out, "isatty", lambda: False)():
            print("\x1b[H\x1b[2J", end="", file=out)
        print(show(stored.spec, stored.status, clock()), file=out)
        if not watch or stored.status.finished:
            return OK
        await sleep(interval)


async def cmd_request(r: RollbackSettings, m: MigrateSettings, kube: KubeClient, action: str, *,
                      out: TextIO, by: str, confirm: Callable[[str], bool] | None = None,
                      reason: str = "", clock: Callable[[], float] = time.time) -> int:
    """``pause``/``resume``/``promote``/``abort``: recorded for the controller to act on."""
    store = _store(kube, r, m)
    try:
        stored = await store.load()
    except (KubeError, StoreError) as exc:
        print(f"error: {exc}", file=out)
        return FAILED
    if stored is None or stored.status.finished:
        print("refused: no migration in progress" + (
            f" (migration {stored.spec.id} is {stored.status.step})" if stored else ""), file=out)
        return REFUSED
    if action == "abort" and confirm is not None and not confirm(
            f"Abort migration {stored.spec.id}: roll back {', '.join(stored.status.migrated) or 'no node yet'} "
            "to kube-proxy and remove what the migration added?"):
        print("not aborted: nothing was changed", file=out)
        return REFUSED
    changes: Mapping[str, Callable[[Request], Request]] = {
        "pause": lambda q: replace(q, paused=True),
        "resume": lambda q: replace(q, paused=False, resume=q.resume + 1),
        "promote": lambda q: replace(q, promote=q.promote + 1),
        "abort": lambda q: replace(q, abort=reason or f"aborted by {by}"),
    }
    try:
        await store.update_request(lambda q: replace(changes[action](q), by=by, at=clock()))
    except (KubeError, StoreError, StoreConflict) as exc:
        print(f"error: {exc}", file=out)
        return FAILED
    print(f"{action} recorded for migration {stored.spec.id}; the controller acts on it at its "
          "next step", file=out)
    return OK


async def cmd_run(r: RollbackSettings, m: MigrateSettings, kube: KubeClient, spec: MigrationSpec,
                  *, out: TextIO, yes: bool, gates: Mapping[str, Gate],
                  build: Callable[..., MigrationController] = MigrationController,
                  **controller: Any) -> int:
    """Run the migration in the foreground: the recorded unfinished one, else ``spec``.
    Without ``yes`` it prints the plan and changes nothing (dry-run)."""
    store = _store(kube, r, m)
    try:
        stored = await store.load()
    except (KubeError, StoreError) as exc:
        print(f"error: {exc}", file=out)
        return FAILED
    if stored is not None and not stored.status.finished:
        print(f"continuing migration {stored.spec.id} (step {stored.status.step})", file=out)
    elif not yes:
        await cmd_plan(r, m, kube, spec, out=out)
        print("dry-run: nothing was changed (add --yes to carry it out)", file=out)
        return OK
    else:
        code = await cmd_start(r, m, kube, spec, out=out)
        if code != OK:
            return code
    if not yes:
        print("dry-run: nothing was changed (add --yes to carry it out)", file=out)
        return OK
    also = controller.pop("say", None)

    def say(text: str) -> None:
        print(text, file=out, flush=True)
        if also is not None:
            also(text)

    ctl = build(kube, r, m, enforce=True, gates=gates, say=say, **controller)
    status = await ctl.run()
    if status is None:
        print("error: the migration record disappeared", file=out)
        return FAILED
    print(f"migration {status.step}: {status.message}", file=out)
    return OK if status.step == STEP_COMPLETED else FAILED
