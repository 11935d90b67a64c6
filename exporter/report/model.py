"""The report model: what the HTML and Markdown renderers show, already computed.

Every measured number is ``float | None``; ``None`` means "no data" (no series, or nothing
to divide by) and is rendered as such, never as zero. Times are seconds since the epoch
(UTC when shown). Label values are kept raw here; escaping is the renderers' job. Pure module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.report.claims_model import ClaimsTable
from exporter.report.data import Query, Window
from exporter.report.verification import PhaseMatrix

# Verdict words (``kpr_verdict``: 1 worse, 0 not worse, -1 better, NaN inconclusive).
WORSE = "worse"
NOT_WORSE = "not worse"
BETTER = "better"
INCONCLUSIVE = "inconclusive"
NO_VERDICT = "no data"

# Comparisons and SLIs as the judge names them (``comparison`` / ``sli`` labels).
CANARY_VS_CONTROL = "canary-vs-control"
AFTER_VS_BASELINE = "after-vs-baseline"
SLI_TITLES = {
    "connect_duration": "handshake latency",
    "connect_failures": "connect failures",
    "drops": "drops",
    "kpr_sensitive_drops": "KPR-sensitive drops",
}


@dataclass(frozen=True, slots=True)
class Cohort:
    """One service's traffic on one datapath within one window."""

    datapath: str
    window: Window
    handshakes: float | None = None  # None: no histogram series at all
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    shares: tuple[float, ...] | None = None  # per-bucket share of handshakes (non-cumulative)
    buckets: tuple[float, ...] | None = None  # per-bucket handshake increases (non-cumulative)
    attempts: float | None = None
    failures: float | None = None
    flows: float | None = None
    drops: float | None = None
    sensitive_drops: float | None = None

    @property
    def failure_ratio(self) -> float | None:
        return _ratio(self.failures, self.attempts)

    @property
    def drop_ratio(self) -> float | None:
        return _ratio(self.drops, self.flows)

    @property
    def sensitive_ratio(self) -> float | None:
        return _ratio(self.sensitive_drops, self.flows)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The frozen pre-switch values of one service (``kpr_baseline_*``)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    drop_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class TestRow:
    """One of the judge's statistical tests, as it came out over the report's window."""

    name: str
    p_worse: float
    p_better: float
    alpha: float
    estimate: float
    low: float
    high: float
    effect: float  # relative change compared with ``threshold``
    absolute: float  # absolute change compared with ``floor`` (seconds or a ratio, ``unit``)
    threshold: float
    floor: float
    signal: str
    unit: str  # "s" | "ratio"
    note: str = ""


