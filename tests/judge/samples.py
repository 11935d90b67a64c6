"""Hand-made SLI data for the judge and baseline tests: histograms, ServiceSli, snapshots."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

import numpy as np

from exporter.snapshot import ServiceSli, SliKey, SliSnapshot

#: The handshake buckets of docs/metrics.md (seconds, +Inf implicit).
BOUNDS = (0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.1, 0.5, 1.5, 3.5, 7.5)
WIDTH = len(BOUNDS) + 1


def hist(samples: Iterable[float], bounds: tuple[float, ...] = BOUNDS) -> tuple[int, ...]:
    """Non-cumulative bucket counts (``le`` semantics: a value on a bound is in that bucket)."""
    counts = [0] * (len(bounds) + 1)
    for value in samples:
        counts[bisect.bisect_left(bounds, value)] += 1
    return tuple(counts)


def lognormal(seed: int, n: int, median: float = 0.0008, sigma: float = 0.69,
              scale: float = 1.0) -> tuple[int, ...]:
    rng = np.random.default_rng(seed)
    return hist(rng.lognormal(np.log(median * scale), sigma, n))


def counts_at(n: int, seconds: float) -> tuple[int, ...]:
    """``n`` handshakes all in the bucket holding ``seconds``."""
    return tuple(c * n for c in hist([seconds]))


def add(*parts: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sum(col) for col in zip(*parts))


def sli(connect: tuple[int, ...] = (0,) * WIDTH, *, refused: int = 0, timeout: int = 0,
        flows: int | None = None, drops: Mapping[str, int] | None = None) -> ServiceSli:
    """A ServiceSli whose established attempts equal its measured handshakes."""
    established = sum(connect)
    attempts = {"established": established}
    if refused:
        attempts["refused"] = refused
    if timeout:
        attempts["timeout"] = timeout
    drop_map = dict(drops or {})
    return ServiceSli(connect_counts=connect, connect_sum=0.0, attempts=attempts,
                      flows=flows if flows is not None else established + sum(drop_map.values()),
                      drops=drop_map)


def snap(time: float, services: Mapping[tuple[str, str, str], ServiceSli],
         bounds: tuple[float, ...] = BOUNDS) -> SliSnapshot:
    return SliSnapshot(time=time, connect_bounds=bounds, request_bounds=(),
                       services={SliKey(*k): v for k, v in services.items()})


def plus(a: ServiceSli, b: ServiceSli) -> ServiceSli:
    """Cumulative counts: ``a`` then ``b`` more."""
    def merge(x: Mapping[str, int], y: Mapping[str, int]) -> dict[str, int]:
        return {k: x.get(k, 0) + y.get(k, 0) for k in {*x, *y}}
    return ServiceSli(connect_counts=add(a.connect_counts, b.connect_counts),
                      connect_sum=a.connect_sum + b.connect_sum,
                      attempts=merge(a.attempts, b.attempts), flows=a.flows + b.flows,
                      drops=merge(a.drops, b.drops))


class Feed:
    """Builds cumulative snapshots step by step: ``step(dt, {key: increment})``."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.time = start
        self.totals: dict[tuple[str, str, str], ServiceSli] = {}

    def step(self, dt: float, increments: Mapping[tuple[str, str, str], ServiceSli]) -> SliSnapshot:
        self.time += dt
        for key, inc in increments.items():
            self.totals[key] = plus(self.totals[key], inc) if key in self.totals else inc
        return snap(self.time, dict(self.totals))
