"""Scraping kube-proxy's /metrics against real aiohttp servers on 127.0.0.1, and the per-node
Service datapath CPU and programming latency exported for a mixed cluster.

Matrix:
- healthy kube-proxies in the three modes: up 1, snapshot equal to the fixture's parse;
- one kube-proxy failing while the others are scraped in the same round: HTTP 500,
  garbage, a body over the limit (announced by Content-Length, or streamed without it):
  up 0, its error kind counted, one warning naming kube-proxy, the others untouched;
- an agent body served where kube-proxy was expected: a parse error, not a success;
- a mixed cluster (kube-proxy node, eBPF node, kube-proxy node whose kube-proxy fails,
  node of unknown datapath): the service datapath CPU is kube-proxy's on the kube-proxy
  node and the agent's on the eBPF node, nothing elsewhere; process CPU of both; the
  programming histograms passed through bucket by bucket; sync duration and last sync
  only from kube-proxy; kube-proxy's scrape health per node.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config_constraints import problems as check
from exporter.sources.agents import AgentScraper
from exporter.sources.agents_settings import AgentSettings
from exporter.sources.kube_proxy import (
    KubeProxyScraper,
    KubeProxySettings,
    ServiceDatapathCollector,
    parse_kube_proxy_metrics,
    static_discovery,
)
from tests.sources.agent_harness import (  # noqa: F401 (agents: a fixture)
    LOGGER,
    Agents,
    Handler,
    Resolver,
    agents,
    fixture,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "kube_proxy_metrics"
NOW = 1_760_000_000.0


def kp_text(mode: str) -> str:
    return (DATA / f"{mode}.txt").read_text()


def scraper(targets: dict[str, str], **overrides: object) -> KubeProxyScraper:
    settings = KubeProxySettings(**{"timeout_seconds": 2.0, "max_body_bytes": 100_000,
                                    **overrides})
    return KubeProxyScraper(settings=settings, discover=static_discovery(targets),
                            clock=lambda: NOW)


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(registry).decode()
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


@pytest.fixture
async def second() -> AsyncIterator[Agents]:
    """Another local server: the agents, next to the kube-proxies of ``agents``."""
    server = Agents()
    await server.start()
    yield server
    await server.stop()


async def test_healthy_kube_proxies_in_every_mode(agents: Agents) -> None:
    modes = ("iptables", "ipvs", "nftables")
    kp = scraper({m: agents.serve(m, Agents.text(kp_text(m))) for m in modes})
    async with kp:
        assert kp.readiness() == "no kube-proxy scrape has completed yet"
        await kp.scrape_once()
    states = kp.states()
    assert sorted(states) == sorted(modes)
    for mode in modes:
        assert states[mode].up, states[mode].error
        assert states[mode].snapshot == parse_kube_proxy_metrics(kp_text(mode))
    assert kp.readiness() is None


@pytest.mark.parametrize(("handler", "kind"), [
    (Agents.status(500), "http"),
    (Agents.text("<html>not metrics</html>\n"), "parse"),
    (Agents.text(fixture("cilium-1.18.txt")), "parse"),
    (Agents.text("kubeproxy_sync_proxy_rules_last_timestamp_seconds 1\n" + "#" * 150_000), "oversize"),
    (Agents.streamed("# padding\n" * 20_000 + "kubeproxy_x 1\n"), "oversize"),
])
async def test_a_failing_kube_proxy_is_down_and_the_others_are_not(
    agents: Agents, caplog: pytest.LogCaptureFixture, handler: Handler, kind: str,
) -> None:
    kp = scraper({"good": agents.serve("good", Agents.text(kp_text("iptables"))),
                  "bad": agents.serve("bad", handler)})
    with caplog.at_level(logging.INFO, logger=LOGGER):
        async with kp:
            await kp.scrape_once()
    good, bad = kp.states()["good"], kp.states()["bad"]
    assert good.up and good.snapshot is not None and good.snapshot.cpu_seconds == 1874.21
    assert not bad.up and bad.snapshot is None
    assert bad.error_kind == kind
    assert bad.errors[kind] == 1 and sum(bad.errors.values()) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["kube-proxy scrape failed"]
    assert warnings[0].kv["node"] == "bad" and warnings[0].kv["kind"] == kind


async def test_mixed_cluster_exports_the_serving_process_per_node(
    agents: Agents, second: Agents,
) -> None:
    # kube-proxies on `agents`, Cilium agents on `second`.
    kp = scraper({
        "kp-node": agents.serve("kp-node", Agents.text(kp_text("iptables"))),
        "ebpf-node": agents.url("ebpf-node"),  # kube-proxy is gone there: 404
        "kp-broken": agents.serve("kp-broken", Agents.status(500)),
    })
    agent_text = fixture("cilium-1.18.txt")
    ag = AgentScraper(
        settings=AgentSettings(timeout_seconds=2.0),
        discover=static_discovery({n: second.serve(n, Agents.text(agent_text))
                                   for n in ("kp-node", "ebpf-node", "kp-broken", "odd-node")}),
        clock=lambda: NOW)
    resolver = Resolver({"kp-node": "kube-proxy", "ebpf-node": "ebpf", "kp-broken": "kube-proxy"})
    registry = CollectorRegistry()
    registry.register(ServiceDatapathCollector(kube_proxy=kp, agents=ag, resolver=resolver))
    async with kp, ag:
        await kp.scrape_once()
        await ag.scrape_once()

    cpu = samples(registry, "kpr_node_service_datapath_cpu_seconds_total")
    assert cpu == {
        (("datapath", "kube-proxy"), ("node", "kp-node"), ("source", "kube-proxy")): 1874.21,
        (("datapath", "ebpf"), ("node", "ebpf-node"), ("source", "cilium-agent")): 3512.46,
    }
    process = samples(registry, "kpr_node_process_cpu_seconds_total")
    assert process[(("datapath", "kube-proxy"), ("node", "kp-node"), ("process", "kube-proxy"))] == 1874.21
    assert {dict(k)["node"] for k, _ in process.items() if dict(k)["process"] == "cilium-agent"} == {
        "kp-node", "ebpf-node", "kp-broken", "odd-node"}

    buckets = samples(registry, "kpr_node_programming_duration_seconds_bucket")
    kp_buckets = {dict(k)["le"]: v for k, v in buckets.items() if dict(k)["node"] == "kp-node"}
    reference = parse_kube_proxy_metrics(kp_text("iptables")).programming[0]
    assert sorted((float(le), n) for le, n in kp_buckets.items()) == [
        (float(le), n) for le, n in reference.buckets]
    ebpf = {(dict(k)["action"], dict(k)["le"]): v for k, v in buckets.items()
            if dict(k)["node"] == "ebpf-node"}
    assert ebpf[("update", "+Inf")] == 4987 and ebpf[("delete", "0.005")] == 60
    assert {dict(k)["node"] for k in buckets} == {"kp-node", "ebpf-node"}
    assert {dict(k)["ip_family"] for k in buckets if dict(k)["node"] == "kp-node"} == {"IPv4"}

    sync = samples(registry, "kpr_node_rules_sync_duration_seconds_count")
    assert sync == {(("datapath", "kube-proxy"), ("ip_family", "IPv4"), ("node", "kp-node"),
                     ("source", "kube-proxy")): 1836.0}
    last = samples(registry, "kpr_node_rules_last_sync_timestamp_seconds")
    assert list(last.values()) == [1750944356.2417917]

    up = {dict(k)["node"]: v for k, v in samples(registry, "kpr_kube_proxy_up").items()}
    assert up == {"kp-node": 1.0, "ebpf-node": 0.0, "kp-broken": 0.0}
    errors = samples(registry, "kpr_kube_proxy_scrape_errors_total")
    assert errors[(("kind", "http"), ("node", "ebpf-node"))] == 1.0
    assert errors[(("kind", "http"), ("node", "kp-broken"))] == 1.0


def test_without_sources_the_collector_exports_no_samples() -> None:
    registry = CollectorRegistry()
    registry.register(ServiceDatapathCollector(kube_proxy=None, agents=None,
                                               resolver=Resolver({})))
    text = generate_latest(registry).decode()
    assert [s for f in text_string_to_metric_families(text) for s in f.samples] == []


def test_settings_defaults_and_problems() -> None:
    assert check(KubeProxySettings(), "kube_proxy") == []
    assert KubeProxySettings().url_for("fd00::5") == "http://[fd00::5]:10249/metrics"
    bad = KubeProxySettings(static={"w1": "10.0.0.1:10249"}, port=0, path="metrics",
                            interval_seconds=0.0, max_series=0, selector=" ", namespace="Bad_")
    problems = "\n".join(check(bad, "kube_proxy"))
    for needle in ("kube_proxy.static: node 'w1'", "kube_proxy.port", "kube_proxy.path",
                   "kube_proxy.interval_seconds", "kube_proxy.max_series",
                   "kube_proxy.selector", "kube_proxy.namespace"):
        assert needle in problems


async def test_a_missing_kube_proxy_is_an_http_error(agents: Agents) -> None:
    """A 404 from the target (no kube-proxy) is an http error, not a parse success."""
    kp = scraper({"gone": agents.url("gone")})
    async with kp:
        await kp.scrape_once()
    state = kp.states()["gone"]
    assert not state.up and state.error_kind == "http" and "404" in state.error

