"""The clock and sleep the demo tests run the demo on: wall time made faster."""

from __future__ import annotations

import asyncio
import time


class FastTime:
    """Wall time ``factor`` times faster: the clock and sleep the demo runs on in tests."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._wall0, self._mono0 = time.time(), time.monotonic()

    def clock(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)
