"""What the judge says and why: outcomes, SLI and comparison names, verdict records.

A ``Verdict`` is one (service, SLI, comparison) judgement. It carries the judgement of each
window (``WindowVerdict``), and each window carries its inputs and the tests behind it
(``TestResult``: statistic, p-values, estimate with interval, effect, threshold, floor), so
every verdict can be explained and replayed. ``to_dict`` is JSON-safe: non-finite numbers
become ``None`` (NaN) or the strings ``"+Inf"`` / ``"-Inf"``. Pure module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# Outcomes. "better" is a not-worse verdict with ``better=True`` (exported as -1).
WORSE: Final = "worse"
NOT_WORSE: Final = "not_worse"
INCONCLUSIVE: Final = "inconclusive"
OUTCOMES: Final = (WORSE, NOT_WORSE, INCONCLUSIVE)

# SLIs (the ``sli`` label of kpr_verdict).
CONNECT_DURATION: Final = "connect_duration"
CONNECT_FAILURES: Final = "connect_failures"
DROPS: Final = "drops"
KPR_SENSITIVE_DROPS: Final = "kpr_sensitive_drops"
SLIS: Final = (CONNECT_DURATION, CONNECT_FAILURES, DROPS, KPR_SENSITIVE_DROPS)

# Comparisons (the ``comparison`` label).
CANARY_VS_CONTROL: Final = "canary-vs-control"
AFTER_VS_BASELINE: Final = "after-vs-baseline"
COMPARISONS: Final = (CANARY_VS_CONTROL, AFTER_VS_BASELINE)

# Window names.
SHORT: Final = "short"
LONG: Final = "long"

# Test names.
MANN_WHITNEY: Final = "mann-whitney-u"
TAIL: Final = "tail-exceedance"
RATE_RATIO: Final = "rate-ratio"

# What a single test points to.
SIGNAL_WORSE: Final = "worse"
SIGNAL_BETTER: Final = "better"
SIGNAL_NONE: Final = "none"

NAN: Final = float("nan")


@dataclass(frozen=True, slots=True)
class TestResult:
    """One statistical test and how it was read.

    ``estimate`` (with ``low``/``high``) is the test's own estimate: the Hodges-Lehmann
    shift in seconds, the tail-exceedance rate ratio, or the event rate ratio. ``effect`` is
    the relative change compared with ``threshold`` and ``absolute`` the absolute change
    compared with ``floor``; ``signal`` says which way the test points (or none).
    """

    name: str
    statistic: float
    p_worse: float
    p_better: float
    alpha: float
    estimate: float
    low: float
    high: float
    confidence: float
    effect: float
    absolute: float
    threshold: float
    floor: float
    signal: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.name, "statistic": jsonable(self.statistic),
            "p_worse": jsonable(self.p_worse), "p_better": jsonable(self.p_better),
            "alpha": self.alpha,
            "estimate": jsonable(self.estimate),
            "interval": [jsonable(self.low), jsonable(self.high)],
            "confidence": self.confidence,
            "effect": jsonable(self.effect), "absolute": jsonable(self.absolute),
            "threshold": self.threshold, "floor": self.floor,
            "signal": self.signal, **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """The judgement of one window."""

    window: str  # short | long
    start: float
    end: float
    partial: bool  # the history did not reach back the whole window
    outcome: str
    better: bool
    reason: str
    effect_size: float = NAN
    inputs: Mapping[str, Any] = field(default_factory=dict)
    tests: tuple[TestResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window, "start": jsonable(self.start), "end": jsonable(self.end),
            "seconds": jsonable(self.end - self.start), "partial": self.partial,
            "outcome": self.outcome, "better": self.better, "reason": self.reason,
            "effect_size": jsonable(self.effect_size),
            "inputs": jsonable(dict(self.inputs)),
            "tests": [t.to_dict() for t in self.tests],
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one SLI of one service for one comparison, over both windows."""

    namespace: str
    service: str
    sli: str
    comparison: str
    outcome: str
    better: bool
    reason: str
    effect_size: float
    evaluated_at: float
    windows: tuple[WindowVerdict, ...] = ()

    @property
    def value(self) -> float:
        """The ``kpr_verdict`` value: 1 worse, 0 not worse, -1 better, NaN inconclusive."""
        if self.outcome == WORSE:
            return 1.0
        if self.outcome == NOT_WORSE:
            return -1.0 if self.better else 0.0
        return NAN

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace, "service": self.service, "sli": self.sli,
            "comparison": self.comparison, "outcome": self.outcome, "better": self.better,
            "value": jsonable(self.value), "reason": self.reason,
            "effect_size": jsonable(self.effect_size),
            "evaluated_at": jsonable(self.evaluated_at),
            "windows": [w.to_dict() for w in self.windows],
        }


def combine(short: WindowVerdict, long: WindowVerdict) -> tuple[str, bool, str]:
    """Outcome, better flag and reason of a verdict from its two windows.

    Worse needs both windows worse; worse in one window and inconclusive in the other is
    inconclusive (it pages, it never rolls back); worse in only one conclusive window is a
    blip (not worse). Better needs both windows better.
    """
    pair = (short.outcome, long.outcome)
    if pair == (WORSE, WORSE):
        return WORSE, False, f"worse in both windows: {short.reason}"
    if WORSE in pair and INCONCLUSIVE in pair:
        other = long if short.outcome == WORSE else short
        return INCONCLUSIVE, False, (f"worse in the {_other(other.window)} window only; the "
                                     f"{other.window} window is inconclusive: {other.reason}")
    if WORSE in pair:
        bad = short if short.outcome == WORSE else long
        return NOT_WORSE, False, f"worse in the {bad.window} window only ({bad.reason}), not in both"
    if INCONCLUSIVE in pair:
        first = short if short.outcome == INCONCLUSIVE else long
        return INCONCLUSIVE, False, f"{first.window} window: {first.reason}"
    if short.better and long.better:
        return NOT_WORSE, True, f"better in both windows: {short.reason}"
    return NOT_WORSE, False, short.reason


def _other(window: str) -> str:
    return LONG if window == SHORT else SHORT


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats replaced (NaN -> None, inf -> "+Inf"/"-Inf"),
    recursively through dicts, lists and tuples."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
