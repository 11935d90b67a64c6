"""A three-node cluster on kube-proxy for the migration tests, and the parts of Kubernetes
the fake API has not: a DaemonSet controller and kubelet played by the test, and each
node's own endpoints.

``Kubelet`` extends the rollback tests' DaemonSet controller:

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
"""

from __future__ import annotations

import json
import socket
from functools import partial
from typing import Any

from aiohttp import web

from exporter.cilium import (
    KPR_HEALTHZ_KEY, KPR_KEY, MIGRATION_LABEL, NodeConfig, effective_kpr, kpr_on,
)
from exporter.migrate.settings import MigrateSettings
from exporter.rollback.model import schedules_on
from exporter.rollback.settings import DatapathProof, RollbackSettings
from tests.fakekube.fixtures import configmap, daemonset, node
from tests.rollback.cluster import CILIUM_LABELS, KP_LABELS, Controller

MIGRATION = MIGRATION_LABEL
NODES = ("node-a", "node-b", "node-c")
ADDRESSES = {"node-a": "127.0.0.11", "node-b": "127.0.0.12", "node-c": "127.0.0.13"}
KPR_AT_START = "test.kpr-exporter.io/kpr-at-start"
HEALTHZ_AT_START = "test.kpr-exporter.io/healthz-at-start"
FRESH = {"lastUpdated": "2026-12-06 10:00:20 +0000 UTC",
         "currentTime": "2026-12-06 10:00:25 +0000 UTC"}


class Kubelet(Controller):
    """The DaemonSet controller, garbage collector and kubelet; see the module docstring."""

    def __init__(self, fake: Any, *, namespace: str = "kube-system") -> None:
        super().__init__(fake, namespace=namespace)
        self.pod_ips = dict(ADDRESSES)

    def reconcile(self) -> None:
        nodes = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                 for n in self.fake.objects("nodes")}
        for name, labels in (("kube-proxy", KP_LABELS), ("cilium", CILIUM_LABELS)):
            ds = self.fake.get("daemonsets", name, self.namespace)
            for pod in self._pods(labels):
                where = pod["spec"]["nodeName"]
                if ds is None or where not in nodes or not schedules_on(ds, where, nodes[where]):
                    self.fake.remove("pods", pod["metadata"]["name"], self.namespace)
        super().reconcile()
        for name, labels in (("kube-proxy", KP_LABELS), ("cilium", CILIUM_LABELS)):
            for pod in self._pods(labels):  # the controller's own pods say so, as real ones do
                if not pod["metadata"].get("ownerReferences"):
                    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                           "name": name, "uid": f"uid-{name}",
                                                           "controller": True}]
                    self.fake.seed(pod)
        config = (self.fake.get("configmaps", "cilium-config", self.namespace) or {}).get("data")
        cncs = [NodeConfig.from_object(o) for o in self.fake.objects("ciliumnodeconfigs",
                                                                     api_version="cilium.io/v2")]
        for pod in self._pods(CILIUM_LABELS):
            notes = pod["metadata"].setdefault("annotations", {})
            if KPR_AT_START in notes:
                continue
            labels = nodes.get(pod["spec"]["nodeName"], {})
            value, source = effective_kpr(labels, config, cncs)
            healthz = (config or {}).get(KPR_HEALTHZ_KEY, "")
            for cnc in cncs:
                if cnc.selects(labels) and KPR_HEALTHZ_KEY in cnc.defaults:
                    healthz = cnc.defaults[KPR_HEALTHZ_KEY]
            notes[KPR_AT_START] = "true" if kpr_on(value) else "false"
            notes[HEALTHZ_AT_START] = healthz
            self.fake.seed(pod)

    def _pods(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [p for p in self.fake.objects("pods", self.namespace)
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]

    def on_node(self, node_name: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [p for p in self._pods(labels) if p["spec"]["nodeName"] == node_name]


class NodeEndpoints:
    """Each node's /healthz and agent /metrics on its own address (one port for both)."""

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.port = _free_port()
        self.runners: list[web.AppRunner] = []
        self.kpr_off_anyway: set[str] = set()  # nodes whose agent reports KPR off (a bad node)

    async def start(self) -> None:
        for name, address in ADDRESSES.items():
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

    def _agent(self, name: str) -> dict[str, Any] | None:
        pods = self.kubelet.on_node(name, CILIUM_LABELS)
        return pods[0] if pods else None

    def agent_kpr(self, name: str) -> bool:
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESSES["node-a"], 0))
        return sock.getsockname()[1]


def seed_kube_proxy_cluster(fake: Any, *, helm: bool = False) -> None:
    """Three nodes, every one on kube-proxy: the starting point of the official procedure."""
    for name in NODES:
        made = node(name)
        made["status"]["addresses"] = [{"type": "InternalIP", "address": ADDRESSES[name]}]
        made["status"]["nodeInfo"] = {"kernelVersion": "6.8.0-45-generic",
                                      "kubeletVersion": "v1.31.2"}
        fake.seed(made)
    cilium_cm = configmap("cilium-config", "kube-system", {
        KPR_KEY: "false", "routing-mode": "native", "bpf-lb-mode": "snat"})
    fake.seed(cilium_cm)
    cilium = daemonset("cilium", "kube-system", CILIUM_LABELS, image="quay.io/cilium/cilium:v1.18.0")
    cilium["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "api.example.internal"},
        {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"}]
    fake.seed(cilium)
    fake.seed(daemonset("kube-proxy", "kube-system", KP_LABELS))
    fake.seed(configmap("kube-proxy", "kube-system", {"config.conf": "mode: iptables"}, KP_LABELS))


def settings(port: int, **overrides: Any) -> RollbackSettings:
    base: dict[str, Any] = dict(
        mode="enforce", namespace="kpr", identity="migration-test",
        proof=DatapathProof(kube_proxy_health_port=port, agent_metrics_port=port, timeout_seconds=60))
    base.update(overrides)
    return RollbackSettings(**base)


def migrate_settings(**overrides: Any) -> MigrateSettings:
    return MigrateSettings(**{"owner": "direct", "poll_interval_seconds": 5.0, **overrides})


def cluster_state(fake: Any) -> dict[str, Any]:
    """What the official procedure talks about, per step: labels, the kube-proxy DaemonSet's
    affinity, the CiliumNodeConfigs, cilium-config's KPR keys, where kube-proxy runs and
    which agents run KPR."""
    ds = fake.get("daemonsets", "kube-proxy", "kube-system")
    config = (fake.get("configmaps", "cilium-config", "kube-system") or {}).get("data") or {}
    return {
        "labels": {n["metadata"]["name"]: n["metadata"]["labels"].get(MIGRATION)
                   for n in fake.objects("nodes")},
        "unschedulable": sorted(n["metadata"]["name"] for n in fake.objects("nodes")
                                if (n.get("spec") or {}).get("unschedulable")),
        "kube_proxy_daemonset": None if ds is None else json.dumps(
            ds["spec"]["template"]["spec"].get("affinity"), sort_keys=True),
        "node_configs": {o["metadata"]["name"]: o["spec"] for o in
                         fake.objects("ciliumnodeconfigs", api_version="cilium.io/v2")},
        "kpr": config.get(KPR_KEY), "healthz": config.get(KPR_HEALTHZ_KEY) or None,
        "kube_proxy_on": sorted(p["spec"]["nodeName"] for p in fake.objects("pods", "kube-system")
                                if p["metadata"].get("labels", {}).get("k8s-app") == "kube-proxy"),
    }
