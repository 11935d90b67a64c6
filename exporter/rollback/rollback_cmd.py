"""``kpr-exporter rollback``: print the plan for a scope, then run it unless dry-run.

Takes the rollback settings and a ``KubeClient``, prints to ``out`` and returns the exit
code: 0 done (or nothing to do, or a dry-run printed), 1 failed, 3 refused (nothing was
changed). The exit codes are shared with ``backup_cmd``.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Awaitable, Callable
from typing import Final, TextIO

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.rollback.backup import backup_store
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.plan import build_plan
from exporter.rollback.reader import read_snapshot
from exporter.rollback.roles import CLUSTER, REFUSED, Scope, Trigger
from exporter.rollback.settings import RollbackSettings

OK: Final = 0
FAILED_EXIT: Final = 1
REFUSED_EXIT: Final = 3


async def cmd_rollback(
    settings: RollbackSettings,
    kube: KubeClient,
    *,
    dry_run: bool,
    scope: str,
    out: TextIO,
    confirm: Callable[[str], bool] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """Print the plan for ``scope`` (cluster, canary, or node names), then run it unless dry-run.

    ``confirm`` is asked with the rendered plan before acting (None: proceed, as ``--yes``).
    """
    try:
        store = backup_store(kube, settings)
        snapshot = await read_snapshot(kube, settings, store)
    except KubeError as exc:
        print(f"error: cannot read the cluster: {exc}", file=out)
        return FAILED_EXIT
    chosen = parse_scope(scope, snapshot.kpr_nodes())
    if chosen is None:
        print(f"error: --scope must be cluster, canary or a comma list of node names, got {scope!r}",
              file=out)
        return FAILED_EXIT
    trigger = Trigger(f"manual rollback by {_user()}", (), "cli")
    plan = build_plan(snapshot, chosen, trigger, settings, clock())
    print(plan.render(), file=out)
    if plan.status == REFUSED:
        return REFUSED_EXIT
    if not plan.steps:
        return OK
    if dry_run:
        print("dry-run: nothing was changed", file=out)
        return OK
    if confirm is not None and not confirm(plan.render()):
        print("aborted: nothing was changed", file=out)
        return REFUSED_EXIT
    result = await KubeRollbacker(kube, settings, clock=clock, sleep=sleep).rollback(plan)
    print(f"{result.status}: {result.message}", file=out)
    if result.status == REFUSED:
        return REFUSED_EXIT
    return OK if result.ok else FAILED_EXIT


def parse_scope(text: str, kpr_nodes: list[str]) -> Scope | None:
    """``cluster`` | ``canary`` (the nodes with KPR on) | ``node-a,node-b``."""
    value = text.strip()
    if value == CLUSTER:
        return Scope.cluster()
    if value == "canary":
        return Scope.of_nodes(kpr_nodes)
    names = [n.strip() for n in value.split(",") if n.strip()]
    return Scope.of_nodes(names) if names else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"
