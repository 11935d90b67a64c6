"""The rollback's last step asks each node itself (local servers play kube-proxy's health
endpoint and the restarted agent's metrics on the node's own loopback address).

A node whose agent still reports KPR on stops the rollback at the proof with that reason,
after everything before it was applied (the cluster is no worse: kube-proxy is back and
the configuration says off); a node that shows it succeeds.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from exporter.rollback.roles import FAILED, SUCCEEDED, Scope, Trigger
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.settings import DatapathProof
from tests.fakekube.fixtures import node

from .cluster import MIGRATION, seed_canary, settings
from .test_executor import planner

NODE_B = "127.0.0.42"
FRESH = {"lastUpdated": "2026-12-06 10:00:20 +0000 UTC", "currentTime": "2026-12-06 10:00:25 +0000 UTC"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((NODE_B, 0))
        return sock.getsockname()[1]


@pytest.fixture
async def node_b() -> AsyncIterator[dict]:
    """node-b's kube-proxy /healthz and agent /metrics, on node-b's address."""
    served = {"port": free_port(), "gauge": 0}

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(FRESH)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text="cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled "
                                 f"{served['gauge']}\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, NODE_B, served["port"]).start()
    yield served
    await runner.cleanup()


def seed(fake, controller) -> None:
    seed_canary(fake)
    b = node("node-b", {MIGRATION: "true"})
    b["status"]["addresses"] = [{"type": "InternalIP", "address": NODE_B}]
    fake.seed(b)
    controller.pod_ips["node-b"] = NODE_B
    controller.reconcile()


def proof_settings(port: int):
    return settings(proof=DatapathProof(kube_proxy_health_port=port, agent_metrics_port=port,
                                        timeout_seconds=30))


@pytest.mark.parametrize("gauge, status, text", [
    (0, SUCCEEDED, ""),
    (1, FAILED, "kpr-off: the agent still reports kube-proxy replacement on"),
])
async def test_the_node_must_show_it(fake_kube, kube, controller, vtime, node_b, gauge, status, text):
    seed(fake_kube, controller)
    node_b["gauge"] = gauge
    s = proof_settings(node_b["port"])
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), Trigger("test", ()))
    assert [a.describe() for _, step, a in plan.actions() if step.name == "prove"] == [
        "prove node-b is on kube-proxy: its /healthz synced recently and the agent's KPR "
        "feature gauge reads 0"]
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == status, result.message
    assert text in result.message
    if status == FAILED:
        assert "proof on node-b's datapath" in result.message
        assert MIGRATION not in fake_kube.get("nodes", "node-b")["metadata"]["labels"], \
            "what was applied before the proof stays: kube-proxy is back"
