"""The exporter's wiring of the probe results collector.

Matrix: probe pods discovered through the fake Kubernetes API, keyed by pod name (two per
node), at their ``metrics`` container port or ``probes.port``, pending and other pods left
out; node mode asks only for its own node; off by default, on with a static list even
without Kubernetes, nothing without either; end to end on loopback: two real probe
expositions scraped by a running exporter, ``kpr-exporter verify --exporter-url`` against
the exporter shows the failing check on the eBPF node only, and the judge's verdicts carry
the ``kpr-probe`` pseudo-services.
"""

from __future__ import annotations

import dataclasses
import io
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from exporter import app as app_module
from exporter import config
from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import results as r
from exporter.verify.verify_cmd import cmd_verify
from tests.fakekube.fixtures import pod
from tests.sources.test_probes import Probe

PROBE = {"app.kubernetes.io/name": "kpr-exporter", "app.kubernetes.io/component": "probe"}
NOW = 1_764_000_000.0


def _probe_pod(name: str, node_name: str, ip: str, port: int | None = None,
               phase: str = "Running") -> dict:
    obj = pod(name, "kpr", node_name, PROBE, phase=phase)
    obj["status"]["podIP"] = ip
    if port is not None:
        obj["spec"]["containers"][0]["ports"] = [{"name": "metrics", "containerPort": port}]
    return obj


def _exporter(fake, **probes) -> app_module.Exporter:
    settings = config.load(env={}, flags={"--kube.kubeconfig": str(fake.kubeconfig),
                                          "--kube.enabled": "true",
                                          "--web.listen-address": "127.0.0.1:0"})
    settings = dataclasses.replace(settings, probes=dataclasses.replace(
        settings.probes, namespace="kpr", **probes))
    return app_module.Exporter(settings)


async def test_probe_pods_are_discovered_by_name(fake_kube) -> None:
    fake_kube.seed(_probe_pod("kpr-probe-a1", "node-a", "10.244.1.5"))
    fake_kube.seed(_probe_pod("kpr-probe-host-a1", "node-a", "172.18.0.2", port=9979))
    fake_kube.seed(_probe_pod("kpr-probe-b1", "node-b", "fd00::7"))
    fake_kube.seed(_probe_pod("kpr-probe-c1", "node-c", "10.244.3.5", phase="Pending"))
    fake_kube.seed(pod("web", "kpr", "node-a", {"app": "web"}))
    exporter = _exporter(fake_kube, enabled=True)
    try:
        assert exporter.probes is not None
        found = await exporter.probes.discover()
    finally:
        await exporter.kube.close()
    assert found == {"kpr-probe-a1": "http://10.244.1.5:9978/metrics",
                     "kpr-probe-host-a1": "http://172.18.0.2:9979/metrics",
                     "kpr-probe-b1": "http://[fd00::7]:9978/metrics"}


async def test_node_mode_asks_only_for_its_own_node(fake_kube) -> None:
    exporter = _exporter(fake_kube, enabled=True, node_name="node-a")
    try:
        assert exporter.probes is not None
        await exporter.probes.discover()
    finally:
        await exporter.kube.close()
    listings = [q for q in fake_kube.requests if q.path.endswith("/namespaces/kpr/pods")]
    assert listings, "no pod listing was made"
    assert listings[-1].query.get("fieldSelector") == "spec.nodeName=node-a"
    assert listings[-1].query.get("labelSelector") == (
        "app.kubernetes.io/name=kpr-exporter,app.kubernetes.io/component=probe")


async def test_off_by_default_and_a_static_list_needs_no_kubernetes(fake_kube) -> None:
    off = _exporter(fake_kube)
    try:
        assert off.probes is None
    finally:
        await off.kube.close()
    offline = config.load(env={}, flags={"--kube.enabled": "false",
                                         "--web.listen-address": "127.0.0.1:0",
                                         "--probes.static": "p1=http://127.0.0.1:1/metrics"})
    assert app_module.Exporter(offline).probes is not None
    nothing = dataclasses.replace(offline, probes=dataclasses.replace(
        offline.probes, static={}, enabled=True))
    assert app_module.Exporter(nothing).probes is None


@pytest.fixture
def refused_address():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
async def probe_server() -> AsyncIterator[tuple[str, dict[str, Probe]]]:
    probes = {"kpr-probe-w1": Probe("w1"), "kpr-probe-w2": Probe("w2")}

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=probes[request.match_info["name"]].text(),
                            content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{name}/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield base, probes
    await runner.cleanup()


def _result(check: str, node: str, outcome: str = r.PASS) -> r.CheckResult:
    datapath = {"w1": KUBE_PROXY, "w2": EBPF}[node]
    return r.CheckResult(check, node, datapath, "", "127.0.0.1:30080", outcome, "an answer",
                         "an answer" if outcome == r.PASS else "refused", 0.0004)


async def test_verify_and_the_judge_read_the_probes_through_the_exporter(
        probe_server, refused_address, tmp_path) -> None:
    base, probes = probe_server
    for name, probe in probes.items():
        failing = name == "kpr-probe-w2"
        probe.metrics.observe([
            _result(c, probe.node, r.FAIL if failing and c == r.NODEPORT_LOOPBACK else r.PASS)
            for c in r.CHECKS])
        probe.status.round_done(NOW, 1, {}, {"w1": KUBE_PROXY, "w2": EBPF})
    settings = config.load(env={}, flags={
        "--kube.enabled": "false", "--web.listen-address": "127.0.0.1:0",
        "--hubble.address": refused_address, "--datapath.static": "w1=kube-proxy,w2=ebpf",
        "--probes.static": ",".join(f"{n}={base}/{n}/metrics" for n in probes)})
    settings = dataclasses.replace(settings, baseline=dataclasses.replace(
        settings.baseline, file=str(tmp_path / "baseline.json")))
    now = [NOW]
    exporter = app_module.Exporter(settings, clock=lambda: now[0])
    await exporter.start()
    try:
        assert exporter.probes is not None
        await exporter.probes.scraper.scrape_once()
        out, err = io.StringIO(), io.StringIO()
        code = await cmd_verify([exporter.url], fmt="json", wait=0, max_age=300, out=out,
                                err=err, clock=lambda: NOW)
        now[0] += 30  # a judge round after the scrape (the loop's first one came before)
        await exporter.judge_once()
    finally:
        await exporter.stop()
    assert code == 1, out.getvalue() + err.getvalue()
    doc = json.loads(out.getvalue())
    failing = {(c["check"], c["node"]) for c in doc["cells"] if c["status"] == "fail"}
    assert failing == {(r.NODEPORT_LOOPBACK, "w2")}, doc
    judged = {(v.namespace, v.service) for v in exporter.judge.verdicts}
    assert {("kpr-probe", c) for c in r.CHECKS} <= judged
