"""The running baseline: the pure keeper plus its store (load at start, save when frozen).

The composition root calls ``start()`` once, then ``observe(snapshot, phase)`` after every
SLI snapshot. A baseline frozen while the store is failing stays in memory and is saved
again on the next ``observe`` until the store takes it; the failure is logged, never fatal.
Every ``reload_seconds`` the store is read again, so ``kpr-exporter baseline capture`` or
``clear`` run against the same store reach a running exporter without a restart.

With a ``remote`` window reader (``PrometheusEvidence.window_at``: node mode, or whenever
the judge reads Prometheus) the pre-switch window is read from there at the switch, and
read again with every snapshot until it could be.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.model import Baseline
from exporter.baseline.store import BaselineStore, StoreError
from exporter.roles import Clock
from exporter.judge.history import Window
from exporter.snapshot import SliSnapshot

#: Reads the counts of the ``seconds`` before ``end`` (``PrometheusEvidence.window_at``).
RemoteWindow = Callable[[float, float], Awaitable[Window]]

log = logging.getLogger(__name__)


class BaselineService:
    """Keeps the frozen baseline in memory and in its store."""

    def __init__(self, keeper: BaselineKeeper, store: BaselineStore, *, clock: Clock,
                 reload_seconds: float = 60.0, remote: RemoteWindow | None = None) -> None:
        self.keeper = keeper
        self.store = store
        self._clock = clock
        self._reload_seconds = reload_seconds
        self._loaded_at = -math.inf
        self._unsaved: Baseline | None = None
        #: Node mode: the pre-switch window comes from Prometheus (``window_at``), not from
        #: this process's snapshots; ``_due`` is the window end still to be fetched.
        self._remote = remote
        self._due: float | None = None

    @property
    def baseline(self) -> Baseline | None:
        return self.keeper.baseline

    async def start(self) -> Baseline | None:
        """Load the persisted baseline, if any (a restart keeps it)."""
        loaded = await self.store.load()
        self._loaded_at = self._clock()
        self.keeper.load(loaded)
        if loaded is not None:
            log.info("baseline loaded", extra={"kv": {
                "store": self.store.describe(), "services": len(loaded.services),
                "captured_at": loaded.captured_at}})
        return loaded

    async def observe(self, snapshot: SliSnapshot, phase: str) -> Baseline | None:
        """Feed one snapshot; returns the baseline if it was frozen now."""
        if self._unsaved is None and self._clock() - self._loaded_at >= self._reload_seconds:
            await self._reload()
        if self._remote is None:
            frozen = self.keeper.observe(snapshot, phase)
        else:
            frozen = await self._observe_remote(snapshot.time, phase)
        if frozen is not None:
            log.info("baseline frozen", extra={"kv": {
                "services": len(frozen.services), "window_start": frozen.window_start,
                "window_end": frozen.window_end}})
            self._unsaved = frozen
        if self._unsaved is not None:
            await self._save_pending()
        return frozen

    async def _observe_remote(self, now: float, phase: str) -> Baseline | None:
        """The phase rules with the window read from Prometheus; a failed read is retried
        with every snapshot until it works (the switch is never forgotten)."""
        due = self.keeper.due(phase, now)
        if due is not None:
            self._due = due
        if self._due is None or self._remote is None or self.keeper.baseline is not None:
            self._due = None
            return None
        seconds = self.keeper.settings.window_seconds
        try:
            window = await self._remote(self._due, seconds)
        except Exception as exc:  # noqa: BLE001 - retried with the next snapshot
            self.keeper.status = f"the pre-switch window could not be read yet: {exc}"
            log.warning("baseline not frozen yet: the pre-switch window could not be read; "
                        "retrying with the next snapshot",
                        extra={"kv": {"window_end": self._due, "error": str(exc)}})
            return None
        end, self._due = self._due, None
        return self.keeper.freeze(window, f"the first switch (window read from Prometheus, "
                                          f"ending {end:.0f})")

    async def capture(self, later: SliSnapshot, earlier: SliSnapshot | None = None) -> Baseline:
        """Capture by hand and persist (errors propagate: a person is waiting)."""
        baseline = self.keeper.capture(later, earlier)
        await self.store.save(baseline)
        self._unsaved = None
        return baseline

    async def clear(self) -> None:
        await self.store.clear()
        self.keeper.clear()
        self._unsaved = None

    async def _reload(self) -> None:
        try:
            stored = await self.store.load()
        except StoreError as exc:
            log.warning("cannot re-read the baseline store; keeping the baseline in memory",
                        extra={"kv": {"store": self.store.describe(), "error": str(exc)}})
            return
        finally:
            self._loaded_at = self._clock()
        current = self.keeper.baseline
        if stored is None and current is not None:
            log.info("baseline cleared in the store", extra={"kv": {"store": self.store.describe()}})
            self.keeper.clear()
        elif stored is not None and stored != current:
            self.keeper.load(stored)

    async def _save_pending(self) -> None:
        pending = self._unsaved
        if pending is None or pending is not self.keeper.baseline:
            self._unsaved = None
            return
        try:
            await self.store.save(pending)
        except StoreError as exc:
            log.error("baseline not saved yet; retrying with the next snapshot",
                      extra={"kv": {"store": self.store.describe(), "error": str(exc)}})
            return
        self._unsaved = None
