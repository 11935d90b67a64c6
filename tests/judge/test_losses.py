"""The lost-events gate: nodes that lost too much leave a window, and the verdict says so.

Matrix (units): the share takes the larger of the stream's and the agent's count, never the
sum; losses of a node that delivered no flows are charged against all flows; counter resets
count from zero; the threshold is exclusive; the annotation names node and share.
Table (the in-process judge, lost-events-heavy): a regression hidden by losses on the eBPF
node is inconclusive, never not worse; a loss under the threshold changes nothing; a burst
only in the long window makes the verdict inconclusive while the short window is judged;
Relay's unattributed losses and the agent's own count gate too.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.judge.driver import Judge
from exporter.judge.losses import NodeLoss, annotate, node_losses, over, window_events
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import (
    CANARY_VS_CONTROL,
    CONNECT_DURATION,
    INCONCLUSIVE,
    KPR_SENSITIVE_DROPS,
    NOT_WORSE,
    WORSE,
    WindowVerdict,
)
from exporter.snapshot import NodeEvents
from tests.judge.samples import Feed, lognormal, sli

KP = ("shop", "cart", "kube-proxy")
EB = ("shop", "cart", "ebpf")
STEP = 30.0


def test_the_share_takes_the_larger_count_and_charges_unattributed_losses_to_all_flows():
    events = {"node-a": NodeEvents(900, 50, 100), "node-b": NodeEvents(1000, 0, 0),
              "__unattributed__": NodeEvents(0, 38, 0)}
    found = {n.node: n for n in node_losses(events, unit="x:9977")}
    assert set(found) == {"node-a", "__unattributed__"}  # node-b lost nothing
    assert found["node-a"] == NodeLoss("node-a", 100, 900, "x:9977")
    assert found["node-a"].share == pytest.approx(0.1)
    assert found["__unattributed__"].received == 1900
    assert found["__unattributed__"].share == pytest.approx(38 / 1938)
    assert over(found.values(), 0.02) == (found["node-a"],)
    assert over(found.values(), 0.1) == ()  # the threshold itself does not gate


def test_window_events_count_a_reset_from_zero():
    newer = {"a": NodeEvents(500, 3, 0), "b": NodeEvents(10, 0, 0)}
    older = {"a": NodeEvents(800, 1, 0)}
    assert window_events(newer, older) == {"a": NodeEvents(500, 2, 0), "b": NodeEvents(10, 0, 0)}


def test_the_agents_count_needs_a_reading_at_both_edges():
    # First read inside the window (or never): no increase, as Prometheus' increase() has none.
    newer = {"a": NodeEvents(500, 0, 900), "b": NodeEvents(500, 0, 40), "c": NodeEvents(500)}
    older = {"a": NodeEvents(100), "b": NodeEvents(100, 0, 10)}
    assert window_events(newer, older) == {"a": NodeEvents(400, 0, 0), "b": NodeEvents(400, 0, 30),
                                           "c": NodeEvents(500, 0, 0)}


def test_annotate_names_the_nodes_and_their_shares():
    base = WindowVerdict("short", 0.0, 300.0, False, NOT_WORSE, False, "fine")
    loss = (NodeLoss("node-b", 52, 948),)
    got = annotate(base, loss, 0.01)
    assert got.reason == "fine; left out node-b (Hubble lost 5.2% of its events > 1.0%)"
    assert got.inputs["lost_events"]["left_out"]["node-b"]["share"] == pytest.approx(0.052)
    inc = annotate(replace(base, outcome=INCONCLUSIVE, reason="no eBPF traffic"), loss, 0.01)
    assert inc.reason.startswith("no eBPF traffic, after leaving out node-b (Hubble lost 5.2%")
    assert annotate(base, (), 0.01) is base


# --- the in-process judge over lost-events-heavy data ------------------------------------


class LossyFeed(Feed):
    """A ``Feed`` whose snapshots carry per-node Hubble events."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, NodeEvents] = {}

    def lossy_step(self, increments: dict, nodes: dict[str, NodeEvents]):
        for node, inc in nodes.items():
            old = self.nodes.get(node, NodeEvents(0, 0, 0))  # the agent read from the start
            self.nodes[node] = NodeEvents(*(a + b for a, b in zip(old, inc)))
        return replace(self.step(STEP, increments), nodes=dict(self.nodes))


def traffic(kpr_drops_ebpf: int) -> dict:
    """One step: node-a (kube-proxy) and node-b (eBPF), 200 handshakes and 400 flows each."""
    return {KP: sli(lognormal(1, 200), flows=400, drops={"SERVICE_BACKEND_NOT_FOUND": 1}),
            EB: sli(lognormal(2, 200), flows=400,
                    drops={"SERVICE_BACKEND_NOT_FOUND": kpr_drops_ebpf})}


