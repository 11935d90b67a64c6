"""The guided-migration demo's cluster: the simulated Kubernetes API on loopback, the nodes
the simulated kubelet plays there, and the emulated datapath's view of their agents.

``DemoCluster`` starts ``exporter.simulator.kubeapi``'s API server with four nodes on
kube-proxy (the cilium and kube-proxy DaemonSets, cilium-config with KPR off, the
exporter's namespace), its ``Kubelet`` (DaemonSet controller, garbage collector and
kubelet) reconciling every ``RECONCILE_INTERVAL`` seconds of the demo's clock, and each
node's kube-proxy ``/healthz`` and agent ``/metrics`` on the node's own loopback address
(``NodeEndpoints``). The product's own ``KubeClient`` talks to the API over HTTP.

``AgentsView`` is what the demo's emulated datapath (``exporter.demo.verification``)
follows: a node runs eBPF there once its Cilium agent started with kube-proxy replacement
on, exactly when the migration restarted it with its label set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from exporter.kube.client import KubeClient
from exporter.model import EBPF, KUBE_PROXY
from exporter.simulator.kubeapi.cluster import (
    KP_LABELS, Kubelet, NodeEndpoints, seed_kube_proxy_cluster,
)
from exporter.simulator.kubeapi.kubeconfig import write_kubeconfig
from exporter.simulator.kubeapi.server import FakeKube
from exporter.simulator.scenarios import get_scenario
from exporter.tasks import cancel_until_done

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[object]]

#: The demo's nodes and the loopback address each one's endpoints answer on.
NODES: Mapping[str, str] = {"node-a": "127.0.0.11", "node-b": "127.0.0.12",
                            "node-c": "127.0.0.13", "node-d": "127.0.0.14"}
#: The exporter's namespace: its Lease, backup, rollback and migration state live there.
NAMESPACE = "kpr-system"
SYSTEM = "kube-system"
#: Seconds of the demo's clock between two rounds of the simulated kubelet.
RECONCILE_INTERVAL = 1.0
#: The simulator story whose datapath profiles the emulated datapath costs.
PROFILES_STORY = "canary-improvement"


class DemoCluster:
    """The simulated API, its kubelet and the nodes' endpoints; ``kube`` once started."""

    def __init__(self, directory: Path, *, sleep: Sleep,
                 nodes: Mapping[str, str] = NODES) -> None:
        self.directory = directory
        self.sleep = sleep
        self.nodes = dict(nodes)
        self.api = FakeKube()
        self.kubelet = Kubelet(self.api, namespace=SYSTEM, addresses=self.nodes)
        self.endpoints = NodeEndpoints(self.kubelet)
        self.kube: KubeClient | None = None
        self._tasks: list[asyncio.Future[Any]] = []
        self._datapaths: dict[str, str] = dict.fromkeys(self.nodes, KUBE_PROXY)

    async def start(self) -> None:
        await asyncio.to_thread(self.api.start)
        config = write_kubeconfig(self.directory / "kubeconfig", self.api.url,
                                  namespace=NAMESPACE)
        seed_kube_proxy_cluster(self.api, addresses=self.nodes, namespace=SYSTEM)
        self.api.seed({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": NAMESPACE}})
        self.reconcile()
        await self.endpoints.start()
        self.kube = KubeClient.connect(str(config), request_timeout=10.0)
        self._tasks = [asyncio.ensure_future(self._reconcile())]

    async def stop(self) -> None:
        for error in await cancel_until_done(self._tasks):
            log.warning("simulated kubelet had failed", extra={"kv": {"error": repr(error)}})
        if self.kube is not None:
            await self.kube.close()
        await self.endpoints.stop()
        await asyncio.to_thread(self.api.stop)

    def reconcile(self) -> None:
        """One round of the kubelet; then each node's datapath as its agent started."""
        self.kubelet.reconcile()
        self._datapaths = {n: EBPF if self.endpoints.agent_kpr(n) else KUBE_PROXY
                           for n in self.nodes}

    async def _reconcile(self) -> None:
        while True:
            self.reconcile()
            await self.sleep(RECONCILE_INTERVAL)

    # --- what the cluster looks like now ----------------------------------------------

    def datapath(self, node: str) -> str:
        """The node's datapath: eBPF once its agent started with kube-proxy replacement
        (as of the kubelet's last round, when agents start)."""
        return self._datapaths.get(node, KUBE_PROXY)

    def kube_proxy_daemonset(self) -> dict[str, Any] | None:
        return self.api.get("daemonsets", "kube-proxy", SYSTEM)

    def kube_proxy_nodes(self) -> list[str]:
        """Nodes a kube-proxy pod runs on now."""
        return sorted({p["spec"]["nodeName"] for p in self.api.objects("pods", SYSTEM)
                       if all(p["metadata"].get("labels", {}).get(k) == v
                              for k, v in KP_LABELS.items())})

    def kube_proxy_deletes(self) -> int:
        """DELETE requests for the kube-proxy DaemonSet the API received."""
        return sum(1 for r in self.api.requests if r.method == "DELETE"
                   and r.path.endswith(f"/namespaces/{SYSTEM}/daemonsets/kube-proxy"))

    def backup(self) -> dict[str, Any] | None:
        """The rollback backup ConfigMap (kept after the migration)."""
        return self.api.get("configmaps", "kpr-exporter-backup", NAMESPACE)


class AgentsView:
    """What ``exporter.demo.verification.Verification`` reads of a simulator, answered by the
    simulated cluster's agents: the node names, each node's datapath now, and the datapath
    profiles the emulated datapath's costs come from. It stands in for both the simulator
    and its story (``scenario`` is itself)."""

    def __init__(self, cluster: DemoCluster, name: str) -> None:
        self._cluster = cluster
        story = get_scenario(PROFILES_STORY)
        self.name = name
        self.kube_proxy, self.ebpf = story.kube_proxy, story.ebpf
        self.node_names = tuple(cluster.nodes)

    @property
    def scenario(self) -> AgentsView:
        return self

    @property
    def cluster(self) -> AgentsView:  # the story's ``cluster.node_names``
        return self

    def scenario_time(self) -> float:
        return 0.0

    def datapath_at(self, node: str, _: float) -> str:
        return self._cluster.datapath(node)
