"""``kpr-exporter backup``: capture what a rollback restores into the ConfigMap (or a file)
and print what it holds; exit 0 done, 1 failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.rollback.backup import BackupError, backup_store, take_backup
from exporter.rollback.rollback_cmd import FAILED_EXIT, OK
from exporter.rollback.settings import RollbackSettings


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