def run(steps, settings: JudgeSettings = JudgeSettings()):
    judge, feed = Judge(settings), LossyFeed()
    for increments, nodes in steps:
        judge.observe(feed.lossy_step(increments, nodes))
    verdicts = judge.evaluate(feed.time, baseline=None, phase="canary")
    return {v.sli: v for v in verdicts if v.comparison == CANARY_VS_CONTROL}


def clean(lost_b: int = 0, lost_relay: int = 0, agent_b: int = 0) -> dict[str, NodeEvents]:
    nodes = {"node-a": NodeEvents(400, 0, 0), "node-b": NodeEvents(400, lost_b, agent_b)}
    if lost_relay:
        nodes["__unattributed__"] = NodeEvents(0, lost_relay, 0)
    return nodes


# What reached the exporter: with half of node-b's events lost, its KPR-sensitive drops
# look like the control's (the regression is hidden in what arrived).
HIDDEN = traffic(kpr_drops_ebpf=1)
REAL = traffic(kpr_drops_ebpf=12)

CASES = {
    # name: (steps, settings, expected KPR-drops outcome, a node named in the reason)
    "regression hidden by losses, gate off": (
        [(HIDDEN, clean(lost_b=400))] * 70, JudgeSettings(max_lost_share=1.0), NOT_WORSE, None),
    "regression hidden by losses, gated": (
        [(HIDDEN, clean(lost_b=400))] * 70, JudgeSettings(), INCONCLUSIVE, "node-b"),
    "loss under the threshold": (
        [(REAL, clean(lost_b=2))] * 70, JudgeSettings(), WORSE, None),
    "the agent's own count gates": (
        [(HIDDEN, clean(agent_b=40))] * 70, JudgeSettings(), INCONCLUSIVE, "node-b"),
    "Relay's unattributed losses gate": (
        [(HIDDEN, clean(lost_relay=40))] * 70, JudgeSettings(), INCONCLUSIVE, "__unattributed__"),
    "a burst long ago: long window only": (
        [(REAL, clean())] * 30 + [(REAL, clean(lost_b=2000))] + [(REAL, clean())] * 39,
        JudgeSettings(), INCONCLUSIVE,
        "node-b"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_gate_over_lost_events_heavy_data(name):
    steps, settings, expected, named = CASES[name]
    got = run(steps, settings)
    v = got[KPR_SENSITIVE_DROPS]
    assert v.outcome == expected, v.reason
    if named is None:
        assert all("lost_events" not in w.inputs for w in v.windows)
        assert "Hubble lost" not in v.reason
        return
    assert f"{named} (Hubble lost" in v.reason
    for sli_verdict in got.values():  # every SLI of the window leaves, none reads not worse
        assert sli_verdict.outcome == INCONCLUSIVE
    left = [w for w in v.windows if "lost_events" in w.inputs]
    assert left and all(named in w.inputs["lost_events"]["left_out"] for w in left)


def test_a_burst_long_ago_leaves_the_short_window_judged():
    steps, settings, _, _ = CASES["a burst long ago: long window only"]
    v = run(steps, settings)[KPR_SENSITIVE_DROPS]
    short, long = v.windows
    assert short.outcome == WORSE and "lost_events" not in short.inputs
    assert long.outcome == INCONCLUSIVE
    assert long.inputs["lost_events"]["left_out"]["node-b"]["lost"] == 2000
    assert v.reason.startswith("worse in the short window only; the long window is inconclusive")


def test_losses_never_turn_a_latency_regression_into_not_worse():
    slow = {**traffic(1), EB: sli(lognormal(2, 200, scale=2.0), flows=400)}
    v = run([(slow, clean(lost_b=100))] * 70)[CONNECT_DURATION]
    assert v.outcome == INCONCLUSIVE
    assert "node-b (Hubble lost 20.0% of its events > 1.0%)" in v.reason


def test_the_agents_count_joins_a_snapshots_node_events():
    from exporter.judge.losses import with_agent_lost
    from tests.judge.samples import snap
    base = replace(snap(1.0, {}), nodes={"node-a": NodeEvents(10, 1, 0)})
    got = with_agent_lost(base, {"node-a": 4, "node-z": 2})
    assert got.nodes == {"node-a": (10, 1, 4), "node-z": (0, 0, 2)}
    assert with_agent_lost(base, {}) is base
