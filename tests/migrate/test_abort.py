"""Abort at every stage returns the cluster to where it started; a crash after each step,
then a resume, finishes the migration without doing anything twice."""

from __future__ import annotations

import pytest

from exporter.migrate.model import STEP_ABORTED, STEP_COMPLETED
from exporter.migrate.store import Request
from tests.migrate.cluster import NODES, cluster_state, seed_kube_proxy_cluster
from tests.migrate.harness import controller, record_migration, spec

STARTING = {"labels": dict.fromkeys(NODES), "unschedulable": [], "kube_proxy_daemonset": "null",
            "node_configs": {}, "kpr": "false", "healthz": None, "kube_proxy_on": list(NODES)}
#: Every step a migration can stop after (cleanup ends it: nothing left to abort).
STAGES = ("pending", "preflight", "exclude-kube-proxy", "node-config", "drain", "label",
          "restart", "verify", "uncordon", "gates", "cluster-wide")


class Crash(Exception):
    """The process dies right after a step was persisted."""


def assert_back_to_kube_proxy(fake, endpoints) -> None:
    state = cluster_state(fake)
    assert state["labels"] == dict.fromkeys(NODES) and state["node_configs"] == {}
    assert state["kube_proxy_on"] == list(NODES) and state["kpr"] == "false"
    assert state["kube_proxy_daemonset"] == "null" and state["unschedulable"] == []
    assert not any(endpoints.agent_kpr(n) for n in NODES)


def crashing_after(stage: str, nth: int = 1):
    seen = {"count": 0}

    def say(text: str) -> None:
        if text.split(":", 1)[0] == stage:
            seen["count"] += 1
            if seen["count"] == nth:
                raise Crash(stage)

    return say


async def crash_at(kube, vtime, port, stage: str, **kw):
    ctl = controller(kube, vtime, port, **kw)
    ctl._say = crashing_after(stage)
    await record_migration(ctl, spec(drain=True))
    with pytest.raises(Crash):
        while True:
            await ctl.tick()
            await vtime.sleep(5)


@pytest.mark.parametrize("stage", STAGES)
async def test_abort_after_any_step_returns_to_the_starting_state(fake_kube, kube, kubelet, vtime,
                                                                  endpoints, stage):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    assert cluster_state(fake_kube) == STARTING
    await crash_at(kube, vtime, endpoints.port, stage)
    resumed = controller(kube, vtime, endpoints.port)
    await resumed.store.update_request(lambda q: Request(abort=f"test at {stage}", by="test"))
    status = await resumed.run()
    assert status.step == STEP_ABORTED, status.message
    assert_back_to_kube_proxy(fake_kube, endpoints)
    assert cluster_state(fake_kube) == STARTING


@pytest.mark.parametrize("stage", (*STAGES[1:], "cleanup"))
async def test_a_crash_after_any_step_resumes_and_does_nothing_twice(fake_kube, kube, kubelet,
                                                                     vtime, endpoints, stage):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    await crash_at(kube, vtime, endpoints.port, stage)
    status = await controller(kube, vtime, endpoints.port).run()
    assert status.step == STEP_COMPLETED, status.message
    restarts = [n for ds, n in kubelet.created if ds == "cilium"]
    assert sorted(restarts) == sorted([*NODES, *NODES])  # started once, restarted once each
    assert cluster_state(fake_kube)["kube_proxy_daemonset"] is None
    assert all(endpoints.agent_kpr(n) for n in NODES)
