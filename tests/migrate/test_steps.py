"""Single steps against the fake API: cordon and drain as kubectl drain does, and a
CiliumNodeConfig of the same name that is not the migration's is never taken over.

Drain: pods of controllers are evicted through pods/eviction (never deleted), DaemonSet and
mirror pods stay, a pod without a controller stays with a warning; a PodDisruptionBudget that
allows no disruption holds the drain (429 retried with backoff) until the test, playing the
disruption controller, frees it, or until the drain's deadline fails the step; evictions that
are forbidden fail it at once, saying what to grant."""

from __future__ import annotations

import pytest

from exporter.migrate.drain import MIRROR_ANNOTATION as MIRROR
from exporter.migrate.steps import Steps
from exporter.rollback.appliers import StepFailed
from tests.fakekube.fixtures import cilium_node_config, pod
from tests.migrate.cluster import migrate_settings, seed_kube_proxy_cluster, settings


async def allowed() -> None:
    return None


def steps(kube, vtime) -> Steps:
    return Steps(kube, settings(1), migrate_settings(), clock=vtime, sleep=vtime.sleep,
                 guard=allowed, watch=lambda: None)


REPLICASET = {"kind": "ReplicaSet", "name": "web"}
EVICTIONS = "/eviction"


def web(name: str, node: str = "node-a") -> dict:
    return pod(name, "shop", node, {"app": "web"}, owner=REPLICASET)


def evictions(fake_kube) -> list[str]:
    return [r.path.split("/")[-2] for r in fake_kube.requests
            if r.method == "POST" and r.path.endswith(EVICTIONS)]


async def test_drain_evicts_controlled_pods_and_leaves_the_rest(fake_kube, kube, kubelet, vtime):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    fake_kube.seed(web("web-1"))
    fake_kube.seed(pod("debug", "shop", "node-a"))
    fake_kube.seed(web("web-2", "node-b"))
    mirror = pod("etcd-node-a", "kube-system", "node-a", annotations={MIRROR: "x"},
                 owner={"apiVersion": "v1", "kind": "Node", "name": "node-a"})
    fake_kube.seed(mirror)
    s = steps(kube, vtime)
    cordoned = await s.cordon(["node-a"], ())
    assert cordoned == ("node-a",)
    assert fake_kube.get("nodes", "node-a")["spec"]["unschedulable"] is True
    fake_kube.clear_requests()
    warnings = await s.drain(["node-a"])
    left = {p["metadata"]["name"] for p in fake_kube.objects("pods", "shop")}
    assert left == {"debug", "web-2"} and "shop/debug" in warnings[0]
    assert evictions(fake_kube) == ["web-1"]
    assert not [r for r in fake_kube.requests if r.method == "DELETE"], "evicted, never deleted"
    assert len(kubelet.on_node("node-a", {"k8s-app": "kube-proxy"})) == 1  # DaemonSet pods stay
    assert fake_kube.get("pods", "etcd-node-a", "kube-system") is not None  # mirror pods too
    assert await s.cordon(["node-a"], cordoned) == ("node-a",)  # again: nothing new
    await s.uncordon(["node-a"])
    assert not fake_kube.get("nodes", "node-a")["spec"].get("unschedulable")


async def test_a_foreign_node_config_of_the_same_name_is_refused(fake_kube, kube, vtime):
    seed_kube_proxy_cluster(fake_kube)
    fake_kube.seed(cilium_node_config("kube-proxy-replacement", "kube-system", {},
                                      {"kube-proxy-replacement": "true"}))
    with pytest.raises(StepFailed, match="exists with another spec"):
        await steps(kube, vtime).create_node_config()
    assert fake_kube.get("ciliumnodeconfigs", "kube-proxy-replacement", "kube-system",
                         api_version="cilium.io/v2")["spec"]["nodeSelector"] == {}


async def test_a_budget_holds_the_drain_until_it_allows_a_disruption(fake_kube, kube, kubelet, vtime):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    for name in ("web-1", "web-2"):
        fake_kube.seed(web(name))
    fake_kube.budget("web", "shop", {"app": "web"}, allowed=1)
    waited: list[float] = []

    async def sleep(seconds: float) -> None:  # the disruption controller, after 3 waits
        waited.append(seconds)
        if len(waited) == 3:
            fake_kube.budget("web", "shop", {"app": "web"}, allowed=1)
        await vtime.sleep(seconds)

    s = Steps(kube, settings(1), migrate_settings(), clock=vtime, sleep=sleep,
              guard=allowed, watch=lambda: None)
    fake_kube.clear_requests()
    assert await s.drain(["node-a"]) == []
    assert fake_kube.objects("pods", "shop") == []
    assert evictions(fake_kube) == ["web-1", "web-2", "web-2", "web-2", "web-2"]
    assert waited == [1.0, 2.0, 4.0], "refused evictions back off"


async def test_a_budget_that_never_allows_fails_the_drain_at_its_deadline(fake_kube, kube, kubelet,
                                                                         vtime):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    fake_kube.seed(web("web-1"))
    fake_kube.budget("web", "shop", {"app": "web"}, allowed=0, healthy=3)
    s = Steps(kube, settings(1), migrate_settings(drain_timeout_seconds=120), clock=vtime,
              sleep=vtime.sleep, guard=allowed, watch=lambda: None)
    start = vtime.now
    with pytest.raises(StepFailed, match="allowed no eviction before the drain's deadline") as err:
        await s.drain(["node-a"])
    assert "shop/web-1: Cannot evict pod as it would violate the pod's disruption budget" in str(
        err.value)
    assert vtime.now - start == 120, "retried until the deadline, not past it"
    assert fake_kube.get("pods", "web-1", "shop") is not None, "nothing forced"


async def test_forbidden_evictions_fail_the_drain_at_once_saying_what_to_grant(fake_kube, kube,
                                                                              kubelet, vtime):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    fake_kube.seed(web("web-1"))
    fake_kube.deny("create", "pods/eviction")
    with pytest.raises(StepFailed, match="migration.drain=true"):
        await steps(kube, vtime).drain(["node-a"])
    assert vtime.sleeps == 0 and fake_kube.get("pods", "web-1", "shop") is not None
