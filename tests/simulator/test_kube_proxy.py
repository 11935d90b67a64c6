"""Simulated kube-proxy metrics (and the agents' CPU and programming delay) over real HTTP on
127.0.0.1, consistent with the scenario.

Matrix:
- a kube-proxy node: /nodes/<node>/kube-proxy/metrics parses with the exporter's reader
  and with prometheus_client; its CPU grows at the kube-proxy profile's rate, its
  programming histogram grows and stays cumulative;
- the canary after its switch: 404 (no kube-proxy), the agent's CPU grows at the eBPF
  profile's rate, and it now exports its Service implementation delay;
- differing by datapath as the scenario says: in canary-improvement the eBPF node's CPU
  rate and programming median are below kube-proxy's; in canary-regression above;
- a rollback restarts kube-proxy (its CPU starts again near zero);
- unknown node: 404;
- the exporter's scrapers and collector over the simulator: the per-node Service datapath
  CPU is kube-proxy's on kube-proxy nodes and the agent's on the canary.
"""

from __future__ import annotations

from dataclasses import replace

import aiohttp
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.model import EBPF, KUBE_PROXY
from exporter.simulator.kube_proxy import AGENT_BASE_CPU_CORES
from exporter.simulator.scenarios import CANARY_AT_S, CANARY_NODE, get_scenario
from exporter.sources.agent_text import parse_agent_metrics
from exporter.sources.agents import AgentScraper, static_discovery
from exporter.sources.agents_settings import AgentSettings
from exporter.sources.histogram_text import Histogram
from exporter.sources.kube_proxy import (
    KubeProxyScraper,
    KubeProxySettings,
    ServiceDatapathCollector,
    parse_kube_proxy_metrics,
)


async def quiet(make_sim, name: str):
    """A simulator of scenario ``name`` with a hundredth of its traffic: the CPU and
    programming metrics here are the scenario's functions of time, and the flows the
    timeline generates on its way to a scenario second are not read."""
    return await make_sim(name, scenario=replace(get_scenario(name), rate_scale=0.01))


