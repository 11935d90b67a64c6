"""The running baseline: the pure keeper plus its store (load at start, save when frozen).

The composition root calls ``start()`` once, then ``observe(snapshot, phase)`` after every
SLI snapshot. A baseline frozen while the store is failing stays in memory and is saved
again on the next ``observe`` until the store takes it; the failure is logged, never fatal.
Every ``reload_seconds`` the store is read again, so ``kpr-exporter baseline capture`` or
``clear`` run against the same store reach a running exporter without a restart.
"""

from __future__ import annotations

import logging
import math

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.model import Baseline
from exporter.baseline.store import BaselineStore, StoreError
from exporter.roles import Clock
from exporter.snapshot import SliSnapshot

log = logging.getLogger(__name__)


class BaselineService:
    """Keeps the frozen baseline in memory and in its store."""

    def __init__(self, keeper: BaselineKeeper, store: BaselineStore, *, clock: Clock,
                 reload_seconds: float = 60.0) -> None:
        self.keeper = keeper
        self.store = store
        self._clock = clock
        self._reload_seconds = reload_seconds
        self._loaded_at = -math.inf
        self._unsaved: Baseline | None = None

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
        frozen = self.keeper.observe(snapshot, phase)
        if frozen is not None:
            log.info("baseline frozen", extra={"kv": {
                "services": len(frozen.services), "window_start": frozen.window_start,
                "window_end": frozen.window_end}})
            self._unsaved = frozen
        if self._unsaved is not None:
            await self._save_pending()
        return frozen

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
