"""Compact snapshot history and the windows the judge and the baseline read from it.

An ``SliSnapshot`` holds nested dicts per service; keeping dozens of them for a 30 minute
window would cost hundreds of megabytes at 2,000 services. A ``CompactSnapshot`` keeps only
what judging needs, one int64 row per (namespace, service, datapath): the handshake bucket
counts, connection attempts, established handshakes, flows, drops and KPR-sensitive drops.
``SnapshotHistory`` keeps them at full resolution for the recent past and thins older ones,
so a window edge is exact for the short window and within one ``resolution`` for the long
one. A ``Window`` is the difference of two compact snapshots; a ``Cohort`` is one service's
row of it. Pure module: numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from exporter.model import KPR_SENSITIVE_DROP_REASONS
from exporter.snapshot import ServiceSli, SliKey, SliSnapshot

ESTABLISHED = "established"

# Columns after the bucket counts.
_ATTEMPTS, _ESTABLISHED, _FLOWS, _DROPS, _KPR_DROPS = range(5)
_EXTRA = 5


@dataclass(frozen=True, slots=True)
class Cohort:
    """One side of a comparison: a service's counts in a window (or in the frozen baseline)."""

    connect_counts: tuple[int, ...]  # non-cumulative, last is +Inf
    attempts: int = 0  # handshakes started (established + refused + timeout)
    established: int = 0
    flows: int = 0
    drops: int = 0
    kpr_drops: int = 0  # drops with a KPR-sensitive reason

    @property
    def connections(self) -> int:
        """Handshakes with a measured duration."""
        return sum(self.connect_counts)

    @property
    def failures(self) -> int:
        """Attempts that did not establish (refused or timed out)."""
        return max(0, self.attempts - self.established)

    @property
    def flow_exposure(self) -> int:
        """Denominator of drop ratios (never below the drops themselves)."""
        return max(self.flows, self.drops)

    def plus(self, other: Cohort) -> Cohort:
        """Both cohorts together (same bucket layout)."""
        return Cohort(
            tuple(a + b for a, b in zip(self.connect_counts, other.connect_counts)),
            self.attempts + other.attempts, self.established + other.established,
            self.flows + other.flows, self.drops + other.drops, self.kpr_drops + other.kpr_drops,
        )

    @classmethod
    def from_sli(cls, sli: ServiceSli, width: int) -> Cohort:
        """The cohort of one ``ServiceSli`` (``width`` buckets including +Inf)."""
        row = _row_of(sli, width)
        return cls(row[:width], *row[width:])


def _row_of(sli: ServiceSli, width: int) -> tuple[int, ...]:
    counts = tuple(sli.connect_counts) if len(sli.connect_counts) == width else (0,) * width
    attempts = sli.attempts
    drops = sli.drops
    return (*counts, sum(attempts.values()), attempts.get(ESTABLISHED, 0), sli.flows,
            sum(drops.values()),
            sum(v for r, v in drops.items() if r in KPR_SENSITIVE_DROP_REASONS))


class CompactSnapshot:
    """Cumulative counts of every (namespace, service, datapath) at ``time``, one row each."""

    __slots__ = ("time", "bounds", "index", "data")

    def __init__(self, time: float, bounds: tuple[float, ...], index: dict[SliKey, int],
                 data: np.ndarray) -> None:
        self.time = time
        self.bounds = bounds
        self.index = index
        self.data = data

    @classmethod
    def of(cls, snapshot: SliSnapshot,
           keep: Callable[[SliKey], bool] | None = None) -> CompactSnapshot:
        width = len(snapshot.connect_bounds) + 1
        keys = [k for k in snapshot.services if keep is None or keep(k)]
        data = np.zeros((len(keys), width + _EXTRA), dtype=np.int64)
        for row, key in enumerate(keys):
            data[row] = _row_of(snapshot.services[key], width)
        index = {SliKey(*k): i for i, k in enumerate(keys)}
        return cls(snapshot.time, tuple(snapshot.connect_bounds), index, data)

    def minus(self, earlier: CompactSnapshot | None) -> Window:
        """The window from ``earlier`` to this snapshot. A row whose counts went down (the
        pipeline restarted or dropped an idle service) counts from zero, like ``rate()``."""
        if earlier is None or earlier.bounds != self.bounds:
            start = self.time if earlier is None else earlier.time
            return Window(start, self.time, self.bounds, self.index, self.data.copy())
        rows = np.fromiter((earlier.index.get(k, -1) for k in self.index), dtype=np.int64,
                           count=len(self.index))
        before = np.zeros_like(self.data)
        present = rows >= 0
        if present.any():
            before[present] = earlier.data[rows[present]]
        diff = self.data - before
        reset = (diff < 0).any(axis=1)
        if reset.any():
            diff[reset] = self.data[reset]
        return Window(earlier.time, self.time, self.bounds, self.index, diff)


