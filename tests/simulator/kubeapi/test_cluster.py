"""The cluster around the simulated API: the kubelet's DaemonSet controller, garbage
collector and agent start, and each node's endpoints on its own loopback address.

- every node gets one owned pod of each DaemonSet; nothing twice on a second round
- a CiliumNodeConfig selecting a node's label turns KPR on for an agent started after it,
  not for one already running (it keeps what it started with)
- the kube-proxy pod leaves a node its DaemonSet's affinity excludes; a deleted DaemonSet's
  pods go
- /healthz: 200 while kube-proxy runs there or the agent runs KPR with its health endpoint,
  503 otherwise; /metrics: the agent's KPR gauge as it started
"""

from __future__ import annotations

import aiohttp

from exporter.cilium import KPR_HEALTHZ_KEY, KPR_KEY, MIGRATION_LABEL
from exporter.simulator.kubeapi.cluster import (
    CILIUM_LABELS, KP_LABELS, Kubelet, NodeEndpoints, seed_kube_proxy_cluster,
)
from exporter.simulator.kubeapi.objects import cilium_node_config
from exporter.simulator.kubeapi.server import FakeKube

NODES = {"node-x": "127.0.0.31", "node-y": "127.0.0.32"}
GAUGE = "cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled"


def _cluster() -> tuple[FakeKube, Kubelet]:
    fake = FakeKube()  # direct store access only: no server needed
    seed_kube_proxy_cluster(fake, addresses=NODES)
    kubelet = Kubelet(fake, addresses=NODES)
    kubelet.reconcile()
    return fake, kubelet


def _label(fake: FakeKube, name: str) -> None:
    node = fake.get("nodes", name)
    node["metadata"]["labels"][MIGRATION_LABEL] = "true"
    fake.seed(node)


def _restart_agent(fake: FakeKube, kubelet: Kubelet, name: str) -> None:
    for agent in kubelet.on_node(name, CILIUM_LABELS):
        fake.remove("pods", agent["metadata"]["name"], "kube-system")
    kubelet.reconcile()


def test_each_node_gets_one_owned_pod_of_each_daemonset():
    fake, kubelet = _cluster()
    kubelet.reconcile()
    for name in NODES:
        for labels in (CILIUM_LABELS, KP_LABELS):
            pods = kubelet.on_node(name, labels)
            assert len(pods) == 1
            assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
            assert pods[0]["status"]["podIP"] == NODES[name]


def test_an_agent_runs_the_kpr_it_started_with():
    fake, kubelet = _cluster()
    endpoints = NodeEndpoints(kubelet)
    fake.seed(cilium_node_config("kube-proxy-replacement", "kube-system",
                                 {"matchLabels": {MIGRATION_LABEL: "true"}},
                                 {KPR_KEY: "true", KPR_HEALTHZ_KEY: "0.0.0.0:10256"}))
    _label(fake, "node-x")
    kubelet.reconcile()
    assert not endpoints.agent_kpr("node-x")  # still the agent started before the label
    _restart_agent(fake, kubelet, "node-x")
    assert endpoints.agent_kpr("node-x") and not endpoints.agent_kpr("node-y")


def test_kube_proxy_leaves_excluded_nodes_and_a_deleted_daemonset_takes_its_pods():
    fake, kubelet = _cluster()
    proxy = fake.get("daemonsets", "kube-proxy", "kube-system")
    proxy["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": MIGRATION_LABEL, "operator": "NotIn",
                                   "values": ["true"]}]}]}}}
    fake.seed(proxy)
    _label(fake, "node-y")
    kubelet.reconcile()
    assert kubelet.on_node("node-y", KP_LABELS) == [] and kubelet.on_node("node-x", KP_LABELS)
    fake.remove("daemonsets", "kube-proxy", "kube-system")
    kubelet.reconcile()
    assert all(kubelet.on_node(n, KP_LABELS) == [] for n in NODES)
    assert all(kubelet.on_node(n, CILIUM_LABELS) for n in NODES)


async def test_each_node_answers_healthz_and_the_agent_gauge_on_its_own_address():
    fake, kubelet = _cluster()
    endpoints = NodeEndpoints(kubelet)
    await endpoints.start()
    try:
        async with aiohttp.ClientSession() as session:
            async def get(name: str, path: str) -> tuple[int, str]:
                url = f"http://{NODES[name]}:{endpoints.port}{path}"
                async with session.get(url) as answer:
                    return answer.status, await answer.text()

            assert (await get("node-x", "/healthz"))[0] == 200  # kube-proxy runs there
            assert (await get("node-x", "/metrics"))[1] == f"{GAUGE} 0\n"
            fake.remove("daemonsets", "kube-proxy", "kube-system")
            kubelet.reconcile()
            assert (await get("node-x", "/healthz"))[0] == 503  # nothing serves it now
            config = fake.get("configmaps", "cilium-config", "kube-system")
            config["data"].update({KPR_KEY: "true", KPR_HEALTHZ_KEY: "0.0.0.0:10256"})
            fake.seed(config)
            _restart_agent(fake, kubelet, "node-y")
            assert (await get("node-y", "/healthz"))[0] == 200  # the agent's KPR health
            assert (await get("node-y", "/metrics"))[1] == f"{GAUGE} 1\n"
            assert (await get("node-x", "/metrics"))[1] == f"{GAUGE} 0\n"
    finally:
        await endpoints.stop()
