"""A probe's rounds over the emulated datapath: sampled targets rotate to full coverage
within the formula's rounds, and every result reaches the metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.verify import results as r
from exporter.verify.metrics import ProbeMetrics
from exporter.verify.probe import Probe
from exporter.verify.sampling import rounds_to_full_coverage
from tests.verify.conftest import LIMITS


async def test_rounds_cover_every_node_and_feed_the_metrics(emulate: Callable[..., Any]) -> None:
    names = [f"node-{i}" for i in range(5)]
    cluster = await emulate({"nodes": [{"name": n} for n in names]})
    registry = CollectorRegistry()
    metrics = ProbeMetrics(registry)
    probe = Probe("node-0", cluster.dialer("node-0", "host"), cluster.dialer("node-0", "pod"),
                  targets=cluster.targets, datapath=lambda: cluster.datapath("node-0"), k=2,
                  limits=LIMITS, metrics=metrics)
    rounds = rounds_to_full_coverage(len(names), 2)
    assert rounds == 2
    remote_targets: list[set[str]] = []
    total = 0
    for _ in range(rounds):
        got = await probe.run_round()
        assert got and all(x.result == r.PASS for x in got)
        remote_targets.append({x.target for x in got if x.check == r.NODEPORT_REMOTE})
        total += len(got)
    assert all(len(t) == 2 for t in remote_targets)  # k remote nodes per round
    assert set().union(*remote_targets) == set(names) - {"node-0"}  # covered in time
    counted = sum(s.value for fam in registry.collect() if fam.name == "kpr_probe_checks"
                  for s in fam.samples if s.name == "kpr_probe_checks_total")
    assert counted == total and probe.rounds == rounds
