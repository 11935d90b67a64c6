"""Histograms read back from exposition samples, bucket by bucket, as the target reported them.

``histograms(series, base)`` groups the ``<base>_bucket`` / ``_sum`` / ``_count`` samples
of one family by their labels (``le`` aside) into ``Histogram`` values. Nothing is
accumulated or re-bucketed here: the counts are the target's own cumulative counters, so
``rate()`` and ``histogram_quantile()`` work on a re-export exactly as on the original.

A histogram is valid when it has a ``+Inf`` bucket, its bounds are numbers, its
cumulative counts never decrease with the bound, and its sum is a number. An invalid one
raises ``InvalidHistogram`` (the caller decides whether that fails the whole scrape), or
with ``skip_invalid`` is left out.
Pure module: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]


class InvalidHistogram(ValueError):
    """A family's samples do not form a cumulative histogram."""


@dataclass(frozen=True, slots=True)
class Histogram:
    """One histogram series: its labels (without ``le``), cumulative buckets, sum."""

    labels: Labels
    buckets: tuple[tuple[str, float], ...]  # (le as the target wrote it, cumulative count)
    sum: float

    @property
    def count(self) -> float:
        return self.buckets[-1][1]

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


def histograms(series: Mapping[tuple[str, Labels], float], base: str, *,
               skip_invalid: bool = False) -> tuple[Histogram, ...]:
    """Every histogram of family ``base`` in ``series``, sorted by labels."""
    buckets: dict[Labels, list[tuple[float, str, float]]] = {}
    sums: dict[Labels, float] = {}
    for (name, labels), value in series.items():
        if name == base + "_bucket":
            rest = tuple(p for p in labels if p[0] != "le")
            le = dict(labels).get("le")
            if le is None:
                raise InvalidHistogram(f"{base}: a bucket without an le label {dict(labels)}")
            buckets.setdefault(rest, []).append((_bound(base, le), le, value))
        elif name == base + "_sum":
            sums[labels] = value
    found = []
    for labels, rows in sorted(buckets.items()):
        rows.sort()
        why = _problem(rows, sums.get(labels, math.nan))
        if why:
            if skip_invalid:
                continue
            raise InvalidHistogram(f"{base}{_shown(labels)}: {why}")
        found.append(Histogram(labels, tuple((le, count) for _, le, count in rows),
                               sums[labels]))
    return tuple(found)


def _problem(rows: list[tuple[float, str, float]], total: float) -> str:
    """Why sorted bucket rows and a sum are not a valid histogram ("" when they are)."""
    if rows[-1][0] != math.inf:
        return "no +Inf bucket"
    counts = [count for _, _, count in rows]
    if any(math.isnan(c) or c < 0 for c in counts) or any(
            b < a for a, b in zip(counts, counts[1:])):
        return "bucket counts are not cumulative"
    if math.isnan(total):
        return "no sum"
    return ""


def _bound(base: str, le: str) -> float:
    try:
        bound = float(le)
    except ValueError:
        raise InvalidHistogram(f"{base}: bucket bound le={le!r} is not a number") from None
    if math.isnan(bound):
        raise InvalidHistogram(f"{base}: bucket bound le={le!r} is not a number")
    return bound


def _shown(labels: Labels) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else ""
