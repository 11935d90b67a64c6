"""Hubble's lost events as a gate: nodes that lost too much leave a window's comparison.

Per node and window, the events Hubble lost there are compared with the flows received
from it. The lost count is the larger of the two vantage points: the stream's
``lost_events`` messages (``kpr_node_hubble_lost_events_total``) and the agent's own
``hubble_lost_events_total`` (``kpr_node_hubble_agent_lost_events_total``, when scraped);
they count the same events, so the larger is taken, never the sum. The node's *lost share*
is ``lost / (lost + flows)``. Losses the stream names no flowing node for (Relay's own
queue, an empty node name) concern every node of that exporter: they are charged against
all its flows.

What leaves is an *evidence unit*: the smallest set of samples whose contribution can be
taken out of the per-service sums. Per-service samples are not per node; they are per
exporter. In node mode each exporter is one node, and the Prometheus source removes that
exporter's series (``instance``) from the sums. In relay mode one exporter holds every
node's samples, so a single lossy node takes every sample of the window with it and the
window is inconclusive. Both sources use these functions, so they agree on the same data.

Too little data left is the ordinary traffic guard's inconclusive verdict; the window's
reason names each node left out and its share, so losing events never reads as "not
worse". Pure module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from exporter.judge.verdict import INCONCLUSIVE, WindowVerdict
from exporter.snapshot import NodeEvents, SliSnapshot


@dataclass(frozen=True, slots=True)
class NodeLoss:
    """One node's lost events and received flows in one window."""

    node: str
    lost: int
    received: int  # the flows the share is taken against
    unit: str = ""  # the exporter instance holding the node's samples ("" in-process)

    @property
    def share(self) -> float:
        total = self.lost + self.received
        return self.lost / total if total else 0.0


def window_events(newer: Mapping[str, NodeEvents],
                  older: Mapping[str, NodeEvents] | None) -> dict[str, NodeEvents]:
    """The per-node events between two cumulative readings (``NodeEvents.since``)."""
    before = older or {}
    return {node: now.since(before.get(node)) for node, now in newer.items()}


def node_losses(events: Mapping[str, NodeEvents], unit: str = "") -> list[NodeLoss]:
    """Each node of one evidence unit with any lost event, with its share."""
    all_flows = sum(e.flows for e in events.values())
    found = []
    for node, e in sorted(events.items()):
        lost = max(e.lost, e.agent_lost)
        if lost <= 0:
            continue
        received = e.flows if e.flows > 0 else all_flows
        found.append(NodeLoss(node, int(lost), int(received), unit))
    return found


def over(losses: Iterable[NodeLoss], max_share: float) -> tuple[NodeLoss, ...]:
    """The nodes whose lost share is above ``max_share``, by unit and node."""
    return tuple(sorted((n for n in losses if n.share > max_share),
                        key=lambda n: (n.unit, n.node)))


def describe(left_out: Iterable[NodeLoss], max_share: float) -> str:
    """``node-a (Hubble lost 5.2 % of its events > 1 %), ...``."""
    return ", ".join(f"{n.node} (Hubble lost {n.share:.1%} of its events > {max_share:.1%})"
                     for n in left_out)


def annotate(verdict: WindowVerdict, left_out: tuple[NodeLoss, ...],
             max_share: float) -> WindowVerdict:
    """``verdict`` naming the nodes whose samples left the window's comparison."""
    if not left_out:
        return verdict
    names = describe(left_out, max_share)
    if verdict.outcome == INCONCLUSIVE:
        reason = f"{verdict.reason}, after leaving out {names}"
    else:
        reason = f"{verdict.reason}; left out {names}"
    inputs = {**verdict.inputs, "lost_events": {
        "max_share": max_share,
        "left_out": {n.node: {"lost": n.lost, "received": n.received, "share": n.share}
                     for n in left_out}}}
    return replace(verdict, reason=reason, inputs=inputs)



def with_agent_lost(snapshot: SliSnapshot, agent_lost: Mapping[str, int]) -> SliSnapshot:
    """``snapshot`` with each node's agent-side lost events (cumulative) set."""
    if not agent_lost:
        return snapshot
    nodes = dict(snapshot.nodes)
    for node, lost in agent_lost.items():
        nodes[node] = nodes.get(node, NodeEvents())._replace(agent_lost=max(0, int(lost)))
    return replace(snapshot, nodes=nodes)
