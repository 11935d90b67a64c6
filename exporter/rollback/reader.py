"""Reads the cluster into a ``ClusterSnapshot`` and turns a scope into a plan (``KubePlanner``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError, NotFound
from exporter.kube.resources import CONFIGMAPS, DAEMONSETS, NODES
from exporter.rollback.roles import Scope, Trigger
from exporter.rollback.backup import BackupError, BackupStore, list_node_configs
from exporter.cilium import NodeConfig
from exporter.rollback.model import ClusterSnapshot, strip_server_fields
from exporter.ownership import Owner, detect_owner
from exporter.rollback.actions import Plan
from exporter.rollback.plan import build_plan
from exporter.rollback.settings import RollbackSettings


async def read_snapshot(kube: KubeClient, settings: RollbackSettings,
                        store: BackupStore | None) -> ClusterSnapshot:
    """Everything ``build_plan`` needs, read now. Kubernetes errors other than 404 propagate."""
    c, kp = settings.cilium, settings.kube_proxy
    nodes = {
        n["metadata"]["name"]: dict(n["metadata"].get("labels") or {})
        for n in (await kube.list(NODES)).items
    }
    owners: dict[str, Owner] = {}
    try:
        cilium_cm = await kube.get(CONFIGMAPS, c.configmap, c.namespace)
        cilium_config: dict[str, str] | None = dict(cilium_cm.get("data") or {})
        owners[f"ConfigMap {c.namespace}/{c.configmap}"] = detect_owner(cilium_cm)
    except NotFound:
        cilium_config = None
    _, items = await list_node_configs(kube, c.namespace)
    node_configs = tuple(NodeConfig.from_object(o) for o in items)
    for item in items:
        owners[f"CiliumNodeConfig {c.namespace}/{item['metadata']['name']}"] = detect_owner(item)
    try:
        daemonset = strip_server_fields(await kube.get(DAEMONSETS, kp.daemonset, kp.namespace))
        owners[f"DaemonSet {kp.namespace}/{kp.daemonset}"] = detect_owner(daemonset)
    except NotFound:
        daemonset = None
    try:
        kp_cm = await kube.get(CONFIGMAPS, kp.configmap, kp.namespace)
        owners[f"ConfigMap {kp.namespace}/{kp.configmap}"] = detect_owner(kp_cm)
        kp_config = True
    except NotFound:
        kp_config = False
    backup, backup_error = None, ""
    if store is not None:
        try:
            backup = await store.load()
        except BackupError as exc:
            backup_error = str(exc)
    try:
        server_version = await kube.server_version()
    except KubeError:
        server_version = ""  # only used for a warning about kube-proxy's version skew
    return ClusterSnapshot(nodes, cilium_config, node_configs, daemonset, kp_config, backup,
                           backup_error, owners=owners, server_version=server_version)


class KubePlanner:
    """Plans a rollback against the live cluster (read-only: dry-run uses it too)."""

    def __init__(self, kube: KubeClient, settings: RollbackSettings, *, store: BackupStore | None,
                 clock: Callable[[], float] = time.time) -> None:
        self._kube, self._settings, self._store, self._clock = kube, settings, store, clock

    async def snapshot(self) -> ClusterSnapshot:
        return await read_snapshot(self._kube, self._settings, self._store)

    async def plan(self, scope: Scope, trigger: Trigger) -> Plan:
        snapshot = await self.snapshot()
        return build_plan(snapshot, scope, trigger, self._settings, self._clock())
