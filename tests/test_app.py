"""The composition root against the fake Kubernetes API: agent discovery, datapath from the API;
offline with a static datapath map; and ``web.role``: a collector runs no webhook, judge,
baseline or rollback loop; a central instance reads no Hubble and scrapes no agent but judges
over (a fake, loopback) Prometheus and answers the webhook; settings a role cannot honour are
refused."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import aiohttp
import pytest

from exporter import app as app_module
from exporter import config
from tests.fakekube.fixtures import node, pod
from tests.judge.samples import BOUNDS
from tests.judge_prom.fakeprom import FakePrometheus
from tests.judge_prom.test_source import LONG, NOW, SHORT, fleet

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
def agents(fake_kube):
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


# --- running without Kubernetes: the static datapath map gives the phase -------------------

FIRING = {
    "version": "4", "groupKey": "{}:{alertname=\"KprJudgeServiceWorse\"}", "status": "firing",
    "receiver": "kpr", "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "fingerprint": "0a1b2c3d4e5f6071",
                "startsAt": "2026-11-24T19:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "labels": {"alertname": "KprJudgeServiceWorse", "kpr_action": "rollback",
                           "namespace": "shop", "service": "cart"}}],
}


@pytest.fixture
def refused_address():
    """A loopback port that is bound but never listens: every dial to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
async def offline(refused_address, tmp_path):
    """Start ``kpr-exporter run --kube.enabled false [--datapath.static ...]`` in-process."""
    started: list[app_module.Exporter] = []

    async def start(static: str = "", *, role: str = "all", clock=time.time, flags=None,
                    **webhook) -> app_module.Exporter:
        flags = {"--kube.enabled": "false", "--web.listen-address": "127.0.0.1:0",
                 "--hubble.address": refused_address, "--web.role": role, **(flags or {})}
        if static:
            flags["--datapath.static"] = static
        settings = config.load(env={}, flags=flags)
        settings = dataclasses.replace(
            settings, webhook=dataclasses.replace(settings.webhook, **webhook),
            baseline=dataclasses.replace(settings.baseline, file=str(tmp_path / "baseline.json")))
        exporter = app_module.Exporter(settings, clock=clock)
        await exporter.start()
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        await exporter.stop()


async def _deliver(exporter: app_module.Exporter) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{exporter.url}/webhook/alertmanager", json=FIRING) as resp:
            return resp.status, await resp.json()


@pytest.mark.parametrize("static, kind, nodes", [
    ("n1=ebpf", "cluster", ["n1"]),                       # every node switched: phase after
    ("n1=ebpf,n2=kube-proxy", "nodes", ["n1"]),           # mixed: phase canary, the eBPF node
])
async def test_static_datapaths_give_a_known_phase_and_dry_run_answers_with_the_plan(
        offline, static, kind, nodes):
    exporter = await offline(static)
    status, body = await _deliver(exporter)
    assert (status, body["outcome"]) == (200, "accepted"), body
    assert body["scope"] == {"kind": kind, "nodes": nodes}
    assert "would roll back" in body["reason"] and "mode dry-run" in body["reason"]


async def test_the_baseline_and_judge_read_the_static_phase_too(offline):
    exporter = await offline("n1=ebpf,n2=kube-proxy")
    seen = []
    real = exporter.baseline.observe

    async def observe(snapshot, phase):
        seen.append(phase)
        await real(snapshot, phase)

    exporter.baseline.observe = observe
    await exporter.judge_once()
    assert seen and set(seen) == {"canary"}


async def test_without_static_datapaths_or_kubernetes_the_phase_is_unknown_and_deferred(offline):
    exporter = await offline()
    status, body = await _deliver(exporter)
    assert (status, body["outcome"]) == (503, "deferred")
    assert "migration phase not known yet" in body["reason"]