# Why a verdict came out as it did (``Evidence.kind``).
WHY_WORSE = "worse"
WHY_BETTER = "better"
WHY_NOT_SIGNIFICANT = "not significant"
WHY_BELOW_FLOOR = "below the floor"
WHY_BELOW_THRESHOLD = "below the threshold"
WHY_TOO_FEW = "too few events"
WHY_NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class Evidence:
    """The judge's own tests re-run on the counts Prometheus holds for the report's window.

    ``why`` is one line: worse (significant and above threshold and floor), better, or what
    kept it from being worse (too few events, not significant with the p-value, below the
    floor or the threshold). ``outcome`` is the word the tests give over ``window``; it can
    differ from the judge's own verdict, which covers the judge's shorter windows.
    """

    kind: str
    why: str
    outcome: str
    reference: str  # what the eBPF side was compared with
    window: Window | None
    effect: float | None = None
    detail: str = ""  # the judge's reason text for this window
    tests: tuple[TestRow, ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()  # (what, value) as shown


@dataclass(frozen=True, slots=True)
class VerdictCell:
    """The judge's current verdict for one (service, SLI, comparison), explained."""

    sli: str
    comparison: str
    word: str
    effect: float | None  # the judge's short-window relative change, if exported
    explanation: str
    evidence: Evidence | None = None

    @property
    def why(self) -> str:
        return self.evidence.why if self.evidence is not None else fmt_no_evidence(self.word)

    @property
    def shown_effect(self) -> tuple[float | None, str]:
        """The effect to show and where it comes from: the judge's exported effect, else for
        a worse verdict the report window's (``"report window"``), else None."""
        if self.effect is not None:
            return self.effect, ""
        if self.word == WORSE and self.evidence is not None and self.evidence.effect is not None:
            return self.evidence.effect, "report window"
        return None, ""


def fmt_no_evidence(word: str) -> str:
    return f"{WHY_NO_DATA}: nothing in the range to test ({word} is the judge's word)"


@dataclass(frozen=True)
class ServiceReport:
    namespace: str
    service: str
    before: Cohort | None  # kube-proxy before the first switch (only when it is in range)
    after: Cohort | None  # eBPF after the first switch (or in the range)
    control: Cohort | None  # kube-proxy at the same time as ``after``
    baseline: Baseline | None
    verdicts: tuple[VerdictCell, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.service}"

    def verdict(self, sli: str, comparison: str) -> VerdictCell | None:
        for cell in self.verdicts:
            if cell.sli == sli and cell.comparison == comparison:
                return cell
        return None

    @property
    def worst(self) -> str:
        words = {cell.word for cell in self.verdicts}
        for word in (WORSE, INCONCLUSIVE, NOT_WORSE, BETTER):
            if word in words:
                return word
        return NO_VERDICT


@dataclass(frozen=True, slots=True)
class PhaseSegment:
    phase: str | None  # None: no phase series in that stretch
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Lane:
    """One row of the timeline chart: a node's datapath (or the phase) over time."""

    name: str
    segments: tuple[PhaseSegment, ...]  # ``phase`` holds the datapath for node lanes


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at a point in time: a node switch or a rollback."""

    at: float
    kind: str  # "switch" | "switch-back" | "rollback"
    text: str
    node: str = ""


@dataclass(frozen=True, slots=True)
class NodeState:
    node: str
    datapath: str | None  # at the end of the range
    source: str | None
    switched_at: float | None
    agent_uptime: float | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """One plotted series: ``(timestamp, value)`` points (NaN gaps dropped)."""

    label: str
    points: tuple[tuple[float, float], ...]
    datapath: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """A measured change of one service's SLI over the report's windows."""

    namespace: str
    service: str
    metric: str  # "handshake p99", "drop ratio", ...
    comparison: str
    before: float
    after: float
    relative: float | None  # after / before - 1; None when before is 0
    unit: str  # "s" | "ratio"
    verdict: str


@dataclass(frozen=True, slots=True)
class Count:
    """A count of events over the range, e.g. drops of one reason on one datapath."""

    label: str
    datapath: str
    value: float
    sensitive: bool = False


@dataclass(frozen=True)
class OwnerRow:
    """Who owns one object a switch or rollback writes (or whether a rollback is durable)."""

    object: str
    owner: str
    owner_name: str
    note: str = ""


@dataclass(frozen=True)
class Report:
    prometheus: str
    start: float
    end: float
    generated_at: float
    windows: tuple[Window, ...]
    phase: str | None
    phases: tuple[PhaseSegment, ...]
    lanes: tuple[Lane, ...]
    events: tuple[Event, ...]
    nodes: tuple[NodeState, ...]
    services: tuple[ServiceReport, ...]
    bounds: tuple[float, ...]  # handshake histogram upper bounds (finite ones)
    regressions: tuple[Change, ...]
    improvements: tuple[Change, ...]
    service_drop_rates: tuple[Line, ...]
    node_drop_rates: tuple[Line, ...]
    handshake_p99: tuple[Line, ...]
    service_drop_counts: tuple[Count, ...] | None  # None: no series; (): no drop in range
    node_drop_counts: tuple[Count, ...] | None
    hubble_uptime: float | None
    lost_events: tuple[Count, ...] | None
    rollbacks: tuple[Count, ...] | None  # None: no kpr_rollbacks_total series
    verdict_counts: dict[str, int] = field(default_factory=dict)
    queries: tuple[Query, ...] = ()
    notes: tuple[str, ...] = ()
    owners: tuple[OwnerRow, ...] | None = None  # None: no kpr_config_owner_info series
    persisted: tuple[OwnerRow, ...] | None = None  # kpr_rollback_persisted; None: none
    title: str = ""  # --title; the renderers fall back to their own heading
    change_id: str = ""  # --change-id: the change ticket this report belongs to
    verification: tuple[PhaseMatrix, ...] = ()  # the probes' matrix per phase; (): none
    claims: ClaimsTable | None = None  # claims vs measured; None: not computed

    @property
    def rollback_total(self) -> float | None:
        return None if self.rollbacks is None else sum(c.value for c in self.rollbacks)

    @property
    def findings(self) -> tuple[tuple[ServiceReport, VerdictCell], ...]:
        """Worse and better verdicts, worse first: what the reader must see."""
        return self._cells(lambda cell: cell.word in (WORSE, BETTER))

    @property
    def other_verdicts(self) -> tuple[tuple[ServiceReport, VerdictCell], ...]:
        """Not worse and inconclusive verdicts, folded below the findings."""
        return self._cells(lambda cell: cell.word not in (WORSE, BETTER))

    def _cells(self, keep: Callable[[VerdictCell], bool]) -> tuple[
            tuple[ServiceReport, VerdictCell], ...]:
        order = {WORSE: 0, BETTER: 1, INCONCLUSIVE: 2, NOT_WORSE: 3}
        found = [(s, c) for s in self.services for c in s.verdicts if keep(c)]
        return tuple(sorted(found, key=lambda sc: (order.get(sc[1].word, 4), sc[0].name)))

    @property
    def has_verdicts(self) -> bool:
        return any(s.verdicts for s in self.services)

    @property
    def has_data(self) -> bool:
        return bool(self.phases and any(s.phase for s in self.phases)) or bool(
            self.services or self.nodes or self.service_drop_rates or self.node_drop_rates
            or self.events or self.verification)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator
