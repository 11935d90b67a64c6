"""The pacing of the probes' own traffic, on a virtual clock: ticks at their slots, never two
closer than 1 / rate, whatever the work between them costs, and no burst after a stall."""

from __future__ import annotations

import pytest

from exporter.verify.pacing import budget, paced
from tests.rollback.cluster import VirtualTime


def test_the_budget_of_a_window() -> None:
    assert budget(5.0, 5.0) == 25
    assert budget(0.5, 3.0) == 1
    assert budget(3.0, 0.1) == 1  # a window shorter than a step still holds its first tick
    assert budget(0.0, 5.0) == 0 and budget(5.0, 0.0) == 0


async def test_ticks_come_at_their_slots_when_the_work_costs_nothing() -> None:
    time = VirtualTime()
    start = time.now
    seen = [time.now async for _ in paced(10, 4.0, time, time.sleep)]
    assert seen == pytest.approx([start + i / 4.0 for i in range(10)])


async def test_slow_work_and_a_stall_never_bring_two_ticks_closer_than_a_step() -> None:
    time = VirtualTime()
    seen = []
    async for i in paced(20, 10.0, time, time.sleep):
        seen.append(time.now)
        time.now += 0.03 if i != 5 else 2.0  # the work; tick 5's takes 2 s (a stall)
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    assert len(gaps) == 19
    assert min(gaps) >= 0.1 - 1e-6  # never faster than the rate, not even to catch up
    assert gaps[5] == pytest.approx(2.0)  # the stall only delays what follows


async def test_a_rate_of_zero_is_refused() -> None:
    time = VirtualTime()
    with pytest.raises(ValueError, match="rate must be above 0"):
        async for _ in paced(3, 0.0, time, time.sleep):
            pass
