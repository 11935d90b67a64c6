"""Does the last rollback still hold, and is it durable? (pure)

After a rollback succeeded, two things can go wrong without anyone noticing:

* **not persisted** — Helm owns ``cilium-config`` and the release still says
  ``kubeProxyReplacement: true``: the next ``helm upgrade --reuse-values`` turns KPR back
  on. Evidence, best first: the deployed release's user values (when Helm's release
  Secrets may be read), else this product's field manager still owning fields of
  ``cilium-config`` (the fast patch; ``rollback --persist`` hands them back).
* **undone** — KPR came back on for a node the rollback restored (``cilium-config``, a
  CiliumNodeConfig, or the node's own feature gauge, as the datapath tracker sees it), and
  no migration was started since. The product never fights the owner: it alerts
  (``KprReenabledAfterRollback``) and records an Event.

``assess(record, observed)`` turns what was read into the gauges' values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.cilium import kpr_on
from exporter.ownership import HELM, Owner

KPR_VALUE: Final = "kubeProxyReplacement"
HELM_RELEASE: Final = "helm-release"
FIELD_MANAGER: Final = "field-manager"


@dataclass(frozen=True)
class RollbackRecord:
    """The last rollback that succeeded: when it ended and which nodes it restored."""

    ended_at: float
    nodes: tuple[str, ...]
    plan_id: str


@dataclass(frozen=True)
class Observed:
    """The cluster now, as far as it could be read."""

    owner: Owner  # of cilium-config
    release_values: Mapping[str, Any] | None = None  # deployed release's user values; None: unreadable
    our_fields: bool = False  # this product's field manager still owns fields of cilium-config
    chart: str = ""
    chart_version: str = ""
    # nodes on eBPF now -> since when (None: on eBPF, switch not seen, e.g. after a restart)
    ebpf_since: Mapping[str, float | None] = field(default_factory=dict)
    migration_started_at: float | None = None


@dataclass(frozen=True)
class Persisted:
    owner: str
    release: str
    namespace: str
    chart: str
    chart_version: str
    evidence: str
    value: float  # 1 the owner agrees with the rollback, 0 not yet

    def labels(self) -> list[str]:
        return [self.owner, self.release, self.namespace, self.chart, self.chart_version,
                self.evidence]


@dataclass(frozen=True)
class Assessment:
    persisted: Persisted | None  # None: no rollback on record, or no owner that reverts it
    undone: tuple[str, ...]  # restored nodes back on eBPF since the rollback


def assess(record: RollbackRecord | None, observed: Observed) -> Assessment:
    if record is None:
        return Assessment(None, ())
    return Assessment(_persisted(observed), _undone(record, observed))


def _persisted(observed: Observed) -> Persisted | None:
    owner = observed.owner
    if owner.owner != HELM or owner.helm is None:
        return None  # a direct change is durable; GitOps owners are suspended by the rollback
    if observed.release_values is not None:
        value = observed.release_values.get(KPR_VALUE)
        agrees = not kpr_on(None if value is None else str(value))
        evidence = HELM_RELEASE
    else:
        agrees = not observed.our_fields
        evidence = FIELD_MANAGER
    return Persisted(owner.owner, owner.helm.name, owner.helm.namespace, observed.chart or "cilium",
                     observed.chart_version, evidence, 1.0 if agrees else 0.0)


def _undone(record: RollbackRecord, observed: Observed) -> tuple[str, ...]:
    started = observed.migration_started_at
    if started is not None and started > record.ended_at:
        return ()  # a new migration was started on purpose
    back = []
    for node in record.nodes:
        if node in observed.ebpf_since:
            since = observed.ebpf_since[node]
            if since is None or since > record.ended_at:
                back.append(node)
    return tuple(sorted(back))


def last_succeeded(states: Sequence[Mapping[str, Any]]) -> RollbackRecord | None:
    """The record of the newest succeeded rollback among persisted states (dicts)."""
    done = [s for s in states if s.get("status") == "succeeded"]
    if not done:
        return None
    last = max(done, key=lambda s: float(s.get("updatedAt", 0.0)))
    plan = last.get("plan") or {}
    return RollbackRecord(float(last.get("updatedAt", 0.0)), tuple(plan.get("nodes") or ()),
                          str(plan.get("id", "")))