async def get(sim, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{sim.ports.agents}{path}") as resp:
            return resp.status, await resp.text()


async def kube_proxy(sim, node: str):
    status, text = await get(sim, f"/nodes/{node}/kube-proxy/metrics")
    assert status == 200, text
    assert list(text_string_to_metric_families(text))  # valid exposition
    return parse_kube_proxy_metrics(text)


async def agent(sim, node: str):
    status, text = await get(sim, f"/nodes/{node}/metrics")
    assert status == 200, text
    return parse_agent_metrics(text)


def median(hist: Histogram) -> float:
    """The upper bound of the bucket holding the median."""
    for le, count in hist.buckets:
        if count >= hist.count / 2:
            return float(le)
    raise AssertionError("empty histogram")


async def test_kube_proxy_node_cpu_and_programming_grow_with_the_scenario(make_sim) -> None:
    sim = await quiet(make_sim, "canary-improvement")
    rate = sim.scenario.kube_proxy.service_cpu_cores
    sim.advance_to(100)
    first = await kube_proxy(sim, "node-a")
    sim.advance_to(250)
    second = await kube_proxy(sim, "node-a")
    assert first.cpu_seconds is not None and second.cpu_seconds is not None
    assert abs((second.cpu_seconds - first.cpu_seconds) - rate * 150) < 0.02
    (p1,), (p2,) = first.programming, second.programming
    assert p1.label("ip_family") == "IPv4" and p2.count > p1.count > 0
    assert all(b[1] >= a[1] for a, b in zip(p1.buckets, p2.buckets))  # counters only grow
    assert second.sync_duration and set(second.last_sync) == {"IPv4"}
    stamp = sim.timeline.epoch_ns / 1e9 + 250
    assert stamp - 10 <= second.last_sync["IPv4"] <= stamp + 1e-6  # syncs every 10 s


async def test_the_canary_loses_kube_proxy_and_its_agent_takes_over(make_sim) -> None:
    sim = await quiet(make_sim, "canary-improvement")
    sim.advance_to(CANARY_AT_S - 1)
    assert (await kube_proxy(sim, CANARY_NODE)).cpu_seconds
    before = await agent(sim, CANARY_NODE)
    assert before.programming == ()  # KPR off: the agent programs no Services
    sim.advance_to(CANARY_AT_S + 100)
    status, text = await get(sim, f"/nodes/{CANARY_NODE}/kube-proxy/metrics")
    assert status == 404 and "eBPF" in text
    first = await agent(sim, CANARY_NODE)
    sim.advance_to(CANARY_AT_S + 300)
    second = await agent(sim, CANARY_NODE)
    assert first.cpu_seconds is not None and second.cpu_seconds is not None
    assert abs((second.cpu_seconds - first.cpu_seconds) - sim.scenario.ebpf.service_cpu_cores * 200) < 0.02
    assert [h.label("action") for h in second.programming] == ["update"]
    other = await agent(sim, "node-a")  # still on kube-proxy: the agent's own work only
    assert abs(other.cpu_seconds - AGENT_BASE_CPU_CORES * (CANARY_AT_S + 300 + 3600)) < 0.02


async def _rates_and_medians(sim) -> tuple[float, float, float, float]:
    """(kube-proxy CPU rate on node-a, agent CPU rate on the canary, their programming
    medians), measured from two scrapes after the switch."""
    sim.advance_to(CANARY_AT_S + 200)
    kp1, ag1 = await kube_proxy(sim, "node-a"), await agent(sim, CANARY_NODE)
    sim.advance_to(CANARY_AT_S + 800)
    kp2, ag2 = await kube_proxy(sim, "node-a"), await agent(sim, CANARY_NODE)
    return ((kp2.cpu_seconds - kp1.cpu_seconds) / 600, (ag2.cpu_seconds - ag1.cpu_seconds) / 600,
            median(kp2.programming[0]), median(ag2.programming[0]))


async def test_cpu_and_programming_differ_by_datapath_as_the_scenario_says(make_sim) -> None:
    kp_cpu, ebpf_cpu, kp_prog, ebpf_prog = await _rates_and_medians(
        await quiet(make_sim, "canary-improvement"))
    assert ebpf_cpu < kp_cpu and ebpf_prog < kp_prog
    kp_cpu, ebpf_cpu, kp_prog, ebpf_prog = await _rates_and_medians(
        await quiet(make_sim, "canary-regression"))
    assert ebpf_cpu > kp_cpu and ebpf_prog > kp_prog


async def test_a_rollback_restarts_kube_proxy(make_sim) -> None:
    sim = await quiet(make_sim, "canary-rollback")
    sim.advance_to(CANARY_AT_S - 1)
    before = await kube_proxy(sim, CANARY_NODE)
    sim.advance_to(910)
    after = await kube_proxy(sim, CANARY_NODE)
    assert before.cpu_seconds is not None and after.cpu_seconds is not None
    assert after.cpu_seconds < 1.0 < before.cpu_seconds
    assert (await agent(sim, CANARY_NODE)).programming == ()


async def test_unknown_node_is_404(make_sim) -> None:
    sim = await make_sim()
    status, _ = await get(sim, "/nodes/node-z/kube-proxy/metrics")
    assert status == 404


async def test_the_exporter_reads_the_serving_process_per_node(make_sim) -> None:
    sim = await quiet(make_sim, "canary-improvement")
    sim.advance_to(CANARY_AT_S + 60)
    base = f"http://127.0.0.1:{sim.ports.agents}/nodes"
    nodes = sim.scenario.cluster.node_names
    kp = KubeProxyScraper(settings=KubeProxySettings(), discover=static_discovery(
        {n: f"{base}/{n}/kube-proxy/metrics" for n in nodes}))
    ag = AgentScraper(settings=AgentSettings(), discover=static_discovery(
        {n: f"{base}/{n}/metrics" for n in nodes}))

    class Scenario:
        def datapath(self, node: str) -> str:
            return sim.timeline.datapath(node)

    registry = CollectorRegistry()
    registry.register(ServiceDatapathCollector(kube_proxy=kp, agents=ag, resolver=Scenario()))
    async with kp, ag:
        await kp.scrape_once()
        await ag.scrape_once()
    text = generate_latest(registry).decode()
    cpu = {(s.labels["node"], s.labels["datapath"], s.labels["source"])
           for f in text_string_to_metric_families(text) for s in f.samples
           if s.name == "kpr_node_service_datapath_cpu_seconds_total"}
    assert cpu == {("node-a", KUBE_PROXY, "kube-proxy"), ("node-c", KUBE_PROXY, "kube-proxy"),
                   (CANARY_NODE, EBPF, "cilium-agent")}
    programming = {(s.labels["node"], s.labels["source"])
                   for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "kpr_node_programming_duration_seconds_count"}
    assert programming == {("node-a", "kube-proxy"), ("node-c", "kube-proxy"),
                           (CANARY_NODE, "cilium-agent")}
