"""``kpr-exporter backup | rollback | preflight``: plain async functions the CLI wires in.

Each takes the rollback settings and a ``KubeClient``, prints to ``out`` and returns the
exit code: 0 done (or nothing to do, or a dry-run printed), 1 failed, 3 refused
(nothing was changed).
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Awaitable, Callable
from typing import Final, TextIO

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.rollback.api import CLUSTER, REFUSED, Scope, Trigger
from exporter.rollback.backup import BackupError, backup_store, take_backup
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.plan import build_plan
from exporter.preflight import evaluate, exit_code, render_table
from exporter.preflight.gather import gather
from exporter.rollback.reader import read_snapshot
from exporter.rollback.settings import RollbackSettings

OK: Final = 0
FAILED_EXIT: Final = 1
REFUSED_EXIT: Final = 3


async def cmd_backup(settings: RollbackSettings, kube: KubeClient, *, output: str | None = None,
                     out: TextIO, clock: Callable[[], float] = time.time) -> int:
    """Capture the backup into the ConfigMap (or ``output`` / ``rollback.backup_file``)."""
    try:
        report = await take_backup(kube, settings, clock=clock)
        store = backup_store(kube, settings, output)
        await store.save(report.backup)
    except (KubeError, BackupError) as exc:
        print(f"error: {exc}", file=out)
        return FAILED_EXIT
    b = report.backup
    print(f"backup written to {store.location} (taken {b.taken_at})", file=out)
    print(f"  cilium-config:          {'yes' if b.cilium_config else 'MISSING'}", file=out)
    print(f"  kube-proxy DaemonSet:   {'yes' if b.kube_proxy_daemonset else 'MISSING'}", file=out)
    print(f"  kube-proxy ConfigMap:   {'yes' if b.kube_proxy_configmap else 'MISSING'}", file=out)
    print(f"  kube-proxy identity:    "
          f"{'ServiceAccount + ' if b.kube_proxy_service_account else 'no ServiceAccount, '}"
          f"{len(b.kube_proxy_role_bindings)} ClusterRoleBinding(s)", file=out)
    print(f"  CiliumNodeConfigs:      {len(b.node_configs)}", file=out)
    print(f"  Cilium Helm release:    {_describe_release(b.helm_release)}", file=out)
    for note in report.notes:
        print(f"warning: {note}", file=out)
    return OK


def _describe_release(helm: dict | None) -> str:
    if not helm:
        return "not recorded"
    text = f"{helm.get('namespace', '?')}/{helm['name']} revision {helm['revision']}"
    if helm.get("chart"):
        text += f" ({helm['chart']} {helm.get('chartVersion', '')})"
    if "values" in helm:
        text += f", {len(helm['values'])} user-supplied value(s)"
    else:
        text += ", values NOT recorded"
    return text


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


async def cmd_preflight(settings: RollbackSettings, kube: KubeClient, *, out: TextIO) -> int:
    """Print the preflight table; exit 1 when any check failed."""
    facts = await gather(kube, settings, backup_store(kube, settings))
    rows = evaluate(facts, settings)
    print(render_table(rows), file=out)
    return exit_code(rows)


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
