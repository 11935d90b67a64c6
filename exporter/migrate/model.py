"""The guided migration as data: what was asked (``MigrationSpec``) and where it stands
(``MigrationStatus``). Pure: no I/O; both round-trip through JSON for the state ConfigMap.

The step names are declared here once. A migration walks them in this order::

    pending -> preflight -> exclude-kube-proxy -> node-config
            -> [per batch: drain -> label -> restart -> verify -> uncordon -> gates]
            -> cluster-wide -> cleanup -> completed

``drain`` and ``uncordon`` are passed through without a change when the spec does not
ask to drain. ``aborting`` rolls the migrated nodes back; ``aborted`` is where it ends.
Pausing is a flag, not a step: a paused migration stays on its step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

STEP_PENDING: Final = "pending"
STEP_PREFLIGHT: Final = "preflight"
STEP_EXCLUDE: Final = "exclude-kube-proxy"
STEP_NODE_CONFIG: Final = "node-config"
STEP_DRAIN: Final = "drain"
STEP_LABEL: Final = "label"
STEP_RESTART: Final = "restart"
STEP_VERIFY: Final = "verify"
STEP_UNCORDON: Final = "uncordon"
STEP_GATES: Final = "gates"
STEP_CLUSTER_WIDE: Final = "cluster-wide"
STEP_CLEANUP: Final = "cleanup"
STEP_COMPLETED: Final = "completed"
STEP_ABORTING: Final = "aborting"
STEP_ABORTED: Final = "aborted"

#: The steps of one batch, in order.
BATCH_STEPS: Final = (STEP_DRAIN, STEP_LABEL, STEP_RESTART, STEP_VERIFY, STEP_UNCORDON, STEP_GATES)
#: Every step, in order (the ``step`` label of ``kpr_migration_step``).
STEPS: Final = (STEP_PENDING, STEP_PREFLIGHT, STEP_EXCLUDE, STEP_NODE_CONFIG, *BATCH_STEPS,
                STEP_CLUSTER_WIDE, STEP_CLEANUP, STEP_COMPLETED, STEP_ABORTING, STEP_ABORTED)
STEP_TITLES: Final = {
    STEP_PENDING: "recorded, not started",
    STEP_PREFLIGHT: "preflight checks pass and the backup is fresh",
    STEP_EXCLUDE: "kube-proxy DaemonSet gets the node affinity that keeps it off labelled nodes",
    STEP_NODE_CONFIG: "CiliumNodeConfig turns KPR on (with its health endpoint) for labelled nodes",
    STEP_DRAIN: "cordon and drain the batch's nodes",
    STEP_LABEL: "label the batch's nodes with the migration label",
    STEP_RESTART: "restart the batch's Cilium agents, one node at a time",
    STEP_VERIFY: "each node: agent Ready with KPR on, kube-proxy gone, KPR health endpoint answering",
    STEP_UNCORDON: "uncordon the batch's nodes",
    STEP_GATES: "gates decide: proceed, pause or abort",
    STEP_CLUSTER_WIDE: "cluster-wide kube-proxy-replacement=true through the owner",
    STEP_CLEANUP: "remove the per-node pieces and delete the kube-proxy DaemonSet (backup kept)",
    STEP_COMPLETED: "every node on eBPF",
    STEP_ABORTING: "rolling the migrated nodes back to kube-proxy",
    STEP_ABORTED: "aborted: the cluster is back on kube-proxy",
}
#: Steps after which nothing more happens.
FINAL_STEPS: Final = (STEP_COMPLETED, STEP_ABORTED)

# Gate policies (``on_fail`` / ``on_inconclusive``) and the decision's outcomes.
PROCEED: Final = "proceed"
PAUSE: Final = "pause"
ABORT: Final = "abort"
POLICIES: Final = (PAUSE, ABORT)
KNOWN_GATES: Final = ("verify", "judge", "alerts")
DEFAULT_GATES: Final = KNOWN_GATES
DEFAULT_BATCHES: Final = ("1", "10%", "50%", "100%")


class SpecError(ValueError):
    """A migration spec that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class MigrationSpec:
    """What the user asked for (``migrate start`` / ``migrate run``)."""

    id: str
    batches: tuple[str, ...] = DEFAULT_BATCHES  # node counts or percentages, cumulative
    soak_seconds: float = 900.0
    gates: tuple[str, ...] = DEFAULT_GATES
    on_fail: str = ABORT
    on_inconclusive: str = PAUSE
    drain: bool = False
    wait_seconds: float = 300.0
    created_at: float = 0.0
    requested_by: str = ""

    def problems(self) -> list[str]:
        found = []
        if not self.batches:
            found.append("batches: at least one batch is needed (e.g. 1,10%,50%,100%)")
        found.extend(batch_problem(b) for b in self.batches if batch_problem(b))
        unknown = [g for g in self.gates if g not in KNOWN_GATES]
        if unknown:
            found.append(f"gates: unknown {', '.join(unknown)} (known: {', '.join(KNOWN_GATES)}, "
                         "or none)")
        for name in ("on_fail", "on_inconclusive"):
            if getattr(self, name) not in POLICIES:
                found.append(f"{name}: {getattr(self, name)!r} is not one of {', '.join(POLICIES)}")
        if self.soak_seconds < 0 or self.wait_seconds <= 0:
            found.append("soak must not be negative and wait must be positive")
        return found

    def gate_warnings(self) -> tuple[str, ...]:
        """A warning per gate turned off (``--gates none`` or a shorter list)."""
        off = [g for g in KNOWN_GATES if g not in self.gates]
        if not off:
            return ()
        return (f"gate(s) {', '.join(off)} turned off for migration {self.id}: batches go ahead "
                "without that evidence",)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["batches"], doc["gates"] = list(self.batches), list(self.gates)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MigrationSpec:
        known = {f for f in cls.__dataclass_fields__}
        args = {k: v for k, v in doc.items() if k in known}
        args["batches"] = tuple(str(b) for b in args.get("batches") or ())
        args["gates"] = tuple(str(g) for g in args.get("gates") or ())
        return cls(**args)


