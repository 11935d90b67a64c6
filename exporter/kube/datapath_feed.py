"""Feed the datapath tracker from the Kubernetes API.

Watches Nodes (labels, for CiliumNodeConfig selectors), kube-proxy pods, Cilium agent
pods (their image gives the Cilium version), ConfigMap ``cilium-config`` and the
CiliumNodeConfigs of the Cilium namespace (``cilium.io/v2`` and ``v2alpha1``; the same
object seen through both versions counts once, v2 first). A resource that cannot be
read becomes "not known" in the tracker, never "off".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from exporter.cilium import NodeConfig
from exporter.datapath.decide import unique_by_name
from exporter.datapath.tracker import DatapathTracker
from exporter.kube.client import Backoff, KubeClient, WatchEvent
from exporter.kube.errors import KubeError
from exporter.kube.mirror import Mirror
from exporter.kube.resources import CILIUM_NODE_CONFIG_VERSIONS, CONFIGMAPS, NODES, PODS
from exporter.kube.settings import KubeSettings


class DatapathWatcher:
    """``run()`` keeps ``tracker`` fed until cancelled."""

    def __init__(self, client: KubeClient, settings: KubeSettings,
                 tracker: DatapathTracker) -> None:
        self._settings = settings
        self._tracker = tracker
        self._labels: dict[str, dict[str, str]] | None = None
        self._kube_proxy_nodes: frozenset[str] | None = None
        self._versions: dict[str, str | None] = {}
        common: dict[str, Any] = {
            "resync_seconds": settings.resync_seconds,
            "backoff": Backoff(settings.retry_min_seconds, settings.retry_max_seconds),
            "refused_retry_seconds": settings.retry_max_seconds,
        }
        self.nodes = Mirror(client, NODES, on_event=self._nodes_changed,
                            on_lost=self._nodes_lost, **common)
        self.kube_proxy = Mirror(client, PODS, namespace=settings.kube_proxy_namespace,
                                 label_selector=settings.kube_proxy_selector,
                                 on_event=self._kube_proxy_changed,
                                 on_lost=self._kube_proxy_lost, **common)
        self.agents = Mirror(client, PODS, namespace=settings.cilium_namespace,
                             label_selector=settings.agent_selector,
                             on_event=self._agents_changed, on_lost=self._agents_lost, **common)
        self.cilium_config = Mirror(
            client, CONFIGMAPS, namespace=settings.cilium_namespace,
            field_selector=f"metadata.name={settings.cilium_config_name}",
            on_event=self._cilium_config_changed, on_lost=self._cilium_config_lost, **common)
        self.node_configs = tuple(
            Mirror(client, resource, namespace=settings.cilium_namespace,
                   on_event=self._node_configs_changed, on_lost=self._node_configs_changed,
                   **common)
            for resource in CILIUM_NODE_CONFIG_VERSIONS)

    @property
    def mirrors(self) -> tuple[Mirror, ...]:
        return (self.nodes, self.kube_proxy, self.agents, self.cilium_config, *self.node_configs)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for mirror in self.mirrors:
                group.create_task(mirror.run(), name=f"watch {mirror.describe()}")

    async def wait_synced(self) -> None:
        """Until every watched resource was listed once (or found unreadable)."""
        await asyncio.gather(*(m.synced.wait() for m in self.mirrors))

    # --- nodes -----------------------------------------------------------------------

    def _nodes_changed(self, event: WatchEvent) -> None:
        labels = {name: dict((obj.get("metadata") or {}).get("labels") or {})
                  for (_, name), obj in self.nodes.objects.items()}
        if labels != self._labels:
            self._labels = labels
            self._tracker.set_nodes(labels)

    def _nodes_lost(self, error: KubeError) -> None:
        self._labels = None
        self._tracker.set_nodes(None)

    # --- kube-proxy pods ---------------------------------------------------------------

    def _kube_proxy_changed(self, event: WatchEvent) -> None:
        nodes = frozenset(node for obj in self.kube_proxy.objects.values()
                          if (node := _running_on(obj)))
        if nodes != self._kube_proxy_nodes:
            self._kube_proxy_nodes = nodes
            self._tracker.set_kube_proxy_nodes(nodes)

    def _kube_proxy_lost(self, error: KubeError) -> None:
        self._kube_proxy_nodes = None
        self._tracker.set_kube_proxy_nodes(None)

    # --- agent pods (Cilium version per node) --------------------------------------------

    def _agents_changed(self, event: WatchEvent) -> None:
        versions: dict[str, str | None] = {}
        for obj in self.agents.objects.values():
            node = (obj.get("spec") or {}).get("nodeName")
            if node and not (obj.get("metadata") or {}).get("deletionTimestamp"):
                versions[node] = _agent_image(obj)
        for node in set(self._versions) | set(versions):
            if self._versions.get(node) != versions.get(node):
                self._tracker.observe_agent_version(node, versions.get(node))
        self._versions = versions

    def _agents_lost(self, error: KubeError) -> None:
        for node in self._versions:
            self._tracker.observe_agent_version(node, None)
        self._versions = {}

    # --- cilium-config and CiliumNodeConfigs --------------------------------------------

    def _cilium_config_changed(self, event: WatchEvent) -> None:
        found = self.cilium_config.objects.get(
            (self._settings.cilium_namespace, self._settings.cilium_config_name))
        self._tracker.set_cilium_config(None if found is None else _string_map(found.get("data")))

    def _cilium_config_lost(self, error: KubeError) -> None:
        self._tracker.set_cilium_config(None)

    def _node_configs_changed(self, _: object) -> None:
        readable = [m for m in self.node_configs if m.available]
        if not readable:
            self._tracker.set_node_configs(None)
            return
        objects = [obj for mirror in readable for _, obj in sorted(mirror.objects.items())]
        self._tracker.set_node_configs(NodeConfig.from_object(o) for o in unique_by_name(objects))


def _running_on(pod: Mapping[str, Any]) -> str | None:
    """The node a pod runs on, if it is running and not being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if (pod.get("status") or {}).get("phase") != "Running":
        return None
    return (pod.get("spec") or {}).get("nodeName") or None


def _agent_image(pod: Mapping[str, Any]) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    for container in containers:
        if container.get("name") == "cilium-agent":
            return container.get("image")
    return containers[0].get("image") if containers else None


def _string_map(data: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (data or {}).items()}
