"""What a check runs with: the probing node, its two dialers, the targets and the limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from exporter.verify import results as r
from exporter.verify.net import Dialer, Outcome
from exporter.verify.targets import Endpoint, NodeTarget, Targets, show


async def interval_ticks(count: int, interval: float) -> AsyncIterator[int]:
    """``count`` ticks, ``interval`` seconds apart (the first at once)."""
    for i in range(count):
        if i:
            await asyncio.sleep(interval)
        yield i


@dataclass(frozen=True)
class Limits:
    """Time limits and sizes, injected so tests run them short.

    ``ticks`` drives the long-lived connection's pings: each tick is one ping. The default
    sends ``pings`` pings ``ping_interval`` seconds apart; tests pass their own iterator.
    """

    timeout: float = 2.0
    affinity_requests: int = 8
    pings: int = 3
    ping_interval: float = 5.0
    ticks: Callable[[], AsyncIterator[int]] | None = None

    def ping_ticks(self) -> AsyncIterator[int]:
        if self.ticks is not None:
            return self.ticks()
        return interval_ticks(self.pings, self.ping_interval)


@dataclass(frozen=True)
class ProbeContext:
    """A probe on ``node``: ``host`` binds the node's address, ``pod`` its pod's.
    ``sample`` is this round's nodes, own node first (``exporter.verify.sampling``).
    ``datapath_now``, when given, tells the node's datapath at the time a result is made
    (a long-lived connection can outlast a switch); else ``datapath`` holds."""

    node: str
    datapath: str
    host: Dialer
    pod: Dialer
    targets: Targets
    sample: tuple[str, ...]
    limits: Limits = field(default_factory=Limits)
    datapath_now: Callable[[], str] | None = None

    def sampled(self, *, remote_only: bool = False) -> list[NodeTarget]:
        names = self.sample[1:] if remote_only else self.sample
        return [self.targets.nodes[n] for n in names if n in self.targets.nodes]

    def result(self, check: str, endpoint: Endpoint, ok: bool, expected: str,
               observed: Outcome | str, *, target: str = "") -> r.CheckResult:
        seen = observed if isinstance(observed, str) else observed.describe()
        took = None if isinstance(observed, str) else observed.connect_seconds
        served = self.targets.nodes.get(target) if target else None
        datapath = self.datapath_now() if self.datapath_now else self.datapath
        return r.CheckResult(check, self.node, datapath, target, show(endpoint),
                             r.PASS if ok else r.FAIL, expected, seen, took,
                             served.datapath if served else "")
