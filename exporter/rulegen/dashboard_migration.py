"""The guided migration on the overview dashboard: an annotation when the migration moves
to another step, and one when it starts another batch (``kpr_migration_step``,
``kpr_migration_batch``, exported by the migration controller). Pure functions."""

from __future__ import annotations

from typing import Any

from exporter import metrics_contract as mc
from exporter.rulegen.grafana import RATE, SCOPE, prometheus_annotation, sel


def _changed(by: str, metric: str) -> str:
    return f"max{by} (changes({sel(metric, SCOPE)}[{RATE}])) > 0"


def migration_annotations() -> list[dict[str, Any]]:
    step, batch = mc.MIGRATION_STEP.name, mc.MIGRATION_BATCH.name
    return [
        prometheus_annotation(
            "Migration steps",
            f"(max by (step) ({sel(step, SCOPE)}) == 1)\nand\n({_changed(' by (step)', step)})",
            title="Migration step", text="{{step}}", tags="step", color="blue"),
        # count_values turns the batch number into a label the text can show.
        prometheus_annotation(
            "Migration batches",
            f'count_values("batch", max ({sel(batch, SCOPE)}) > 0)\nand on ()\n'
            f"({_changed('', batch)})",
            title="Migration batch", text="batch {{batch}} started", tags="batch",
            color="orange"),
    ]
