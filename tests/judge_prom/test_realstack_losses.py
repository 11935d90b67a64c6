"""The lost-events gate over a real Prometheus, with backfilled lost-events-heavy data.

``fleet``'s three exporters, with each node's Hubble events recorded as the exporters export
them (``kpr_node_hubble_flows_total``, ``kpr_node_hubble_lost_events_total``) and one node
losing a tenth of its events:

* relay mode (one exporter holding every node's samples) with node-b lossy: the in-process
  judge and the Prometheus judge give identical verdicts, evidence and exposition, every
  one inconclusive and naming node-b (its samples cannot be separated from the others');
* node mode with node-c lossy: Prometheus leaves node-c's exporter out of the sums; the
  verdicts are what the in-process judge gives over node-a and node-b alone (cart still
  worse), each naming node-c.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.judge.verdict_json import verdicts_body
from exporter.judge.driver import Judge
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.judge.verdict import INCONCLUSIVE
from exporter.judge_prom import PrometheusEvidence
from exporter.snapshot import NodeEvents, SliSnapshot
from tests.judge.samples import BOUNDS
from tests.judge_prom import fleet
from tests.judge_prom.test_realstack import SETTINGS, backfilled, exposition, outcome

pytestmark = pytest.mark.realstack

LOST_SHARE = 0.1  # of a lossy node's flows


def events(snapshot: SliSnapshot, lossy: bool) -> NodeEvents:
    flows = sum(v.flows for v in snapshot.services.values())
    return NodeEvents(flows, int(flows * LOST_SHARE) if lossy else 0, 0)


def node_series(recorded, lossy: str, instance_of) -> str:
    """The per-node Hubble event families, each node's under ``instance_of(node)``."""
    flows, lost = [], []
    for t, snapshots in recorded:
        for node, one in snapshots.items():
            e = events(one, node == lossy)
            labels = f'{{job="{fleet.JOB}",instance="{instance_of(node)}",node="{node}"}}'
            flows.append((f"kpr_node_hubble_flows_total{labels}", f"{e.flows} {t:.0f}"))
            lost.append((f"kpr_node_hubble_lost_events_total{labels}", f"{e.lost} {t:.0f}"))
    out = []
    for family, points in (("kpr_node_hubble_flows", flows), ("kpr_node_hubble_lost_events", lost)):
        out.append(f"# TYPE {family} counter")
        out.extend(f"{name} {point}" for name, point in sorted(points, key=lambda p: p[0]))
    return "\n".join(out) + "\n"


def with_nodes(text: str, extra: str) -> str:
    body, eof = text.rsplit("# EOF", 1)
    return body + extra + "# EOF" + eof


async def prometheus_verdicts(prometheus, now: float, baseline):
    settings = replace(SETTINGS, source="prometheus",
                       prometheus=PrometheusSourceSettings(url=prometheus.url))
    source = PrometheusEvidence(settings, registry=CollectorRegistry(), default_bounds=BOUNDS)
    evidence = await source.evidence(now)
    judge = Judge(settings)
    return evidence, judge, judge.evaluate_evidence(now, evidence, baseline=baseline,
                                                    phase="canary")


async def test_relay_mode_a_lossy_node_takes_every_sample_both_ways(tmp_path: Path):
    recorded = list(fleet.history())
    relay = [(t, {"relay": fleet.merged(s)}) for t, s in recorded]
    text = with_nodes(fleet.openmetrics(relay),
                      node_series(recorded, "node-b", lambda node: "relay:9977"))
    baseline = fleet.baseline()
    async with backfilled(tmp_path / "prometheus", text) as prometheus:
        evidence, remote, got = await prometheus_verdicts(prometheus, fleet.END, baseline)
        assert evidence.problem is None
        assert [n.node for n in evidence.left_out["short"]] == ["node-b"]

        local = Judge(SETTINGS)
        for t, snapshots in recorded:
            nodes = {n: events(one, n == "node-b") for n, one in snapshots.items()}
            local.observe(replace(fleet.merged(snapshots), nodes=nodes))
        expected = local.evaluate(fleet.END, baseline=baseline, phase="canary")

    assert [v.to_dict() for v in got] == [v.to_dict() for v in expected]
    assert verdicts_body(remote) == verdicts_body(local)
    assert exposition(remote) == exposition(local)
    assert got and {v.outcome for v in got} == {INCONCLUSIVE}
    assert all("node-b (Hubble lost 9.1% of its events > 1.0%)" in v.reason for v in got)


async def test_node_mode_only_the_lossy_exporter_leaves(tmp_path: Path):
    recorded = list(fleet.history())
    text = with_nodes(fleet.openmetrics(recorded),
                      node_series(recorded, "node-c", lambda node: f"{node}:9977"))
    baseline = fleet.baseline()
    async with backfilled(tmp_path / "prometheus", text) as prometheus:
        evidence, _, got = await prometheus_verdicts(prometheus, fleet.END, baseline)
    assert evidence.problem is None
    assert [(n.node, n.unit) for n in evidence.left_out["long"]] == [("node-c", "node-c:9977")]

    rest = Judge(SETTINGS)  # what node-a and node-b alone say
    for t, snapshots in recorded:
        rest.observe(fleet.merged({n: s for n, s in snapshots.items() if n != "node-c"}))
    expected = rest.evaluate(fleet.END, baseline=baseline, phase="canary")

    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        assert (g.service, g.sli, g.comparison, g.outcome) == (e.service, e.sli, e.comparison,
                                                              e.outcome)
        for gw, ew in zip(g.windows, e.windows):
            assert {k: v for k, v in gw.inputs.items() if k != "lost_events"} == ew.inputs
            assert gw.reason.startswith(ew.reason)
            assert "node-c (Hubble lost 9.1% of its events > 1.0%)" in gw.reason
    assert outcome(got, "cart") == "worse"
