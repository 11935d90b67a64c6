"""Stopping background tasks for good.

On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives together with
its inner result (fixed in 3.12), so a loop that uses it many times a second may go on
after one ``cancel()``, and ``cancel(); await task`` then waits forever: a process that
never exits on SIGTERM. ``cancel_until_done`` cancels again until every task has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_until_done(tasks: Iterable[asyncio.Future[Any]], *,
                            retry_seconds: float = 1.0) -> list[BaseException]:
    """Cancel ``tasks`` (again every ``retry_seconds`` while any still runs) and return
    the errors of those that had ended with one, so a dead task never stops the others
    from being stopped. Cancellations are not errors."""
    tasks = list(tasks)
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=retry_seconds)
    errors: list[BaseException] = []
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            errors.append(error)
    return errors
