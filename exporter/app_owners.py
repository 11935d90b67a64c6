"""The deciding instance's watch on what a rollback writes (part of the composition root).

Who owns the kube-proxy DaemonSet and ConfigMap, cilium-config and the CiliumNodeConfigs
(Helm, Flux, Argo CD: ``kpr_config_owner``), and the guard that notices an undo being
undone. Only an instance that rolls back runs them (``web.role`` all or central): node
mode's collectors would export the same series once per node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.kube import owners_feed
from exporter.kube.client import KubeClient
from exporter.kube.datapath_feed import DatapathWatcher
from exporter.kube.owners_feed import (
    KubeProxyObjects, OwnerCollector, node_configs_observed, observed_in,
)
from exporter.rollback.backup import backup_store
from exporter.rollback.guard_feed import UndoGuard
from exporter.roles import Clock

Spawn = Callable[[Awaitable[Any], str], None]


def watch_owners(kube: KubeClient, settings: Any, *, registry: CollectorRegistry,
                 watcher: DatapathWatcher | None, tracker: Any, spawn: Spawn, clock: Clock,
                 sleep: Callable[[float], Awaitable[object]]) -> None:
    """Register the owner collector and the undo guard, spawning their watches."""
    kp = settings.rollback.kube_proxy
    objects = KubeProxyObjects(kube, settings.kube, namespace=kp.namespace,
                               daemonset=kp.daemonset, configmap=kp.configmap)
    for mirror in objects.mirrors:
        spawn(mirror.run(), f"watch {mirror.describe()}")
    sources: list[Callable[[], list[owners_feed.Observed]]] = [objects.observed]
    if watcher is not None:
        sources += [
            lambda: observed_in(watcher.cilium_config, owners_feed.config_map_label),
            lambda: node_configs_observed(watcher.node_configs)]
    registry.register(OwnerCollector(sources))
    if watcher is not None:
        guard = UndoGuard(kube, settings.rollback, tracker=tracker,
                          store=backup_store(kube, settings.rollback), clock=clock, sleep=sleep)
        registry.register(guard)
        spawn(guard.run(), "rollback-guard")
