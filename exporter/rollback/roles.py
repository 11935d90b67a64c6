"""Roles and result types shared by the webhook decision, the planner and the executors.

Pure module (the decision imports it): no aiohttp, no kubernetes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from exporter.rollback.actions import Plan

# Scope kinds.
CLUSTER: Final = "cluster"  # every node, cluster-wide config included
NODES: Final = "nodes"  # only the named nodes

# Executor modes.
DRY_RUN: Final = "dry-run"
ENFORCE: Final = "enforce"
MODES: Final = (DRY_RUN, ENFORCE)

# Result statuses (also the ``result`` label of kpr_rollbacks_total).
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
REFUSED: Final = "refused"
NOOP: Final = "noop"
PLANNED: Final = "planned"
RESULTS: Final = (SUCCEEDED, FAILED, REFUSED, NOOP, PLANNED)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which nodes a rollback covers. ``CLUSTER`` also turns the cluster-wide switch off."""

    kind: str
    nodes: tuple[str, ...] = ()

    @classmethod
    def cluster(cls, nodes: Collection[str] = ()) -> Scope:
        return cls(CLUSTER, tuple(sorted(set(nodes))))

    @classmethod
    def of_nodes(cls, nodes: Collection[str]) -> Scope:
        return cls(NODES, tuple(sorted(set(nodes))))

    def describe(self) -> str:
        if self.kind == CLUSTER:
            return "the whole cluster"
        return "node" + ("s " if len(self.nodes) != 1 else " ") + ", ".join(self.nodes)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "nodes": list(self.nodes)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, object]) -> Scope:
        nodes = doc.get("nodes") or ()
        assert isinstance(nodes, (list, tuple)), "nodes must be a list"
        return cls(str(doc["kind"]), tuple(str(n) for n in nodes))


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why a rollback was asked for: a human reason and the alert fingerprints behind it."""

    reason: str
    fingerprints: tuple[str, ...] = ()
    source: str = "webhook"  # webhook | cli

    def to_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "fingerprints": list(self.fingerprints), "source": self.source}

    @classmethod
    def from_dict(cls, doc: Mapping[str, object]) -> Trigger:
        prints = doc.get("fingerprints") or ()
        assert isinstance(prints, (list, tuple)), "fingerprints must be a list"
        return cls(str(doc.get("reason", "")), tuple(str(p) for p in prints),
                   str(doc.get("source", "webhook")))


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one rollback attempt; ``message`` says what happened in words."""

    status: str
    mode: str
    message: str
    plan_id: str = ""
    done: tuple[str, ...] = ()  # descriptions of the actions completed (enforce)

    @property
    def ok(self) -> bool:
        return self.status in (SUCCEEDED, NOOP, PLANNED)


@runtime_checkable
class Rollbacker(Protocol):
    """Carries out (or, for the dry-run null object, only reports) a rollback plan."""

    mode: str

    async def rollback(self, plan: Plan) -> Result: ...


@runtime_checkable
class Planner(Protocol):
    """Computes the plan for a scope from the current cluster (read-only)."""

    async def plan(self, scope: Scope, trigger: Trigger) -> Plan: ...


@runtime_checkable
class ClusterView(Protocol):
    """What the decision needs from the datapath tracker.

    ``phase()`` is one of before, canary, after, rolled-back or unknown (not synced yet);
    ``nodes_by_datapath()`` maps kube-proxy / ebpf / unknown to node names.
    """

    def phase(self) -> str: ...

    def nodes_by_datapath(self) -> Mapping[str, Collection[str]]: ...


class TrackerView:
    """Adapts the datapath tracker (``phase`` property, ``decisions()``) to ``ClusterView``."""

    def __init__(self, tracker: object) -> None:
        self._tracker = tracker

    def phase(self) -> str:
        phase = self._tracker.phase  # type: ignore[attr-defined]
        return str(phase() if callable(phase) else phase)

    def nodes_by_datapath(self) -> Mapping[str, Collection[str]]:
        grouped: dict[str, set[str]] = {}
        for node, decision in self._tracker.decisions().items():  # type: ignore[attr-defined]
            grouped.setdefault(decision.datapath, set()).add(node)
        return grouped
