"""The parts of a cluster the simulated API server alone does not play.

``Controller`` is a minimal DaemonSet controller: ``reconcile`` gives every node a pod of
each DaemonSet (cilium, kube-proxy) that schedules there. ``Kubelet`` extends it into the
DaemonSet controller, garbage collector and kubelet the guided migration needs:

* its pods carry the DaemonSet as owner (so a drain leaves them alone);
* it removes the kube-proxy pod from a node the DaemonSet's affinity no longer allows
  (and every pod of a deleted DaemonSet), as the real controller and garbage collector do;
* a Cilium agent pod it starts records the kube-proxy-replacement its node gets at start
  (cilium-config, overridden by a CiliumNodeConfig selecting the node), in an annotation:
  that is what the agent runs with until it restarts.

``NodeEndpoints`` serves, on each node's own loopback address, what a real node answers:
``/healthz`` on the health port (200 and fresh while kube-proxy runs there, or while the
agent runs KPR with its health endpoint configured; 503 otherwise) and the agent's
``/metrics`` with the KPR feature gauge it started with.

Nothing here sleeps or runs on its own: whoever drives the cluster calls ``reconcile``
(the demo and the tests do so on every step of their injected clock).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Mapping
from functools import partial
from typing import Any

from aiohttp import web

from exporter.cilium import KPR_HEALTHZ_KEY, KPR_KEY, NodeConfig, effective_kpr, kpr_on
from exporter.rollback.model import schedules_on
from exporter.simulator.kubeapi.objects import configmap, daemonset, node, pod

CILIUM_LABELS = {"k8s-app": "cilium"}
KP_LABELS = {"k8s-app": "kube-proxy"}
NODES = ("node-a", "node-b", "node-c")
ADDRESSES = {"node-a": "127.0.0.11", "node-b": "127.0.0.12", "node-c": "127.0.0.13"}
KPR_AT_START = "sim.kpr-exporter.io/kpr-at-start"
HEALTHZ_AT_START = "sim.kpr-exporter.io/healthz-at-start"
FRESH = {"lastUpdated": "2026-12-06 10:00:20 +0000 UTC",
         "currentTime": "2026-12-06 10:00:25 +0000 UTC"}


class Controller:
    """A minimal DaemonSet controller over the simulated API's store."""

    def __init__(self, fake: Any, *, namespace: str = "kube-system") -> None:
        self.fake = fake
        self.namespace = namespace
        self.enabled = {"cilium": True, "kube-proxy": True}
        self.ready = {"cilium": True, "kube-proxy": True}
        self.created: list[tuple[str, str]] = []  # (DaemonSet, node) of every pod it made
        self.pod_ips: dict[str, str] = {}  # node -> the address its (host-network) pods get
        self._names = itertools.count(1)

    def reconcile(self) -> None:
        nodes = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                 for n in self.fake.objects("nodes")}
        for name in ("cilium", "kube-proxy"):
            ds = self.fake.get("daemonsets", name, self.namespace)
            if ds is None or not self.enabled[name]:
                continue
            labels = ds["spec"]["selector"]["matchLabels"]
            pods = [p for p in self.fake.objects("pods", self.namespace)
                    if all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]
            have = {p["spec"]["nodeName"] for p in pods}
            for node_name, node_labels in nodes.items():
                if node_name not in have and schedules_on(ds, node_name, node_labels):
                    made = pod(f"{name}-{next(self._names):04d}", self.namespace, node_name,
                               labels, ready=self.ready[name])
                    if node_name in self.pod_ips:
                        made["status"]["podIP"] = self.pod_ips[node_name]
                    self.fake.seed(made)
                    self.created.append((name, node_name))


