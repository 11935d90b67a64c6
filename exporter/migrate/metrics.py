"""The migration's metrics, set from its status after every step.

* ``kpr_migration_step{step}`` — 1 for the current step, 0 for every other (all present
  from the start, ``pending`` 1 while no migration ran);
* ``kpr_migration_batch`` — the current batch, counted from 1 (0 before the first);
* ``kpr_migration_nodes{datapath}`` — nodes switched (``ebpf``) and still on kube-proxy
  (``kube-proxy``) by the migration's own record;
* ``kpr_migration_gate{gate,result}`` — 1 for each gate's latest result in the current
  batch, 0 for its other results (a gate that has not run has no series).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from exporter import metrics_contract as mc
from exporter.migrate.gates.base import RESULTS
from exporter.migrate.model import STEPS, MigrationStatus
from exporter.model import EBPF, KUBE_PROXY


class MigrationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._step = Gauge(mc.MIGRATION_STEP.name, "1 for the migration's current step.",
                           list(mc.MIGRATION_STEP.labels), registry=registry)
        self._batch = Gauge(mc.MIGRATION_BATCH.name,
                            "The migration's current batch (from 1; 0 before the first).",
                            registry=registry)
        self._nodes = Gauge(mc.MIGRATION_NODES.name, "Nodes by datapath, as the migration "
                            "recorded them.", list(mc.MIGRATION_NODES.labels), registry=registry)
        self._gate = Gauge(mc.MIGRATION_GATE.name, "1 for each gate's latest result in the "
                           "current batch.", list(mc.MIGRATION_GATE.labels), registry=registry)
        for step in STEPS:
            self._step.labels(step).set(0)
        self._step.labels(STEPS[0]).set(1)
        for datapath in (EBPF, KUBE_PROXY):
            self._nodes.labels(datapath).set(0)

    def observe(self, status: MigrationStatus) -> None:
        for step in STEPS:
            self._step.labels(step).set(1 if step == status.step else 0)
        self._batch.set(status.batch + 1 if status.batch >= 0 else 0)
        planned = {n for batch in status.batches for n in batch} | set(status.migrated)
        self._nodes.labels(EBPF).set(len(status.migrated))
        self._nodes.labels(KUBE_PROXY).set(len(planned - set(status.migrated)))
        latest = {r.gate: r.result for r in status.batch_results()}
        self._gate.clear()  # a new batch starts without results
        for gate, result in latest.items():
            for value in RESULTS:
                self._gate.labels(gate, value).set(1 if value == result else 0)
