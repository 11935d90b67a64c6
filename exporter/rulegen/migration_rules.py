"""Alerting rules on the guided migration (``kpr_migration_step``, ``kpr_migration_gate``).

* ``KprMigrationGateHeld``: a gate of the current batch answered inconclusive (too little
  evidence, a source that could not be read) and holds the migration. Too little evidence
  is never a pass, so a person has to look: it pages (critical) and never requests a
  rollback — the batch's nodes are not known to be worse.
* ``KprMigrationAborted``: the migration stopped and rolled its nodes back (a failed gate,
  a failed step, ``migrate abort``). Informational: kube-proxy is back where it was.

Neither carries ``kpr_action``. Pure functions.
"""

from __future__ import annotations

from typing import Final

from exporter.migrate.gates.base import INCONCLUSIVE
from exporter.migrate.model import STEP_ABORTED, STEP_ABORTING
from exporter.rulegen import names as n
from exporter.rulegen.alerting import alert_rule
from exporter.rulegen.profiles import Profile

HELD: Final = "KprMigrationGateHeld"
ABORTED: Final = "KprMigrationAborted"


def migration_rules(p: Profile, runbook: str) -> list[dict[str, object]]:
    return [
        alert_rule(
            HELD, f'max by (gate) ({n.MIGRATION_GATE}{{result="{INCONCLUSIVE}"}}) == 1',
            p.for_measurement, {"severity": "critical"},
            "A gate holds the migration: too little evidence to go on.",
            "The {{ $labels.gate }} gate of the current batch answered inconclusive, so the "
            "migration is paused (or waits for more soak) instead of taking more nodes to "
            "eBPF. Read `kpr-exporter migrate status` for the gate's reason and evidence, "
            "then extend the soak, fix the source, or abort.",
            runbook,
        ),
        alert_rule(
            ABORTED,
            f'max by (step) ({n.MIGRATION_STEP}{{step=~"{STEP_ABORTING}|{STEP_ABORTED}"}}) == 1',
            0, {"severity": "info"},
            "The guided migration was aborted and its nodes are being rolled back.",
            "The migration is {{ $labels.step }}: it stopped (a failed gate, a failed step or "
            "`migrate abort`) and the nodes it switched go back to kube-proxy through the rollback executor. Read "
            "`kpr-exporter migrate status` for the reason.",
            runbook,
        ),
    ]
