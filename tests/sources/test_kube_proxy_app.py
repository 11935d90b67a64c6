"""The exporter's wiring of the kube-proxy scraper, against the fake Kubernetes API.

Matrix: kube-proxy pods discovered through the API (host network: the pod IP is the
node's; IPv6 bracketed; a pending pod and a non-kube-proxy pod left out); node mode asks
only for its own node; ``--kube-proxy.enabled=false`` builds no scraper; the static list
wins over discovery; ``for_simulator`` points kube-proxy at the simulator's routes.
"""

from __future__ import annotations

import dataclasses

from exporter import app as app_module
from exporter import config
from tests.fakekube.fixtures import pod

KUBE_PROXY = {"k8s-app": "kube-proxy"}


def _kube_proxy(name: str, node_name: str, ip: str, phase: str = "Running") -> dict:
    obj = pod(name, "kube-system", node_name, KUBE_PROXY)
    obj["status"]["podIP"] = ip
    obj["status"]["phase"] = phase
    return obj


def _exporter(fake, **kube_proxy) -> app_module.Exporter:
    settings = config.load(env={}, flags={"--kube.kubeconfig": str(fake.kubeconfig),
                                          "--kube.enabled": "true",
                                          "--web.listen-address": "127.0.0.1:0"})
    settings = dataclasses.replace(
        settings, kube_proxy=dataclasses.replace(settings.kube_proxy, **kube_proxy))
    return app_module.Exporter(settings)


async def test_kube_proxies_are_discovered_through_the_api(fake_kube) -> None:
    fake_kube.seed(_kube_proxy("kube-proxy-a", "node-a", "172.18.0.2"))
    fake_kube.seed(_kube_proxy("kube-proxy-b", "node-b", "fd00::3"))
    fake_kube.seed(_kube_proxy("kube-proxy-c", "node-c", "172.18.0.4", phase="Pending"))
    fake_kube.seed(pod("cilium-a", "kube-system", "node-a", {"k8s-app": "cilium"}))
    exporter = _exporter(fake_kube)
    try:
        assert exporter.kube_proxies is not None
        found = await exporter._discover_kube_proxies()
    finally:
        await exporter.kube.close()
    assert found == {"node-a": "http://172.18.0.2:10249/metrics",
                     "node-b": "http://[fd00::3]:10249/metrics"}


async def test_node_mode_asks_only_for_its_own_node(fake_kube) -> None:
    fake_kube.seed(_kube_proxy("kube-proxy-a", "node-a", "172.18.0.2"))
    exporter = _exporter(fake_kube, node_name="node-a")
    try:
        await exporter._discover_kube_proxies()
    finally:
        await exporter.kube.close()
    listings = [r for r in fake_kube.requests if r.path.endswith("/namespaces/kube-system/pods")]
    assert listings, "no pod listing was made"
    assert listings[-1].query.get("fieldSelector") == "spec.nodeName=node-a"
    assert listings[-1].query.get("labelSelector") == "k8s-app=kube-proxy"


async def test_disabled_builds_no_scraper_and_static_wins(fake_kube) -> None:
    off = _exporter(fake_kube, enabled=False)
    static = _exporter(fake_kube, static={"w1": "http://127.0.0.1:1/metrics"})
    try:
        assert off.kube_proxies is None
        assert static.kube_proxies is not None
        assert await static.kube_proxies._discover() == {"w1": "http://127.0.0.1:1/metrics"}
    finally:
        await off.kube.close()
        await static.kube.close()


def test_for_simulator_points_kube_proxy_at_the_simulator() -> None:
    settings = app_module.for_simulator(config.load(env={}), 1234, 5678, ["node-a", "node-b"])
    assert settings.kube_proxy.static == {
        "node-a": "http://127.0.0.1:5678/nodes/node-a/kube-proxy/metrics",
        "node-b": "http://127.0.0.1:5678/nodes/node-b/kube-proxy/metrics"}
    assert settings.kube_proxy.interval_seconds <= 2.0
