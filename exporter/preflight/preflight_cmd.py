"""``kpr-exporter preflight``: gather the facts, print the table of checks; exit 1 when any
check failed."""

from __future__ import annotations

from typing import TextIO

from exporter.kube.client import KubeClient
from exporter.preflight import evaluate, exit_code, render_table
from exporter.preflight.gather import gather
from exporter.rollback.backup import backup_store
from exporter.rollback.settings import RollbackSettings


async def cmd_preflight(settings: RollbackSettings, kube: KubeClient, *, out: TextIO) -> int:
    """Print the preflight table; exit 1 when any check failed."""
    facts = await gather(kube, settings, backup_store(kube, settings))
    rows = evaluate(facts, settings)
    print(render_table(rows), file=out)
    return exit_code(rows)
