"""Abort: the migrated nodes go back to kube-proxy through the rollback itself, then the
migration's own pieces go, so the cluster is where it was before the migration.

1. An interrupted rollback recorded in the rollback's state is finished first.
2. The rollback planner plans the nodes that carry the migration label or were switched
   (the whole cluster once cilium-config itself says KPR), and the rollback executor runs
   that plan under the same Lease: labels removed, kube-proxy back and ready there, KPR
   off, agents restarted one by one, each node proven on kube-proxy.
3. Then what only the migration added: the CiliumNodeConfig it created is deleted, the
   kube-proxy DaemonSet's exclusion of the label is lifted, and nodes it cordoned are
   uncordoned.

Each part is idempotent, so an abort interrupted by a crash is simply run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exporter.cilium import KPR_HEALTHZ_KEY, KPR_KEY
from exporter.kube.client import KubeClient
from exporter.kube.resources import NODES
from exporter.migrate.finish import kpr_in_config
from exporter.migrate.steps import Steps
from exporter.rollback.actions import StripNodeConfig
from exporter.rollback.roles import FAILED, REFUSED, Scope, Trigger
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.reader import KubePlanner


@dataclass(frozen=True)
class AbortResult:
    ok: bool
    message: str


async def abort_migration(kube: KubeClient, steps: Steps, rollbacker: KubeRollbacker,
                          planner: KubePlanner, *, switched: Sequence[str],
                          reason: str) -> AbortResult:
    """Run the abort; ``switched``: nodes the migration labelled or restarted."""
    resumed = await rollbacker.resume()
    if resumed is not None and not resumed.ok:
        return AbortResult(False, f"the interrupted rollback did not finish: {resumed.message}")
    key, value = steps.label
    labelled = [n["metadata"]["name"] for n in (await kube.list(NODES)).items
                if ((n["metadata"].get("labels") or {}).get(key)) == value]
    nodes = sorted({*labelled, *switched})
    done = "no node was switched"
    if nodes:
        cluster = await kpr_in_config(kube, steps.rollback)
        scope = Scope.cluster(nodes) if cluster else Scope.of_nodes(nodes)
        plan = await planner.plan(scope, Trigger(f"migration aborted: {reason}", (), "migration"))
        result = await rollbacker.rollback(plan)
        if result.status in (FAILED, REFUSED):
            return AbortResult(False, f"the rollback of {scope.describe()} did not succeed: "
                                      f"{result.message}")
        done = f"rolled back {scope.describe()}: {result.message}"
    return AbortResult(True, done)


async def remove_migration_pieces(steps: Steps, cordoned: Sequence[str]) -> None:
    """What only the migration added: its CiliumNodeConfig, the exclusion, the cordons."""
    r, m = steps.rollback, steps.settings
    await steps.actions.apply(StripNodeConfig(r.cilium.namespace, m.node_config,
                                              (KPR_KEY, KPR_HEALTHZ_KEY), True), {}, _nothing)
    await steps.lift_exclusion()
    await steps.uncordon(cordoned)


async def _nothing() -> None:
    return None
