"""The node's own answers about KPR: the agent's gauge and the KPR health endpoint."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web

from exporter.migrate.prove import KPR_HEALTH, KPR_ON, MigrationProver, proven
from exporter.rollback.prove import Proof

GAUGE = "cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled"


@pytest.fixture
async def agent():
    served = {"metrics": f"{GAUGE} 1\n", "healthz": 200}

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=served["metrics"])

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"lastUpdated": "2026-12-06 10:00:20 +0000 UTC",
                                  "currentTime": "2026-12-06 10:00:25 +0000 UTC"},
                                 status=served["healthz"])

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    served["port"] = port
    yield served
    await runner.cleanup()


@pytest.mark.parametrize("text, ok, says", [
    (f"{GAUGE} 1\n", True, "on"), (f"{GAUGE} 0\n", False, "off"),
    ("cilium_drop_count_total 3\n", None, "no KPR feature gauge"),
])
async def test_the_gauge_decides(agent, text, ok, says):
    agent["metrics"] = text
    async with aiohttp.ClientSession() as session:
        prover = MigrationProver(session, health_port=agent["port"], max_age_seconds=60,
                                 timeout_seconds=5, clock=lambda: 0.0)
        proof = await prover.kpr_on("n1", f"http://127.0.0.1:{agent['port']}/metrics")
    assert proof.check == KPR_ON and proof.ok is ok and says in proof.detail


async def test_the_health_endpoint_must_answer(agent):
    async with aiohttp.ClientSession() as session:
        prover = MigrationProver(session, health_port=agent["port"], max_age_seconds=60,
                                 timeout_seconds=5, clock=lambda: 0.0)
        assert (await prover.kpr_health("n1", "127.0.0.1")).ok is True
        agent["healthz"] = 503
        bad = await prover.kpr_health("n1", "127.0.0.1")
    assert bad.check == KPR_HEALTH and bad.ok is False and "503" in bad.detail


async def test_an_agent_that_cannot_be_read_proves_nothing(agent):
    async with aiohttp.ClientSession() as session:
        prover = MigrationProver(session, health_port=agent["port"], max_age_seconds=60,
                                 timeout_seconds=5, clock=lambda: 0.0)
        missing = await prover.kpr_on("n1", f"http://127.0.0.1:{agent['port']}/nothing")
    assert missing.check == KPR_ON and missing.ok is False and "answered 404" in missing.detail


def test_unknown_defers_and_false_fails():
    assert proven([Proof("n", "a", True, "x"), Proof("n", "b", None, "y")]) == (True, "a: x; b: y")
    assert proven([Proof("n", "a", False, "x")])[0] is False
