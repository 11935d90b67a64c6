"""Simulator -> gRPC -> Hubble reader -> SLI handlers -> GET /metrics, parsed back.

The canary-regression scenario switches node-b to eBPF at 300 s with slower
handshakes and KPR-sensitive drops. The exporter learns node-b's datapath from
the simulated agent's feature gauge, and the SLIs it exports per datapath must
match what the scenario configured:

* handshake median within 20 % of the configured median (bucket interpolation),
* the configured ratio of "Service backend not found" drops within 35 %,
* eBPF samples only from node-b's clients, after the switch.
"""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import app as app_module
from exporter import config
from exporter.judge.histogram import histogram_quantile
from exporter.simulator.runner import Simulator
from exporter.simulator.scenarios import get_scenario

SERVICE_BACKEND_NOT_FOUND = 158
#: Scenario second the exporter starts at (node-b switches at 300 s).
STARTS_AT_S = 270.0


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _histogram(families, name: str, datapath: str) -> tuple[list[float], list[int]]:
    """Merge one histogram across services for a datapath -> (bounds, per-bucket counts)."""
    cumulative: dict[float, float] = {}
    for family in families:
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels["datapath"] == datapath:
                le = float(sample.labels["le"])
                cumulative[le] = cumulative.get(le, 0.0) + sample.value
    bounds = sorted(b for b in cumulative if b != float("inf"))
    running = [cumulative[b] for b in bounds] + [cumulative[float("inf")]]
    counts = [int(running[0])] + [int(b - a) for a, b in zip(running, running[1:])]
    return bounds, counts


def _counter(families, name: str, **labels: str) -> float:
    total = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
async def stack():
    settings = config.load(env={})
    sim_settings = dataclasses.replace(
        settings.simulator, scenario="canary-regression",
        grpc_listen_address="127.0.0.1:0", agents_listen_address="127.0.0.1:0")
    sim = Simulator(sim_settings, drive=False)
    ports = await sim.start()
    # The cluster ran before the exporter came: its first minutes are history the follow
    # stream never sends, the exporter reads from the last half minute before the switch on.
    sim.advance_to(STARTS_AT_S)
    wired = app_module.for_simulator(
        dataclasses.replace(settings, web=dataclasses.replace(settings.web, listen_address="127.0.0.1:0")),
        ports.grpc, ports.agents, list(sim.scenario.cluster.node_names))
    # The test scrapes the agents itself, in step with the released flows.
    wired = dataclasses.replace(wired, agents=dataclasses.replace(wired.agents, interval_seconds=3600.0))
    exporter = app_module.Exporter(wired)
    await exporter.start()
    # Follow mode streams from "now": release nothing more before the stream is open.
    await asyncio.wait_for(exporter.source.ready.wait(), 30)
    try:
        yield sim, exporter
    finally:
        await exporter.stop()
        await sim.stop()


async def _release(sim, exporter, until_s: float) -> None:
    released = sim.advance_to(until_s)
    target = exporter.source.flows_received + released
    # Lost events and node status messages are not flows; the count is an upper bound.
    await _wait_for(lambda: exporter.source.flows_received >= target - 5)


async def test_slis_per_datapath_match_the_scenario(stack):
    sim, exporter = stack
    scenario = get_scenario("canary-regression")
    await exporter.agents.scrape_once()
    assert exporter.tracker.datapath("node-b") == "kube-proxy"

    await _release(sim, exporter, 300.0)
    await exporter.agents.scrape_once()  # node-b's gauge now says eBPF
    assert exporter.tracker.datapath("node-b") == "ebpf"
    assert exporter.tracker.phase == "canary"
    await _release(sim, exporter, 420.0)

    async with aiohttp.ClientSession() as session:
        async with session.get(exporter.url + "/metrics") as response:
            assert response.status == 200
            text = await response.text()
    families = list(text_string_to_metric_families(text))

    for datapath in ("kube-proxy", "ebpf"):
        expected = scenario.expectation(datapath)
        bounds, counts = _histogram(families, "kpr_service_connect_duration_seconds", datapath)
        assert sum(counts) > 500, f"too few {datapath} handshakes: {sum(counts)}"
        median = histogram_quantile(0.5, bounds, counts)
        assert median == pytest.approx(expected.connect_median_s, rel=0.20), datapath

        attempts = _counter(families, "kpr_service_connect_attempts_total", datapath=datapath)
        drops = _counter(families, "kpr_service_drops_total", datapath=datapath,
                         reason="SERVICE_BACKEND_NOT_FOUND")
        configured = expected.drop_ratio(SERVICE_BACKEND_NOT_FOUND)
        if configured:
            assert drops / (attempts + drops) == pytest.approx(configured, rel=0.35)
        else:
            assert drops == 0

    # The eBPF handshakes are slower than kube-proxy's, as configured.
    kp = histogram_quantile(0.5, *_histogram(families, "kpr_service_connect_duration_seconds", "kube-proxy"))
    eb = histogram_quantile(0.5, *_histogram(families, "kpr_service_connect_duration_seconds", "ebpf"))
    assert eb > 1.5 * kp
    assert _counter(families, "kpr_hubble_up") == 1
    assert _counter(families, "kpr_agent_up") == 3
