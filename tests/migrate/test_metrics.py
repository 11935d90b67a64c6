"""kpr_migration_* follow the status."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.migrate.metrics import MigrationMetrics
from exporter.migrate.model import STEP_GATES, STEPS, GateOutcome, MigrationStatus


def test_the_gauges_follow_the_status():
    registry = CollectorRegistry()
    metrics = MigrationMetrics(registry)
    value = registry.get_sample_value
    assert value("kpr_migration_step", {"step": "pending"}) == 1
    assert value("kpr_migration_batch") == 0
    metrics.observe(MigrationStatus(
        step=STEP_GATES, batch=1, batches=(("a",), ("b", "c"), ("d",)), migrated=("a", "b", "c"),
        gate_results=(GateOutcome("verify", "fail", "", 0, 1.0),
                      GateOutcome("verify", "pass", "", 1, 2.0))))
    assert [s for s in STEPS if value("kpr_migration_step", {"step": s}) == 1] == [STEP_GATES]
    assert value("kpr_migration_batch") == 2
    assert value("kpr_migration_nodes", {"datapath": "ebpf"}) == 3
    assert value("kpr_migration_nodes", {"datapath": "kube-proxy"}) == 1
    assert value("kpr_migration_gate", {"gate": "verify", "result": "pass"}) == 1
    assert value("kpr_migration_gate", {"gate": "verify", "result": "fail"}) == 0
