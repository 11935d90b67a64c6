"""Datapath proof against local servers playing kube-proxy's health endpoint and an agent.

kube-proxy: fresh, stale (by its own currentTime, whatever our clock says), 503,
unreachable, unreadable lastUpdated. Agent: gauge off, still on, absent (Cilium < 1.17),
500. Each node has its own loopback address, all on the same port, as on a real cluster.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from exporter.rollback.prove import (
    KPR_OFF, KUBE_PROXY_HEALTH, DatapathProver, GaugeReading, parse_go_time,
)

NOW = "2026-12-06 10:00:30.123456789 +0000 UTC m=+3600.1"
HEALTH = {
    "127.0.0.11": (200, {"lastUpdated": "2026-12-06 10:00:20.5 +0000 UTC m=+3590.5", "currentTime": NOW}),
    "127.0.0.12": (200, {"lastUpdated": "2026-12-06 09:50:00 +0000 UTC m=+2970", "currentTime": NOW}),
    "127.0.0.13": (503, {"lastUpdated": "2026-12-06 09:00:00 +0000 UTC", "currentTime": NOW}),
    "127.0.0.15": (200, {"lastUpdated": "yesterday", "currentTime": NOW}),
}
AGENT = {
    "on": "cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled 1\n",
    "off": "# TYPE x gauge\ncilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled 0\n",
    "old": 'cilium_version{version="1.16.5"} 1\n',
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def servers() -> AsyncIterator[int]:
    port = free_port()

    async def healthz(request: web.Request) -> web.Response:
        status, body = HEALTH[request.host.rsplit(":", 1)[0]]
        return web.json_response(body, status=status)

    async def metrics(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind == "broken":
            return web.Response(status=500)
        return web.Response(text=AGENT[kind])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/agent/{kind}", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    for address in HEALTH:
        await web.TCPSite(runner, address, port).start()
    yield port
    await runner.cleanup()


@pytest.fixture
async def prover(servers: int) -> AsyncIterator[tuple[DatapathProver, int]]:
    async with aiohttp.ClientSession() as session:
        # our clock is a day off: freshness must come from the node's own currentTime
        yield DatapathProver(session, health_port=servers, max_age_seconds=60,
                             timeout_seconds=2, clock=lambda: 0.0), servers


@pytest.mark.parametrize("address, ok, text", [
    ("127.0.0.11", True, "rules synced 10 s ago"),
    ("127.0.0.12", False, "rules last synced 630 s ago (limit 60 s)"),
    ("127.0.0.13", False, "answered 503"),
    ("127.0.0.14", False, "unreachable"),
    ("127.0.0.15", False, "no readable lastUpdated"),
])
async def test_kube_proxy_health(prover, address: str, ok: bool, text: str) -> None:
    check, _ = prover
    proof = await check.kube_proxy("node-x", address)
    assert (proof.node, proof.check, proof.ok) == ("node-x", KUBE_PROXY_HEALTH, ok)
    assert text in proof.detail, proof


@pytest.mark.parametrize("kind, ok, text", [
    ("off", True, "reports kube-proxy replacement off"),
    ("on", False, "still reports kube-proxy replacement on"),
    ("old", None, "Cilium < 1.17"),
    ("broken", False, "answered 500"),
])
async def test_agent_kpr_gauge(prover, kind: str, ok: bool | None, text: str) -> None:
    check, port = prover
    proof = await check.kpr_off("node-x", f"http://127.0.0.11:{port}/agent/{kind}")
    assert (proof.check, proof.ok) == (KPR_OFF, ok) and text in proof.detail


async def test_the_shared_gauge_reader(prover) -> None:
    """One reading of the gauge, for either direction: on, off, not exported, or why not read."""
    check, port = prover
    url = f"http://127.0.0.11:{port}/agent/"
    assert await check.kpr_gauge(url + "on") == GaugeReading(True)
    assert await check.kpr_gauge(url + "off") == GaugeReading(False)
    assert await check.kpr_gauge(url + "old") == GaugeReading(None)
    broken = await check.kpr_gauge(url + "broken")
    assert broken.enabled is None and "answered 500" in broken.problem
    gone = await check.kpr_gauge(f"http://127.0.0.14:{port}/agent/on")
    assert gone.enabled is None and "unreachable" in gone.problem


def test_go_time_texts() -> None:
    assert parse_go_time("2026-12-06 10:00:30.5 +0000 UTC m=+1.0") == pytest.approx(1796551230.5)
    assert parse_go_time("2026-12-06T11:00:30+01:00") == parse_go_time("2026-12-06 10:00:30 +0000 UTC")
    assert parse_go_time("2026-12-06T10:00:30Z") == parse_go_time("2026-12-06 10:00:30 +0000 UTC")
    assert parse_go_time("") is None and parse_go_time("soon") is None
