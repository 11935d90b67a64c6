"""Which pods a drain moves (kubectl drain's rules) and the eviction rounds on their own.

Matrix: a ReplicaSet's pod is evicted; a DaemonSet's, a mirror pod and finished pods stay
silently; a pod without a controller stays with a warning naming it and its node. Evictions
carry the pod's uid: a new pod that took the name is left alone and counts as moved; a pod
already gone counts as moved; nothing is written without the guard.
"""

from __future__ import annotations

import pytest

from exporter.migrate.drain import MIRROR_ANNOTATION, drain_targets, evict_all, evictable
from tests.fakekube.fixtures import pod

RS = {"kind": "ReplicaSet", "name": "web"}


@pytest.mark.parametrize("made, verdict", [
    (pod("web", "shop", "n1", owner=RS), True),
    (pod("agent", "kube-system", "n1", owner={"kind": "DaemonSet", "name": "cilium"}), False),
    (pod("etcd-n1", "kube-system", "n1", annotations={MIRROR_ANNOTATION: "h"},
         owner={"apiVersion": "v1", "kind": "Node", "name": "n1"}), False),
    (pod("job-1", "shop", "n1", phase="Succeeded", owner={"kind": "Job", "name": "j"}), False),
    (pod("crashed", "shop", "n1", phase="Failed"), False),
    (pod("debug", "shop", "n1"), None),
], ids=["replicaset", "daemonset", "mirror", "succeeded", "failed", "bare"])
def test_kubectl_drains_rules(made, verdict):
    assert evictable(made) is verdict


def test_targets_and_warnings():
    pods = [pod("web", "shop", "n1", owner=RS), pod("debug", "shop", "n2")]
    targets, warnings = drain_targets(pods)
    assert [p["metadata"]["name"] for p in targets] == ["web"]
    assert warnings == ["pod shop/debug on n2 has no controller: left in place (kubectl drain "
                        "would need --force)"]


async def test_a_new_pod_of_the_same_name_is_not_evicted(fake_kube, kube):
    old = fake_kube.seed(pod("db-0", "shop", "n1", owner={"kind": "StatefulSet", "name": "db"}))
    gone = pod("web-1", "shop", "n1", owner=RS)  # listed, then deleted by someone else
    fake_kube.remove("pods", "db-0", "shop")
    fake_kube.seed(pod("db-0", "shop", "n1", owner={"kind": "StatefulSet", "name": "db"}))
    guarded: list[int] = []

    async def guard() -> None:
        guarded.append(1)

    async def never(_: float) -> None:
        raise AssertionError("nothing was refused: no wait")

    await evict_all(kube, [old, gone], deadline=0.0, clock=lambda: 0.0, sleep=never, guard=guard,
                    watch=lambda: None)
    assert fake_kube.get("pods", "db-0", "shop")["metadata"]["uid"] != old["metadata"]["uid"]
    assert len(guarded) == 2, "the Lease is checked before every eviction"
