"""``cancel_until_done`` ends a task that swallowed a cancellation, as Python 3.11's
``wait_for`` can, and reports the errors of tasks that had died."""

from __future__ import annotations

import asyncio

import pytest

from exporter.tasks import cancel_until_done


async def _swallows_the_first_cancel(started: asyncio.Event) -> None:
    swallowed = False
    while True:
        try:
            started.set()
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed = True  # what wait_for on 3.11 can do: the loop goes on


async def test_a_swallowed_cancel_is_repeated_until_the_task_ends() -> None:
    started = asyncio.Event()
    task = asyncio.ensure_future(_swallows_the_first_cancel(started))
    await started.wait()
    task.cancel()
    with pytest.raises(TimeoutError):  # one cancel is not enough
        await asyncio.wait_for(asyncio.shield(task), 0.05)
    assert not task.done()
    assert await cancel_until_done([task], retry_seconds=0.01) == []
    assert task.cancelled()


async def test_the_errors_of_dead_tasks_are_returned_and_the_rest_still_stopped() -> None:
    async def dies() -> None:
        raise RuntimeError("boom")

    dead = asyncio.ensure_future(dies())
    await asyncio.sleep(0)
    alive = asyncio.ensure_future(asyncio.sleep(3600))
    errors = await cancel_until_done([dead, alive], retry_seconds=0.01)
    assert [str(e) for e in errors] == ["boom"]
    assert alive.cancelled()