async def test_stop_with_a_stalled_delivery_ends_within_the_shutdown_timeout(offline):
    exporter = await offline("n1=ebpf", body_timeout_seconds=300, shutdown_timeout_seconds=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", exporter.server.port)
    writer.write(b"POST /webhook/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"version\"")
    await writer.drain()
    async with aiohttp.ClientSession() as session:  # the stalled request is in flight now
        async with session.get(f"{exporter.url}/healthz") as resp:
            assert resp.status == 200
    begin = time.monotonic()
    await exporter.stop()
    took = time.monotonic() - begin
    writer.close()
    # It waited for the request in flight (so one was), and no longer than the timeout allows.
    assert 0.4 <= took < 5, f"stop took {took:.2f}s with a stalled delivery in flight"


# --- web.role: node mode's collectors and its central instance -------------------------------


def _families(text: str) -> set[str]:
    """Metric family names declared in a text exposition."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


async def _get(exporter: app_module.Exporter, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(exporter.url + path) as resp:
            return resp.status, await resp.text()


def _tasks(exporter: app_module.Exporter) -> set[str]:
    return {task.get_name() for task in exporter._tasks}


async def test_a_collector_collects_and_nothing_else(offline):
    exporter = await offline("n1=ebpf,n2=kube-proxy", role="collector")
    assert {"hubble-consumer", "sli-tick"} <= _tasks(exporter)
    assert not {"judge", "rollback-resume"} & _tasks(exporter)  # no judge, no baseline writes
    assert exporter.rollback is None and exporter.judge_evidence is None
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{exporter.url}/webhook/alertmanager", json=FIRING) as resp:
            assert resp.status == 404  # no webhook route at all
    assert (await _get(exporter, "/api/v1/verdicts"))[0] == 404
    assert (await _get(exporter, "/readyz/listener")) == (200, "ready\n")
    assert (await _get(exporter, "/readyz/webhook"))[0] == 404
    status, text = await _get(exporter, "/metrics")
    families = _families(text)
    assert status == 200 and "kpr_hubble_up" in families
    assert not {"kpr_verdict", "kpr_webhook_requests_total", "kpr_rollbacks_total",
                "kpr_rollback_in_progress", "kpr_judge_last_evaluation_timestamp_seconds",
                "kpr_baseline_capture_timestamp_seconds"} & families


async def test_a_central_instance_decides_without_reading_hubble(offline):
    async with FakePrometheus(config.load(env={}).judge, NOW, BOUNDS) as prom:
        prom.set_window(SHORT, fleet(1))
        prom.set_window(LONG, fleet(6))
        exporter = await offline(
            "node-a=kube-proxy,node-b=ebpf", role="central", clock=lambda: NOW,
            flags={"--judge.source": "prometheus", "--judge.prometheus.url": prom.url,
                   "--agents.static": "node-a=http://127.0.0.1:9/metrics"})
        assert {"judge", "rollback-resume"} <= _tasks(exporter)
        assert not {"hubble-consumer", "agent-scraper", "kube-proxy-scraper"} & _tasks(exporter)
        assert exporter.source is None and exporter.agents is None
        await exporter.judge_once()
        status, body = await _deliver(exporter)
        assert (status, body["outcome"]) == (200, "accepted"), body
        status, text = await _get(exporter, "/metrics")
    families = _families(text)
    assert {"kpr_verdict", "kpr_webhook_requests_total", "kpr_rollbacks_total"} <= families
    assert 'kpr_verdict{' in text
    # Its own kpr_hubble_up would count as a dead source in the fleet's health query, and its
    # own (empty) SLI series would add nothing to the fleet's sums: it has neither.
    assert not {f for f in families if f.startswith(("kpr_hubble_", "kpr_agent_"))}
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples and not [line for line in samples if line.startswith("kpr_service_")]
    assert (await _get(exporter, "/readyz/webhook"))[0] == 200
    assert "hubble" not in exporter.surface.readiness


@pytest.mark.parametrize("flags, problem", [
    ({"--web.role": "central"}, "web.role central reads no Hubble"),
    ({"--web.role": "collector", "--rollback.mode": "enforce"},
     "rollback.mode enforce belongs on the central instance"),
    ({"--web.role": "judge"}, "web.role: 'judge' is not one of all, collector, central"),
], ids=["central-in-process", "collector-enforce", "unknown"])
def test_roles_refuse_settings_they_cannot_honour(flags, problem):
    with pytest.raises(config.ConfigError) as caught:
        config.load(env={}, flags=flags)
    assert [p for p in caught.value.problems if problem in p], caught.value.problems
    # a collector is not asked for a webhook token it would never read
    assert not [p for p in caught.value.problems if "--webhook.token-file" in p]


def test_the_role_defaults_to_all_and_has_every_name():
    assert config.load(env={}).web.role == "all"
    settings = config.load(env={"KPR_WEB_ROLE": "collector"})
    assert settings.web.role == "collector"
    option = next(o for o in config.options() if o.key == "web.role")
    assert (option.flag, option.choices) == ("--web.role", ("all", "collector", "central"))
