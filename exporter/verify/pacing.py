"""Rate pacing of the probes' own traffic (pure: time comes from an injected clock/sleep).

``paced(count, rate, clock, sleep)`` yields ``0 .. count - 1``, the i-th no earlier than
``start + i / rate`` and no two closer than ``1 / rate``: never faster than ``rate`` per
second, whatever the work between two ticks costs (slow work only delays later ticks;
nothing is made up in a burst after a stall).
``budget(rate, seconds)`` is how many ticks fit a window.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


def budget(rate: float, seconds: float) -> int:
    """Ticks at ``rate`` per second in a window of ``seconds`` (the first at its start)."""
    if rate <= 0 or seconds <= 0:
        return 0
    return max(1, math.floor(rate * seconds + 1e-9))


async def paced(count: int, rate: float, clock: Clock, sleep: Sleep) -> AsyncIterator[int]:
    """``count`` ticks, no two closer than ``1 / rate`` seconds: tick ``i`` waits until
    ``1 / rate`` after tick ``i - 1`` was yielded (so at or after ``start + i / rate``).
    The time the caller spends between ticks only ever delays the following ones."""
    if rate <= 0:
        raise ValueError(f"rate must be above 0, got {rate}")
    step = 1.0 / rate
    earliest = clock()
    for i in range(count):
        wait = earliest - clock()
        if wait > 0:
            await sleep(wait)
        earliest = clock() + step
        yield i
