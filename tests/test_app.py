"""The composition root against the fake Kubernetes API: agent discovery, datapath from the API."""

from __future__ import annotations

import dataclasses

import pytest

from exporter import app as app_module
from exporter import config
from tests.fakekube.fixtures import fake_kube, node, pod  # noqa: F401 - fixture

AGENT = {"k8s-app": "cilium"}


def _agent(name: str, node_name: str, ip: str) -> dict:
    obj = pod(name, "kube-system", node_name, AGENT)
    obj["status"]["podIP"] = ip
    return obj


def _exporter(fake, **agents) -> app_module.Exporter:
    settings = config.load(env={}, flags={"--kube.kubeconfig": str(fake.kubeconfig),
                                          "--kube.enabled": "true",
                                          "--web.listen-address": "127.0.0.1:0"})
    settings = dataclasses.replace(settings, agents=dataclasses.replace(settings.agents, **agents))
    return app_module.Exporter(settings)


@pytest.fixture
def agents(fake_kube):  # noqa: F811
    fake_kube.seed(_agent("cilium-a", "node-a", "10.0.0.11"))
    fake_kube.seed(_agent("cilium-b", "node-b", "fd00::12"))
    fake_kube.seed(pod("web", "kube-system", "node-a", {"app": "web"}))  # not an agent
    return fake_kube


async def test_agents_are_discovered_through_the_api(agents):
    exporter = _exporter(agents)
    try:
        found = await exporter._discover_agents()
    finally:
        await exporter.kube.close()
    assert found == {"node-a": "http://10.0.0.11:9962/metrics",
                     "node-b": "http://[fd00::12]:9962/metrics"}


async def test_node_mode_discovers_only_its_own_nodes_agent(agents):
    exporter = _exporter(agents, node_name="node-b")
    try:
        found = await exporter._discover_agents()
    finally:
        await exporter.kube.close()
    assert found == {"node-b": "http://[fd00::12]:9962/metrics"}
    [listing] = [r for r in agents.requests if r.path.endswith("/namespaces/kube-system/pods")]
    assert listing.query.get("fieldSelector") == "spec.nodeName=node-b"
    assert listing.query.get("labelSelector") == "k8s-app=cilium"
