"""Building the controller for tests: virtual time, the cluster's endpoints, fake gates."""

from __future__ import annotations

from typing import Any

from exporter.migrate.controller import MigrationController
from exporter.migrate.gates.base import PASS, BatchContext, GateResult
from exporter.migrate.model import MigrationSpec, MigrationStatus
from tests.migrate.cluster import cluster_state, migrate_settings, settings

T0 = 1_800_000_000.0


class FixedGate:
    """A gate that answers ``result`` and records every batch it judged."""

    def __init__(self, name: str, result: str = PASS, reason: str = "fine") -> None:
        self.name, self.result, self.reason = name, result, reason
        self.seen: list[BatchContext] = []

    async def evaluate(self, ctx: BatchContext) -> GateResult:
        self.seen.append(ctx)
        return GateResult(self.name, self.result, self.reason, (f"batch {','.join(ctx.batch)}",))


def spec(**overrides: Any) -> MigrationSpec:
    base: dict[str, Any] = dict(id="m1", batches=("1", "10%", "50%", "100%"), soak_seconds=60.0,
                                gates=("verify", "judge"), wait_seconds=120.0, created_at=T0)
    base.update(overrides)
    return MigrationSpec(**base)


def controller(kube: Any, vtime: Any, port: int, *, gates: dict | None = None, record: list | None = None,
               fake: Any = None, rollback: dict | None = None, migrate: dict | None = None,
               **kw: Any) -> MigrationController:
    """Enforce mode on virtual time; ``record`` gets (step, batch, cluster state) per change."""
    def say(text: str) -> None:
        if record is not None and fake is not None:
            record.append((text.split(":", 1)[0], cluster_state(fake)))

    chosen = gates if gates is not None else {"verify": FixedGate("verify"),
                                              "judge": FixedGate("judge")}
    return MigrationController(kube, settings(port, **(rollback or {})),
                               migrate_settings(**(migrate or {})), enforce=True, gates=chosen,
                               clock=vtime, sleep=vtime.sleep, timer=vtime.timer, say=say, **kw)


async def record_migration(ctl: MigrationController, the_spec: MigrationSpec) -> None:
    await ctl.store.create(the_spec, MigrationStatus())
