"""The migration planner (pure): nodes into batches, new nodes placed, every step listed.

Batch sizes are cumulative targets, as Argo Rollouts' ``setWeight`` steps are: ``1`` means
"one node migrated in all", ``10%`` "a tenth of the nodes (rounded up) migrated in all".
Each batch takes, in node-name order, the nodes needed to reach its target; a target
already reached gives no batch (so ``1,10%,50%,100%`` on three nodes is one node per
batch). Nodes already migrated count toward the targets and are never put in a batch.
When the last target is below 100 %, the remaining nodes form one more batch: every node
is gated before the cluster-wide step.

Nodes that join while a migration runs go into the next batch (a new one after the last
when the current batch is the last); once the cluster-wide step has begun they are only
reported (the cluster-wide setting reaches them at their agent's first start). Nodes that
leave are dropped from the batches still to come.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from exporter.migrate.model import (
    STEP_CLUSTER_WIDE, STEP_TITLES, STEPS, MigrationSpec, MigrationStatus, SpecError,
    batch_problem,
)


def targets(sizes: Sequence[str], total: int) -> list[int]:
    """Cumulative node counts for ``sizes`` on ``total`` nodes (never above ``total``)."""
    out = []
    for size in sizes:
        if batch_problem(size):
            raise SpecError(batch_problem(size))
        raw = size.strip()
        wanted = math.ceil(total * int(raw[:-1]) / 100) if raw.endswith("%") else int(raw)
        out.append(min(total, wanted))
    return out


def plan_batches(nodes: Collection[str], migrated: Collection[str],
                 sizes: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The node names of each batch; see the module docstring."""
    names = sorted(set(nodes))
    done = {n for n in migrated if n in set(names)}
    todo = [n for n in names if n not in done]
    batches: list[tuple[str, ...]] = []
    reached = len(done)
    for target in targets(sizes, len(names)):
        take = max(0, target - reached)
        if take:
            batches.append(tuple(todo[:take]))
            todo, reached = todo[take:], reached + take
    if todo:
        batches.append(tuple(todo))
    return tuple(batches)


def place_new_nodes(status: MigrationStatus, nodes: Collection[str]
                    ) -> tuple[MigrationStatus, tuple[str, ...]]:
    """``status`` with joined nodes put in the next batch and departed ones dropped from
    future batches; the notes say what changed (empty: nothing)."""
    present = set(nodes)
    planned = {n for batch in status.batches for n in batch} | set(status.migrated)
    joined = sorted(present - planned)
    batches = [list(b) for b in status.batches]
    notes: list[str] = []
    future = range(status.batch + 1, len(batches))
    gone = sorted(n for i in future for n in batches[i] if n not in present)
    if gone:
        for i in future:
            batches[i] = [n for n in batches[i] if n in present]
        notes.append(f"node(s) {', '.join(gone)} left the cluster; dropped from later batches")
    if joined:
        if STEPS.index(status.step) >= STEPS.index(STEP_CLUSTER_WIDE):
            notes.append(f"node(s) {', '.join(joined)} joined after the last batch; the "
                         "cluster-wide setting turns KPR on for them at their agent's start")
        else:
            nxt = status.batch + 1
            if nxt >= len(batches):
                batches.append([])
            batches[nxt] = sorted({*batches[nxt], *joined})
            notes.append(f"node(s) {', '.join(joined)} joined during the migration; added to "
                         f"batch {nxt + 1}")
    kept = tuple(tuple(b) for i, b in enumerate(batches) if b or i <= status.batch)
    return replace(status, batches=kept), tuple(notes)


@dataclass(frozen=True)
class Targets:
    """What the steps touch, named for the plan's text."""

    label: str
    label_value: str
    kube_proxy: str  # namespace/name of the DaemonSet
    node_config: str  # namespace/name of the CiliumNodeConfig
    healthz: str  # the KPR health endpoint's bind address
    owner: str  # who makes the cluster-wide change (describe())


def render_plan(spec: MigrationSpec, batches: Sequence[Sequence[str]],
                migrated: Collection[str], t: Targets) -> str:
    """Every step of the migration, for ``migrate plan`` (nothing is changed)."""
    lines = [f"Migration plan {spec.id}: kube-proxy -> Cilium kube-proxy replacement, "
             f"{sum(len(b) for b in batches)} node(s) in {len(batches)} batch(es)"]
    if migrated:
        lines.append(f"  already migrated (counted as done): {', '.join(sorted(migrated))}")
    lines += [
        f"  1. {STEP_TITLES['preflight']}",
        f"  2. DaemonSet {t.kube_proxy}: required node affinity {t.label} NotIn [{t.label_value}]",
        f"  3. CiliumNodeConfig {t.node_config}: nodeSelector {t.label}={t.label_value}, "
        f"kube-proxy-replacement: \"true\", kube-proxy-replacement-healthz-bind-address: "
        f"\"{t.healthz}\"",
    ]
    for number, batch in enumerate(batches, 1):
        nodes = ", ".join(batch)
        lines.append(f"  batch {number}/{len(batches)}: {nodes}")
        if spec.drain:
            lines.append(f"     - cordon and drain {nodes}")
        lines += [f"     - label {nodes} with {t.label}={t.label_value}",
                  "     - restart their Cilium agents one node at a time",
                  "     - per node: agent Ready with the KPR gauge on, kube-proxy gone, KPR "
                  "health endpoint answering"]
        if spec.drain:
            lines.append(f"     - uncordon {nodes}")
        gates = ", ".join(spec.gates) or "NONE"
        lines.append(f"     - gates ({gates}); soak {spec.soak_seconds:.0f} s; a failed gate "
                     f"-> {spec.on_fail}, inconclusive -> {spec.on_inconclusive}")
    lines += [
        f"  {len(batches) + 4}. cluster-wide kube-proxy-replacement=true through {t.owner}",
        f"  {len(batches) + 5}. delete CiliumNodeConfig {t.node_config}, delete DaemonSet "
        f"{t.kube_proxy} (its backup is kept: rollback still works), remove the labels",
        "  never: delete kube-proxy before the last step, or on a node whose gates have not passed",
    ]
    lines += [f"  warning: {w}" for w in spec.gate_warnings()]
    return "\n".join(lines)
