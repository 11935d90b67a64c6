"""The HTTP surface: /metrics format negotiation, /healthz, /readyz reasons, landing page;
readiness of the whole exporter through a relay outage."""

import asyncio
import dataclasses

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from exporter import app as app_module
from exporter import config
from exporter.sources.hubble import HubbleReader
from exporter.web import Server, Surface, build_app, wants_only_openmetrics
from tests.sources.conftest import HOLD, WAIT, FakeHubble, Observer, StepSleep, flow_response


@pytest.fixture
async def served():
    registry = CollectorRegistry()
    Counter("kpr_demo_things", "Things.", registry=registry).inc(3)
    extra = CollectorRegistry()
    Counter("kpr_demo_extra", "Extra.", registry=extra).inc(2)
    state = {"why": "no message from Hubble yet"}
    surface = Surface(
        registry=registry,
        text_renderers=[lambda: b"# HELP kpr_fast_total Fast.\n# TYPE kpr_fast_total counter\nkpr_fast_total 7.0\n"],
        openmetrics_registries=[extra],
        readiness={"hubble": lambda: state["why"], "webhook": lambda: None},
    )
    server = Server(build_app(surface), "127.0.0.1:0")
    await server.start()
    async with aiohttp.ClientSession() as session:
        yield server, session, state
    await server.stop()


async def test_prometheus_gets_the_text_format_with_the_fast_renderer_appended(served):
    server, session, _ = served
    accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    async with session.get(server.url + "/metrics", headers={"Accept": accept}) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["kpr_demo_things_total"] == 3
    assert samples["kpr_fast_total"] == 7


async def test_openmetrics_only_clients_get_openmetrics_from_every_registry(served):
    server, session, _ = served
    async with session.get(server.url + "/metrics",
                           headers={"Accept": "application/openmetrics-text; version=1.0.0"}) as r:
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await r.text()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    assert "kpr_demo_things_total 3.0" in text and "kpr_demo_extra_total 2.0" in text


@pytest.mark.parametrize("accept, only_om", [
    ("", False),
    ("text/plain", False),
    ("application/openmetrics-text;version=1.0.0", True),
    ("application/openmetrics-text;version=1.0.0,*/*;q=0.1", False),
])
def test_negotiation(accept, only_om):
    assert wants_only_openmetrics(accept) is only_om


async def test_readiness_names_what_is_missing_then_turns_ready(served):
    server, session, state = served
    async with session.get(server.url + "/readyz") as r:
        assert r.status == 503
        assert "hubble: no message from Hubble yet" in await r.text()
    state["why"] = None
    async with session.get(server.url + "/readyz") as r:
        assert r.status == 200
    async with session.get(server.url + "/healthz") as r:
        assert r.status == 200
    async with session.get(server.url + "/") as r:
        page = await r.text()
        assert 'href="/metrics"' in page and 'href="/readyz"' in page


async def test_one_check_is_asked_by_name(served):
    server, session, state = served
    async with session.get(server.url + "/readyz/webhook") as r:
        assert r.status == 200 and await r.text() == "ready\n"
    async with session.get(server.url + "/readyz/hubble") as r:
        assert r.status == 503
        assert await r.text() == "not ready\nhubble: no message from Hubble yet\n"
    async with session.get(server.url + "/readyz") as r:
        assert r.status == 503  # every check: hubble fails
    async with session.get(server.url + "/readyz/nothing") as r:
        assert r.status == 404
        assert "known: hubble, webhook" in await r.text()


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        return r.status, await r.text()


async def test_a_relay_outage_fails_readyz_but_keeps_the_webhook_probe_ready(tmp_path):
    observer = Observer()
    observer.scripts = [[flow_response("f1", 1_764_000_000_000_000_000), HOLD]]
    relay = FakeHubble(observer)
    await relay.start()
    settings = config.load(env={}, flags={
        "--kube.enabled": "false", "--web.listen-address": "127.0.0.1:0",
        "--hubble.address": relay.address})
    settings = dataclasses.replace(settings, baseline=dataclasses.replace(
        settings.baseline, file=str(tmp_path / "baseline.json")))
    backoff = StepSleep()
    reader = HubbleReader(settings.hubble, registry=CollectorRegistry(), sleep=backoff)
    exporter = app_module.Exporter(settings, flow_source=reader)
    await exporter.start()
    try:
        await asyncio.wait_for(reader.ready.wait(), WAIT)
        assert await _get(exporter.url + "/readyz") == (200, "ready\n")

        await relay.stop()  # the relay goes away and stays away
        await backoff.next_call()  # the reader noticed and waits to dial again
        status, text = await _get(exporter.url + "/readyz")
        assert status == 503
        assert f"hubble: Hubble stream at {relay.address} is down (UNAVAILABLE" in text
        assert (await _get(exporter.url + "/readyz/hubble"))[0] == 503
        # the Pod's readiness probe: the webhook (and /metrics) stay in the Service
        assert await _get(exporter.url + "/readyz/webhook") == (200, "ready\n")
    finally:
        await exporter.stop()
        await relay.stop()


