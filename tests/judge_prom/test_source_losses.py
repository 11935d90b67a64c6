"""The lost-events gate over Prometheus: a lossy exporter's series leave the sums.

Matrix (a local stand-in for Prometheus' HTTP API): node-b's exporter lost 20 % of its
events in both windows -> the window queries are sent again without its instance, the
verdicts judge the rest and name node-b; a loss under the threshold sends nothing more;
one exporter for every node (relay mode) that is lossy -> nothing left, every verdict
inconclusive naming the node, the services kept; the agent's own count alone gates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from exporter.judge.driver import Judge
from exporter.judge.settings import JudgeSettings
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.judge.verdict import CANARY_VS_CONTROL, CONNECT_DURATION, INCONCLUSIVE, WORSE
from exporter.judge_prom import PrometheusEvidence
from tests.judge.samples import BOUNDS
from tests.judge_prom.fakeprom import FakePrometheus
from tests.judge_prom.test_source import LONG, NOW, SHORT, fleet

JOB = "kpr-exporter"


def node_events(lost_b: float, *, agent: bool = False) -> dict[str, list]:
    """node-a and node-b, one exporter each; node-b lost ``lost_b`` events."""
    flows = [({"job": JOB, "instance": f"{n}:9977", "node": n}, 4000.0) for n in ("node-a", "node-b")]
    lost = [({"job": JOB, "instance": "node-b:9977", "node": "node-b"}, lost_b)]
    return {"flows": flows, "agent_lost" if agent else "lost": lost}


@pytest.fixture
async def prom() -> AsyncIterator[FakePrometheus]:
    async with FakePrometheus(JudgeSettings(), NOW, BOUNDS) as fake:
        fake.set_window(SHORT, fleet(2))
        fake.set_window(LONG, fleet(12))
        fake.narrowed = {SHORT: fleet(1), LONG: fleet(6)}  # node-a's half of the fleet
        yield fake


async def judged(url: str):
    settings = JudgeSettings(source="prometheus", prometheus=PrometheusSourceSettings(url=url))
    source = PrometheusEvidence(settings, registry=CollectorRegistry(), default_bounds=BOUNDS)
    evidence = await source.evidence(NOW)
    verdicts = Judge(settings).evaluate_evidence(NOW, evidence, baseline=None, phase="canary")
    cart = next(v for v in verdicts if v.service == "cart" and v.sli == CONNECT_DURATION
                and v.comparison == CANARY_VS_CONTROL)
    return source, evidence, cart


@pytest.mark.parametrize("agent", [False, True], ids=["stream", "agent"])
async def test_a_lossy_exporter_leaves_the_sums_and_is_named(prom, agent):
    prom.losses = {SHORT: node_events(1000.0, agent=agent), LONG: node_events(1000.0, agent=agent)}
    source, evidence, cart = await judged(prom.url)
    assert evidence.problem is None
    assert prom.left_out == [r"node\\-b:9977"] * 8  # PromQL-escaped; four parts, both windows
    for window, scale in ((evidence.short, 1), (evidence.long, 6)):
        assert {k: window.cohort(k) for k in window.keys()} == fleet(scale)
    assert [(n.node, n.unit, n.lost) for n in evidence.left_out["short"]] == [
        ("node-b", "node-b:9977", 1000)]
    assert cart.outcome == WORSE  # what is left still shows the regression
    assert "left out node-b (Hubble lost 20.0% of its events > 1.0%)" in cart.reason
    assert source.queries == 25 + 8


async def test_a_loss_under_the_threshold_changes_nothing(prom):
    prom.losses = {SHORT: node_events(30.0), LONG: node_events(30.0)}
    source, evidence, cart = await judged(prom.url)
    assert prom.left_out == [] and evidence.left_out == {}
    assert cart.outcome == WORSE and "Hubble lost" not in cart.reason
    assert source.queries == 25


async def test_one_lossy_exporter_of_every_node_leaves_nothing_to_judge(prom):
    relay = {"job": JOB, "instance": "relay:9977"}
    losses = {"flows": [({**relay, "node": "node-a"}, 4000.0), ({**relay, "node": "node-b"}, 4000.0)],
              "lost": [({**relay, "node": "node-b"}, 1000.0)]}
    prom.losses = {SHORT: losses, LONG: losses}
    prom.narrowed = {SHORT: {}, LONG: {}}
    _, evidence, cart = await judged(prom.url)
    assert evidence.services == {("shop", "cart"), ("pay", "ledger")}  # kept, not vanished
    assert cart.outcome == INCONCLUSIVE
    assert cart.reason == ("short window: no eBPF traffic, after leaving out node-b (Hubble lost "
                           "20.0% of its events > 1.0%)")