@dataclass(frozen=True, slots=True)
class Window:
    """Counts accumulated between ``start`` and ``end`` (epoch seconds)."""

    start: float
    end: float
    bounds: tuple[float, ...]
    index: dict[SliKey, int]
    data: np.ndarray
    partial: bool = False  # the history did not reach back as far as asked

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def keys(self) -> Iterator[SliKey]:
        return iter(self.index)

    @classmethod
    def of_cohorts(cls, start: float, end: float, bounds: tuple[float, ...],
                   cohorts: Mapping[SliKey, Cohort], partial: bool = False) -> Window:
        """A window holding ``cohorts`` (each with ``len(bounds) + 1`` bucket counts)."""
        width = len(bounds) + 1
        data = np.zeros((len(cohorts), width + _EXTRA), dtype=np.int64)
        index: dict[SliKey, int] = {}
        for row, (key, c) in enumerate(cohorts.items()):
            if len(c.connect_counts) != width:
                raise ValueError(f"{key}: {len(c.connect_counts)} buckets, expected {width}")
            data[row] = (*c.connect_counts, c.attempts, c.established, c.flows, c.drops,
                         c.kpr_drops)
            index[SliKey(*key)] = row
        return cls(start, end, bounds, index, data, partial)

    def cohort(self, key: SliKey | tuple[str, str, str]) -> Cohort | None:
        row = self.index.get(key)  # type: ignore[arg-type]
        if row is None:
            return None
        values = self.data[row].tolist()
        width = len(self.bounds) + 1
        return Cohort(tuple(values[:width]), *values[width:])


class SnapshotHistory:
    """Compact snapshots, newest last: all of them within ``fine_seconds`` of the newest,
    one per ``resolution`` seconds older than that, none older than needed for a
    ``max_age`` window (the newest one at or before that edge is kept)."""

    def __init__(self, max_age: float, *, fine_seconds: float = 0.0, resolution: float = 0.0,
                 keep: Callable[[SliKey], bool] | None = None) -> None:
        self.max_age = max_age
        self.fine_seconds = fine_seconds
        self.resolution = resolution
        self._keep = keep
        self._items: list[CompactSnapshot] = []

    def __len__(self) -> int:
        return len(self._items)

    @property
    def newest(self) -> CompactSnapshot | None:
        return self._items[-1] if self._items else None

    @property
    def oldest(self) -> CompactSnapshot | None:
        return self._items[0] if self._items else None

    def times(self) -> set[float]:
        """The times of the snapshots kept."""
        return {item.time for item in self._items}

    def clear(self) -> None:
        self._items.clear()

    def add(self, snapshot: SliSnapshot) -> bool:
        """Keep ``snapshot``; ignored (False) unless newer than the newest kept."""
        if self._items and snapshot.time <= self._items[-1].time:
            return False
        self._items.append(CompactSnapshot.of(snapshot, self._keep))
        self._prune()
        return True

    def window(self, seconds: float) -> Window | None:
        """The newest snapshot minus the newest one at least ``seconds`` older (or the
        oldest, then ``partial``); None with fewer than two snapshots."""
        if len(self._items) < 2:
            return None
        newest = self._items[-1]
        edge = newest.time - seconds
        earlier = None
        for item in reversed(self._items[:-1]):
            if item.time <= edge:
                earlier = item
                break
        partial = earlier is None
        if earlier is None:
            earlier = self._items[0]
        window = newest.minus(earlier)
        return Window(window.start, window.end, window.bounds, window.index, window.data, partial)

    def _prune(self) -> None:
        items = self._items
        newest = items[-1].time
        cutoff = newest - self.max_age
        first = 0
        for i, item in enumerate(items):
            if item.time <= cutoff:
                first = i  # the newest one at or before the edge stays
        kept: list[CompactSnapshot] = []
        fine_edge = newest - self.fine_seconds
        for item in items[first:]:
            if (kept and item.time < fine_edge and item is not items[-1]
                    and item.time - kept[-1].time < self.resolution):
                continue
            kept.append(item)
        self._items = kept
