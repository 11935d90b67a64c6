"""The gates' vocabulary: what a gate is asked, what it answers, and what the answers decide.

A gate looks at one batch after its nodes were switched (``BatchContext``) and answers
``pass``, ``fail`` or ``inconclusive`` with a reason and the evidence behind it
(``GateResult``). "No data" is ``inconclusive``, never ``pass``. ``decide`` turns the
answers of every gate into what the migration does next: ``proceed``, ``pause`` or
``abort``; a failed gate does what ``on_fail`` says (abort by default), an inconclusive
one what ``on_inconclusive`` says (pause by default), and the graver of the two wins.
Pure module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from exporter.migrate.model import ABORT, PAUSE, POLICIES, PROCEED

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
RESULTS: Final = (PASS, FAIL, INCONCLUSIVE)


@dataclass(frozen=True)
class BatchContext:
    """The batch a gate judges.

    ``batch``: the nodes switched in this batch. ``migrated``: every node on eBPF now (the
    batch's nodes among them). ``control``: the nodes still on kube-proxy.
    ``batch_started``: when the batch's first change was made (epoch seconds);
    ``soak_seconds``: how long the batch soaks before the gates that need time judge it;
    ``wait_seconds``: the migration's ``--wait`` (None: the gate's own default).
    """

    batch: tuple[str, ...]
    migrated: tuple[str, ...]
    control: tuple[str, ...]
    batch_started: float
    soak_seconds: float
    wait_seconds: float | None = None

    @property
    def switched(self) -> tuple[str, ...]:
        """Every node switched so far, the batch's included, sorted."""
        return tuple(sorted({*self.batch, *self.migrated}))


@dataclass(frozen=True)
class GateResult:
    """One gate's answer for one batch."""

    gate: str
    result: str  # pass | fail | inconclusive
    reason: str
    evidence: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(f"gate {self.gate}: result {self.result!r} is not one of "
                             f"{', '.join(RESULTS)}")


class Gate(Protocol):
    """Judges one batch; never raises for bad data (that is an inconclusive result)."""

    name: str

    async def evaluate(self, ctx: BatchContext) -> GateResult: ...


@runtime_checkable
class Remembers(Protocol):
    """A gate that reads a reference before the batch's nodes change (``verify``: the
    probes' results, so a control-node regression during the batch is told apart from a
    failure that was already there)."""

    async def before_batch(self, ctx: BatchContext) -> None: ...


def decide(results: Sequence[GateResult], on_fail: str = ABORT,
           on_inconclusive: str = PAUSE) -> str:
    """``proceed`` when every gate passed (or no gate runs), else the policy of the worst
    answer: ``abort`` wins over ``pause``. Raises ValueError for an unknown policy."""
    for name, policy in (("on_fail", on_fail), ("on_inconclusive", on_inconclusive)):
        if policy not in POLICIES:
            raise ValueError(f"{name}: {policy!r} is not one of {', '.join(POLICIES)}")
    chosen = set()
    for r in results:
        if r.result == FAIL:
            chosen.add(on_fail)
        elif r.result == INCONCLUSIVE:
            chosen.add(on_inconclusive)
    if ABORT in chosen:
        return ABORT
    return PAUSE if PAUSE in chosen else PROCEED


def summary(results: Sequence[GateResult]) -> str:
    """One line: each gate's result (for logs and Events)."""
    return ", ".join(f"{r.gate} {r.result}" for r in results) or "no gate ran"
