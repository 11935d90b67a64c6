"""Smoke tests of the real-stack harness: the real Prometheus and Alertmanager binaries.

- Prometheus loads the shipped rules (fast profile) without errors, scrapes a local aiohttp
  target serving a fixture exposition, evaluates every rule, and stops by pid.
- Alertmanager accepts the generated configuration (also by ``amtool check-config``) and
  delivers a posted alert to a local receiver with the bearer token.
- The shipped rules (squeezed into seconds) on the real Prometheus turn a slower eBPF cohort
  into a regression alert that Alertmanager delivers to a local webhook.
- A missing binary skips, or fails when KPR_REQUIRE_REAL_COMPONENTS=1.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from exporter.rulegen import render_rules
from tests.realstack.harness import (
    ALERTMANAGER, PROMETHEUS, REQUIRE_ENV, Alertmanager, AlertmanagerOptions,
    Prometheus, PrometheusOptions, ScrapeJob, WebhookReceiver, check_alertmanager_config,
    promtool, require_binary,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "realstack" / "kpr_metrics.txt"
RULES = ROOT / "alerts" / "rules"


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"{host}:{port}"


@pytest.fixture
async def metrics_target() -> AsyncIterator[str]:
    body = FIXTURE.read_text(encoding="utf-8")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=body.encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner, address = await _serve(app)
    yield address
    await runner.cleanup()


@pytest.mark.realstack
async def test_prometheus_loads_the_rules_and_scrapes_a_target(tmp_path: Path,
                                                               metrics_target: str) -> None:
    options = PrometheusOptions(rule_files=[RULES / "fast.yaml"],
                                jobs=[ScrapeJob("kpr-exporter", (metrics_target,))])
    async with Prometheus(tmp_path / "prometheus", options) as prom:
        assert isinstance(prom, Prometheus)
        pid = prom.pid
        await prom.wait_for_targets_up()
        groups = await prom.wait_for_rules_evaluated(timeout=30)
        expected = render_rules("fast")["groups"]
        assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in expected)
        assert sum(len(g["rules"]) for g in groups) == sum(len(g["rules"]) for g in expected)

        assert await prom.query_value("kpr_hubble_up") == 1.0
        assert await prom.query_value('kpr:rule_profile:info{profile="fast"}') == 1.0
        assert not [a for a in await prom.alerts() if a["labels"].get("kpr_action")]
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.realstack
async def test_alertmanager_delivers_a_posted_alert_with_the_bearer_token(tmp_path: Path) -> None:
    received: asyncio.Queue[tuple[str | None, dict]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((request.headers.get("Authorization"), await request.json()))
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhook/alertmanager", hook)
    runner, address = await _serve(app)
    token = "kpr-test-token-5f2a"
    options = AlertmanagerOptions(
        receiver=WebhookReceiver(url=f"http://{address}/webhook/alertmanager", token=token),
        matchers=('kpr_action="rollback"',),
    )
    try:
        async with Alertmanager(tmp_path / "alertmanager", options) as am:
            status = await am.status()
            assert status["cluster"]["status"] == "disabled"
            await am.post_alerts([{
                "labels": {"alertname": "KprHandshakeLatencyRegression", "namespace": "shop",
                           "service": "cart", "severity": "critical", "kpr_action": "rollback"},
                "annotations": {"summary": "TCP handshakes are slower through eBPF nodes."},
            }])
            auth, payload = await asyncio.wait_for(received.get(), timeout=30)
    finally:
        await runner.cleanup()
    assert auth == f"Bearer {token}"
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "kpr-exporter"
    [alert] = payload["alerts"]
    assert alert["labels"]["kpr_action"] == "rollback"
    assert alert["annotations"]["summary"] == "TCP handshakes are slower through eBPF nodes."
    assert alert["endsAt"].startswith("0001-01-01")


@pytest.mark.realstack
def test_generated_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    require_binary(ALERTMANAGER)
    token_file = tmp_path / "token"
    token_file.write_text("kpr-test-token\n", encoding="utf-8")
    for name, receiver in (("inline", WebhookReceiver("http://127.0.0.1:9977/webhook/alertmanager",
                                                      token="t")),
                           ("file", WebhookReceiver("http://127.0.0.1:9977/webhook/alertmanager",
                                                    token_file=token_file))):
        am = Alertmanager(tmp_path / name, AlertmanagerOptions(receiver=receiver))
        am.write_config()
        text = am.config_path.read_text(encoding="utf-8")
        for newer_only in ("url_file", "timeout", "http_headers"):
            assert newer_only not in text
        result = check_alertmanager_config(am.config_path)
        assert result.returncode == 0, result.stdout + result.stderr
        webhook = yaml.safe_load(text)["receivers"][0]["webhook_configs"][0]
        assert webhook["http_config"]["authorization"]["type"] == "Bearer"


@pytest.mark.realstack
@pytest.mark.parametrize("profile", ["default", "fast"])
def test_prometheus_config_with_the_rules_passes_promtool(tmp_path: Path, profile: str) -> None:
    require_binary(PROMETHEUS)
    prom = Prometheus(tmp_path, PrometheusOptions(rule_files=[RULES / f"{profile}.yaml"],
                                                  jobs=[ScrapeJob("kpr", ("127.0.0.1:9977",))],
                                                  alertmanagers=["127.0.0.1:9093"]))
    prom.write_config()
    result = promtool("check", "config", str(prom.config_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_binary_skips_or_fails_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "kpr-no-such-binary"
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_binary(missing)
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_ENV}=1 requires"):
        require_binary(missing)


def _seconds_profile_spec() -> object:
    """The default profile squeezed into seconds, so a whole detection runs in a test."""
    from exporter.rulegen.profiles import parse_spec

    doc = yaml.safe_load((ROOT / "alerts" / "profiles.yaml").read_text(encoding="utf-8"))
    doc["profiles"]["seconds"] = {
        "extends": "default",
        "assumptions": {"scrape_interval": "1s", "evaluation_interval": "1s", "group_wait": "1s"},
        "windows": {"short": "4s", "long": "10s"},
        "for": {"regression": "5s", "measurement": "1m", "rollback": "0s"},
        "guards": {"min_connections": 5, "min_flows": 5, "min_errors": 1, "min_node_packets": 5},
    }
    return parse_spec(doc)


@pytest.mark.realstack
async def test_a_regression_travels_from_prometheus_to_the_webhook(tmp_path: Path) -> None:
    """Shipped rules on the real Prometheus, a slower eBPF cohort, Alertmanager, the webhook."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    buckets = {"kube-proxy": {"0.001": 50, "0.0025": 90, "0.005": 100, "0.01": 100, "0.025": 100},
               "ebpf": {"0.001": 20, "0.0025": 50, "0.005": 80, "0.01": 95, "0.025": 100}}

    async def metrics(_: web.Request) -> web.Response:
        t = loop.time() - started + 1.0
        lines = []
        for dp, cumulative in buckets.items():
            base = f'namespace="shop",service="cart",datapath="{dp}"'
            for le, per_second in cumulative.items():
                lines.append(f'kpr_service_connect_duration_seconds_bucket{{{base},le="{le}"}} {per_second * t}')
            lines.append(f'kpr_service_connect_duration_seconds_bucket{{{base},le="+Inf"}} {100 * t}')
            lines.append(f'kpr_service_connect_attempts_total{{{base},result="established"}} {100 * t}')
            lines.append(f'kpr_service_flows_total{{{base},verdict="FORWARDED"}} {1000 * t}')
        return web.Response(body=("\n".join(lines) + "\n").encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    received: asyncio.Queue[tuple[str | None, dict]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((request.headers.get("Authorization"), await request.json()))
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/webhook/alertmanager", hook)
    runner, address = await _serve(app)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(render_rules("seconds", spec=_seconds_profile_spec()),
                                    sort_keys=False), encoding="utf-8")
    token = "kpr-e2e-token"
    try:
        async with Alertmanager(tmp_path / "am", AlertmanagerOptions(
                receiver=WebhookReceiver(f"http://{address}/webhook/alertmanager", token=token),
                matchers=('kpr_action="rollback"',))) as am:
            options = PrometheusOptions(rule_files=[rules], jobs=[ScrapeJob("kpr-exporter", (address,))],
                                        alertmanagers=[am.address])
            async with Prometheus(tmp_path / "prom", options) as prom:
                alert = await prom.wait_for_alert("KprHandshakeLatencyRegression", timeout=60)
                assert alert["labels"]["comparison"] == "canary-vs-control"
                auth, payload = await asyncio.wait_for(received.get(), timeout=60)
    finally:
        await runner.cleanup()
    assert auth == f"Bearer {token}"
    [delivered] = payload["alerts"]
    labels = delivered["labels"]
    assert labels["alertname"] == "KprHandshakeLatencyRegression"
    assert (labels["kpr_action"], labels["kpr_scope"], labels["datapath"]) == ("rollback", "canary", "ebpf")
    assert (labels["namespace"], labels["service"]) == ("shop", "cart")
    assert "job" not in labels and "instance" not in labels  # summed over exporters
    assert "22ms" in delivered["annotations"]["description"]
    assert delivered["annotations"]["runbook_url"].endswith("#kprhandshakelatencyregression")
