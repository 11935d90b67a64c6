"""Simulated agent metrics over real HTTP on 127.0.0.1.

Matrix: /nodes list; per-node text parses with prometheus_client; drop and
forward counters equal the flows the node observed so far; the KPR feature gauge
follows the node's datapath across a switch; unknown node is 404; reason texts.
"""

from __future__ import annotations

from collections import Counter

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from exporter.model import DROPPED, EGRESS, FORWARDED, INGRESS, L3_L4, Flow
from exporter.simulator.agents import drop_reason_text
from exporter.simulator.flows import generate_flows

KPR_GAUGE = "cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled"


async def scrape(sim, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{sim.ports.agents}{path}") as resp:
            return resp.status, await resp.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_nodes_and_unknown_node(make_sim) -> None:
    sim = await make_sim()
    assert await scrape(sim, "/nodes") == (200, '["node-a", "node-b", "node-c"]')
    status, _ = await scrape(sim, "/nodes/node-z/metrics")
    assert status == 404


async def test_counters_agree_with_the_flows_and_the_gauge_follows_the_switch(make_sim) -> None:
    sim = await make_sim("canary-regression")
    sim.advance_to(299)
    _, text = await scrape(sim, "/nodes/node-b/metrics")
    assert samples(text)[(KPR_GAUGE, ())] == 0
    sim.advance_to(420)
    flows = generate_flows(sim.scenario, sim.settings.seed, 0, 420, epoch_ns=sim.timeline.epoch_ns)
    for node in ("node-a", "node-b", "node-c"):
        status, text = await scrape(sim, f"/nodes/{node}/metrics")
        assert status == 200
        got = samples(text)
        mine = [f for f in flows if isinstance(f, Flow) and f.node_name == node]
        drops = Counter((drop_reason_text(f.drop_reason), "EGRESS")
                        for f in mine if f.verdict == DROPPED)
        assert {(dict(k[1])["reason"], dict(k[1])["direction"]): v for k, v in got.items()
                if k[0] == "cilium_drop_count_total"} == drops
        direction = {INGRESS: "INGRESS", EGRESS: "EGRESS"}
        forwards = Counter(direction[f.traffic_direction] for f in mine
                           if f.verdict == FORWARDED and f.type == L3_L4)
        assert {dict(k[1])["direction"]: v for k, v in got.items()
                if k[0] == "cilium_forward_count_total"} == forwards
        assert got[(KPR_GAUGE, ())] == (1 if node == "node-b" else 0)
    _, text = await scrape(sim, "/nodes/node-b/metrics")
    reasons = {dict(k[1])["reason"] for k in samples(text) if k[0] == "cilium_drop_count_total"}
    assert {"Service backend not found", "CT: Map insertion failed"} <= reasons


def test_reason_texts() -> None:
    assert drop_reason_text(158) == "Service backend not found"
    assert drop_reason_text(133) == "Policy denied"
    assert drop_reason_text(206) == "206"
