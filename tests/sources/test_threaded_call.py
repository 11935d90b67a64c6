"""The reader's threaded receive: batching, quiet-stream delivery, back-pressure, errors, cancel.

``ThreadedCall`` only needs a callable returning an iterable call object; here a
small in-process stream stands in for the gRPC call, fed by the test through a
queue, so each property is checked without a network or timing guesses.
"""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

from exporter.sources.hubble import ThreadedCall

END = object()


class FeedStream:
    """A call object the test feeds one message at a time; records what was read."""

    def __init__(self) -> None:
        self.feed: queue.Queue = queue.Queue()
        self.read = 0
        self.cancelled = threading.Event()

    def __call__(self, request):
        return self

    def __iter__(self):
        while True:
            item = self.feed.get()
            if item is END or self.cancelled.is_set():
                return
            if isinstance(item, BaseException):
                raise item
            self.read += 1
            yield item

    def cancel(self) -> None:
        self.cancelled.set()
        self.feed.put(END)


async def _collect(call: ThreadedCall, want: int) -> list[bytes]:
    got: list[bytes] = []
    async for batch in call:
        got.extend(batch)
        if len(got) >= want:
            break
    return got


async def test_full_batches_and_the_end_of_the_stream_deliver_everything_in_order():
    stream = FeedStream()
    for i in range(10):
        stream.feed.put(b"m%d" % i)
    stream.feed.put(END)
    batches = [batch async for batch in ThreadedCall(stream, None, batch=4)]
    assert [m for b in batches for m in b] == [b"m%d" % i for i in range(10)]


async def test_a_quiet_stream_is_delivered_without_waiting_for_a_full_batch():
    stream = FeedStream()
    call = ThreadedCall(stream, None, batch=256, max_delay=0.01)
    stream.feed.put(b"only")
    got = await asyncio.wait_for(_collect(call, 1), timeout=5)
    assert got == [b"only"]
    assert stream.cancelled.is_set()  # leaving the loop cancels the call


async def test_the_worker_stops_reading_while_max_pending_messages_wait():
    stream = FeedStream()
    for i in range(50):
        stream.feed.put(b"%d" % i)
    call = ThreadedCall(stream, None, batch=1000, max_pending=8, max_delay=60)
    batches = aiter(call)
    first = await asyncio.wait_for(anext(batches), timeout=5)
    assert len(first) == 8  # woken at the limit, not before
    # Not consuming: the worker fills the queue again, then waits for room.
    for _ in range(500):
        if not call._room.is_set():
            break
        await asyncio.sleep(0.01)
    assert not call._room.is_set(), "the worker never waited"
    assert stream.read == 16  # 8 delivered + 8 queued, the other 34 left unread
    second = await asyncio.wait_for(anext(batches), timeout=5)
    assert len(second) == 8
    await batches.aclose()


async def test_a_stream_error_is_raised_on_the_loop_after_the_messages_before_it():
    stream = FeedStream()
    stream.feed.put(b"a")
    stream.feed.put(RuntimeError("stream broke"))
    got = []
    with pytest.raises(RuntimeError, match="stream broke"):
        async for batch in ThreadedCall(stream, None, batch=1):
            got.extend(batch)
    assert got == [b"a"]


async def test_cancel_ends_the_reader_with_cancelled_error():
    stream = FeedStream()
    call = ThreadedCall(stream, None, max_delay=0.01)

    async def read_all():
        return [b async for b in call]

    task = asyncio.ensure_future(read_all())
    await asyncio.sleep(0)  # let the reader start its worker
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