class Kubelet(Controller):
    """The DaemonSet controller, garbage collector and kubelet; see the module docstring."""

    def __init__(self, fake: Any, *, namespace: str = "kube-system",
                 addresses: Mapping[str, str] | None = None) -> None:
        super().__init__(fake, namespace=namespace)
        self.addresses = dict(addresses or ADDRESSES)
        self.pod_ips = dict(self.addresses)

    def reconcile(self) -> None:
        nodes = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                 for n in self.fake.objects("nodes")}
        for name, labels in (("kube-proxy", KP_LABELS), ("cilium", CILIUM_LABELS)):
            ds = self.fake.get("daemonsets", name, self.namespace)
            for made in self._pods(labels):
                where = made["spec"]["nodeName"]
                if ds is None or where not in nodes or not schedules_on(ds, where, nodes[where]):
                    self.fake.remove("pods", made["metadata"]["name"], self.namespace)
        super().reconcile()
        self._own_pods()
        self._start_agents(nodes)

    def _own_pods(self) -> None:
        for name, labels in (("kube-proxy", KP_LABELS), ("cilium", CILIUM_LABELS)):
            for made in self._pods(labels):  # the controller's own pods say so, as real ones do
                if not made["metadata"].get("ownerReferences"):
                    made["metadata"]["ownerReferences"] = [{
                        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": name,
                        "uid": f"uid-{name}", "controller": True}]
                    self.fake.seed(made)

    def _start_agents(self, nodes: dict[str, dict[str, str]]) -> None:
        config = (self.fake.get("configmaps", "cilium-config", self.namespace) or {}).get("data")
        cncs = [NodeConfig.from_object(o) for o in self.fake.objects("ciliumnodeconfigs",
                                                                     api_version="cilium.io/v2")]
        for agent in self._pods(CILIUM_LABELS):
            notes = agent["metadata"].setdefault("annotations", {})
            if KPR_AT_START in notes:
                continue
            labels = nodes.get(agent["spec"]["nodeName"], {})
            value, _ = effective_kpr(labels, config, cncs)
            healthz = (config or {}).get(KPR_HEALTHZ_KEY, "")
            for cnc in cncs:
                if cnc.selects(labels) and KPR_HEALTHZ_KEY in cnc.defaults:
                    healthz = cnc.defaults[KPR_HEALTHZ_KEY]
            notes[KPR_AT_START] = "true" if kpr_on(value) else "false"
            notes[HEALTHZ_AT_START] = healthz
            self.fake.seed(agent)

    def _pods(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [p for p in self.fake.objects("pods", self.namespace)
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]

    def on_node(self, node_name: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [p for p in self._pods(labels) if p["spec"]["nodeName"] == node_name]


class NodeEndpoints:
    """Each node's /healthz and agent /metrics on its own address (one port for both)."""

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.port = free_port(next(iter(kubelet.addresses.values())))
        self.runners: list[web.AppRunner] = []
        self.kpr_off_anyway: set[str] = set()  # nodes whose agent reports KPR off (a bad node)

    async def start(self) -> None:
        for name, address in self.kubelet.addresses.items():
            app = web.Application()
            app.router.add_get("/healthz", partial(self._healthz, name))
            app.router.add_get("/metrics", partial(self._metrics, name))
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, address, self.port).start()
            self.runners.append(runner)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()

    def _agent(self, name: str) -> dict[str, Any] | None:
        pods = self.kubelet.on_node(name, CILIUM_LABELS)
        return pods[0] if pods else None

    def agent_kpr(self, name: str) -> bool:
        """Does the node's Cilium agent run kube-proxy replacement (as it started)?"""
        agent = self._agent(name)
        notes = (agent or {}).get("metadata", {}).get("annotations") or {}
        return notes.get(KPR_AT_START) == "true" and name not in self.kpr_off_anyway

    async def _healthz(self, name: str, _: web.Request) -> web.Response:
        proxy = self.kubelet.on_node(name, KP_LABELS)
        agent = self._agent(name)
        healthz = ((agent or {}).get("metadata", {}).get("annotations") or {}).get(HEALTHZ_AT_START)
        if proxy or (self.agent_kpr(name) and healthz):
            return web.json_response(FRESH)
        return web.Response(status=503, text="nothing serves /healthz here")

    async def _metrics(self, name: str, _: web.Request) -> web.Response:
        if self._agent(name) is None:
            return web.Response(status=503)
        gauge = 1 if self.agent_kpr(name) else 0
        return web.Response(text="cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled "
                                 f"{gauge}\n")


def free_port(address: str) -> int:
    """A port free on ``address`` now (the nodes' endpoints share one port number)."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def seed_kube_proxy_cluster(fake: Any, *, addresses: Mapping[str, str] | None = None,
                            namespace: str = "kube-system") -> None:
    """Nodes every one on kube-proxy (the starting point of the official procedure): the
    nodes with their addresses, cilium-config with KPR off, the cilium and kube-proxy
    DaemonSets and kube-proxy's ConfigMap."""
    for name, address in (addresses or ADDRESSES).items():
        made = node(name)
        made["status"]["addresses"] = [{"type": "InternalIP", "address": address}]
        made["status"]["nodeInfo"] = {"kernelVersion": "6.8.0-45-generic",
                                      "kubeletVersion": "v1.31.2"}
        fake.seed(made)
    fake.seed(configmap("cilium-config", namespace, {
        KPR_KEY: "false", "routing-mode": "native", "bpf-lb-mode": "snat"}))
    cilium = daemonset("cilium", namespace, CILIUM_LABELS, image="quay.io/cilium/cilium:v1.18.0")
    cilium["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "api.example.internal"},
        {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"}]
    fake.seed(cilium)
    fake.seed(daemonset("kube-proxy", namespace, KP_LABELS))
    fake.seed(configmap("kube-proxy", namespace, {"config.conf": "mode: iptables"}, KP_LABELS))
