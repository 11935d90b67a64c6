"""Plain data the query layer hands to the assembly: samples, series, windows, raw results.

Nothing here knows HTTP. ``Sample`` is one element of an instant vector, ``Series`` one
element of a range matrix; values are floats exactly as Prometheus sent them (``NaN`` and
infinities included). A query that matched nothing is an empty tuple, which the assembly
shows as "no data", never as zero. Pure module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant-query result."""

    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range-query result: ``(timestamp, value)`` pairs in time order."""

    labels: Labels
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of the report range the before/after numbers are computed over."""

    name: str  # "before" | "after" | "range"; the judge's: "short" | "long"
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Query:
    """A query as it was sent, for the report's method section."""

    name: str
    expr: str
    kind: str  # "instant" | "range"
    at: float = 0.0  # instant queries: evaluation time
    window: str = ""  # the window it belongs to, if any


@dataclass(frozen=True)
class RawData:
    """Everything the query layer fetched for one report.

    ``series`` holds range results and ``samples`` instant results, both keyed by the query
    name (window queries are keyed ``"<window>:<name>"``).
    """

    start: float
    end: float
    step: float
    rate_window: float
    windows: tuple[Window, ...]
    series: Mapping[str, tuple[Series, ...]] = field(default_factory=dict)
    samples: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)
    queries: tuple[Query, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the judge's short and long windows ending at ``end`` (evidence only; not in the tables)
    judge_windows: tuple[Window, ...] = ()
    #: one window per migration phase with its probe results (``"probe:<phase>"`` samples)
    probe_windows: tuple[Window, ...] = ()