def batch_problem(text: str) -> str:
    """Why one batch size is invalid ("" when it is a positive count or 1-100 %)."""
    raw = text.strip()
    number = raw[:-1] if raw.endswith("%") else raw
    if not number.isdigit() or int(number) < 1 or (raw.endswith("%") and int(number) > 100):
        return f"batch {text!r} is neither a node count >= 1 nor a percentage 1-100%"
    return ""


def parse_batches(text: str) -> tuple[str, ...]:
    """``"1,10%,50%,100%"`` -> its parts; ``SpecError`` naming every bad one."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [batch_problem(p) for p in parts if batch_problem(p)]
    if bad or not parts:
        raise SpecError("; ".join(bad) or "no batch given")
    return parts


def parse_gates(text: str) -> tuple[str, ...]:
    """``"verify,judge"`` or ``"none"`` -> the gate names; ``SpecError`` for unknown ones."""
    if text.strip().lower() == "none":
        return ()
    gates = tuple(dict.fromkeys(g.strip() for g in text.split(",") if g.strip()))
    unknown = [g for g in gates if g not in KNOWN_GATES]
    if unknown:
        raise SpecError(f"unknown gate(s) {', '.join(unknown)}; known: {', '.join(KNOWN_GATES)}, none")
    return gates


@dataclass(frozen=True)
class GateOutcome:
    """One gate's result for one batch, as recorded (mirrors ``gates.base.GateResult``)."""

    gate: str
    result: str  # pass | fail | inconclusive
    reason: str
    batch: int
    at: float
    evidence: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> GateOutcome:
        return cls(str(doc["gate"]), str(doc["result"]), str(doc.get("reason", "")),
                   int(doc.get("batch", 0)), float(doc.get("at", 0.0)),
                   tuple(str(e) for e in doc.get("evidence") or ()))


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the migration's timeline: when ``step`` ended (or paused, or aborted) and
    what it did (for ``migrate status`` and the report)."""

    at: float
    step: str
    message: str
    batch: int = -1


@dataclass(frozen=True)
class MigrationStatus:
    """Where the migration stands; written after every step (compare-and-swap)."""

    step: str = STEP_PENDING
    batch: int = -1  # index into ``batches``; -1 before the first batch
    batches: tuple[tuple[str, ...], ...] = ()  # node names per batch, fixed at preflight
    migrated: tuple[str, ...] = ()  # nodes whose batch passed verify (labelled and proven)
    restarting: Mapping[str, str] = field(default_factory=dict)  # node -> uid of the pod deleted
    restarted: tuple[str, ...] = ()  # nodes of the current batch whose agent restarted
    batch_started: float = 0.0  # when the current batch's first change was made
    cordoned: tuple[str, ...] = ()  # nodes this migration cordoned (uncordoned again later)
    gate_results: tuple[GateOutcome, ...] = ()
    soak_started: float | None = None
    soak_extended_seconds: float = 0.0
    promoted: bool = False  # ``migrate promote``: skip the rest of the current soak
    promote_seen: int = 0  # the last ``migrate promote`` request acted on
    resume_seen: int = 0  # the last ``migrate resume`` request acted on
    waiting_since: float | None = None  # the cluster-wide step waits for its owner since
    paused: bool = False
    pause_reason: str = ""
    aborted: bool = False  # an abort was asked or decided (step aborting/aborted follow)
    abort_reason: str = ""
    completed: bool = False
    warnings: tuple[str, ...] = ()
    message: str = ""
    started_at: float = 0.0
    updated_at: float = 0.0
    holder: str = ""
    history: tuple[HistoryEntry, ...] = ()

    HISTORY_LIMIT = 200

    @property
    def finished(self) -> bool:
        return self.step in FINAL_STEPS

    @property
    def current_batch(self) -> tuple[str, ...]:
        return self.batches[self.batch] if 0 <= self.batch < len(self.batches) else ()

    def soak_ends(self, soak_seconds: float) -> float | None:
        """When the current soak ends (None: no soak running)."""
        if self.soak_started is None:
            return None
        return self.soak_started + soak_seconds + self.soak_extended_seconds

    def batch_results(self, batch: int | None = None) -> tuple[GateOutcome, ...]:
        which = self.batch if batch is None else batch
        return tuple(r for r in self.gate_results if r.batch == which)

    def at_step(self, step: str, now: float, message: str = "", **changes: Any) -> MigrationStatus:
        """A copy on ``step`` with ``changes``; the timeline gains what the step just left
        (``self.step``) did: ``message``, or that step's title."""
        entry = HistoryEntry(now, self.step, message or STEP_TITLES.get(self.step, self.step),
                             self.batch)
        history = (*self.history, entry)[-self.HISTORY_LIMIT:]
        return replace(self, step=step, updated_at=now, message=entry.message, history=history,
                       **changes)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["batches"] = [list(b) for b in self.batches]
        doc["restarting"] = dict(self.restarting)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MigrationStatus:
        known = set(cls.__dataclass_fields__)
        args = {k: v for k, v in doc.items() if k in known}
        args["batches"] = tuple(tuple(str(n) for n in b) for b in args.get("batches") or ())
        for key in ("migrated", "restarted", "cordoned", "warnings"):
            args[key] = tuple(str(x) for x in args.get(key) or ())
        args["restarting"] = {str(k): str(v) for k, v in (args.get("restarting") or {}).items()}
        args["gate_results"] = tuple(GateOutcome.from_dict(r) for r in args.get("gate_results") or ())
        args["history"] = tuple(HistoryEntry(float(h["at"]), str(h["step"]), str(h["message"]),
                                             int(h.get("batch", -1)))
                                for h in args.get("history") or ())
        return cls(**args)

