"""The ``kpr-exporter probe`` loop: a ``Probe`` run every interval from its own node.

Each round re-reads the targets (a target file mounted from a ConfigMap changes under the
probe, and so do the nodes' datapaths). Targets that cannot be used (unreadable, invalid,
or without this probe's node) are logged and counted in ``kpr_probe_target_errors_total``;
the probe keeps its last good targets and keeps running. Time comes from an injected
wall clock and ``sleep``, so tests drive rounds without waiting. With the load option
(``load_runner``), each round ends with its paced connections and stream to the echo's ClusterIP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from exporter.verify import matrix
from exporter.verify import results as r
from exporter.verify.checks import Limits
from exporter.verify.load import LoadRunner
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.verify.net import Dialer
from exporter.verify.probe import Probe
from exporter.verify.sampling import rounds_to_full_coverage
from exporter.verify.targetfile import TargetFileError
from exporter.verify.targets import ExtraService, Targets

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]
ListExtra = Callable[[], Awaitable[tuple[ExtraService, ...]]]


@dataclass
class ProbeLoop:
    """Rounds of ``checks`` from ``node`` on targets ``load`` returns, ``interval`` apart."""

    node: str
    host: Dialer
    pod: Dialer
    load: Callable[[], Targets]
    metrics: ProbeMetrics
    status: ProbeStatus
    interval: float = 30.0
    k: int = 3
    checks: tuple[str, ...] = r.CHECKS
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.time
    sleep: Sleep = asyncio.sleep
    current: Targets | None = None
    #: Lists the user's Services each round (``exporter.verify.extra``); None: off.
    extra: ListExtra | None = None
    services: tuple[ExtraService, ...] = ()
    #: The load option (``exporter.verify.load``); None: off.
    load_runner: LoadRunner | None = None
    #: The programming-latency chase (``exporter.verify.programming_watch.SliceFeed``),
    #: run next to the rounds by ``serve``; None: off.
    programming: Any = None

    def __post_init__(self) -> None:
        self.probe = Probe(self.node, self.host, self.pod, targets=self._targets,
                           datapath=self._datapath, k=self.k, limits=self.limits,
                           metrics=self.metrics)

    def _targets(self) -> Targets:
        assert self.current is not None
        return self.current

    def _datapath(self) -> str:
        return self._targets().nodes[self.node].datapath

    def datapath_now(self) -> str:
        """This node's datapath in the current targets."""
        return self._datapath()

    def _refresh(self) -> bool:
        """Load the targets; False when there are no usable ones (counted, logged)."""
        try:
            targets = self.load()
            if self.node not in targets.nodes:
                raise TargetFileError([f"node {self.node!r} is not among the "
                                       f"{len(targets.nodes)} nodes of the targets"])
        except TargetFileError as exc:
            self.status.target_errors += 1
            kept = "keeping the last good targets" if self.current else "no targets yet"
            log.error("cannot use the targets (%s): %s", kept, exc)
            return self.current is not None
        self.current = targets
        return True

    async def _refresh_extra(self) -> None:
        """List the user's Services; on an error (counted, logged) keep the last good list."""
        from exporter.verify.extra import ExtraServicesError

        assert self.extra is not None and self.current is not None
        try:
            self.services = await self.extra()
        except ExtraServicesError as exc:
            self.status.target_errors += 1
            log.error("%s (keeping the last good %d target(s))", exc, len(self.services))
        self.current = replace(self.current, extra=self.services)

    async def round(self) -> list[r.CheckResult]:
        """One round; no results when there are no usable targets."""
        if not self._refresh():
            return []
        if self.extra is not None:
            await self._refresh_extra()
        targets = self._targets()
        found = await self.probe.run_round(self.checks)
        self.status.round_done(self.clock(), rounds_to_full_coverage(len(targets.nodes), self.k),
                               {key: why for key, why in matrix.not_applicable(targets).items()
                                if key[0] in self.checks},
                               {name: n.datapath for name, n in targets.nodes.items()})
        if self.load_runner is not None:
            await self.load_runner.run(self.node, self._datapath, self.pod, targets.cluster_ip)
        return found

    async def run(self) -> None:
        """Rounds until cancelled, each starting ``interval`` after the previous one
        started (at once when a round took longer)."""
        while True:
            started = time.monotonic()
            try:
                await self.round()
            except Exception:  # a bug must not end the probe: logged, next round runs
                log.exception("probe round on %s failed", self.node)
            await self.sleep(max(0.0, self.interval - (time.monotonic() - started)))
