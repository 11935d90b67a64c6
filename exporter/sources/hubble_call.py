"""The GetFlows call of the Hubble reader: its channel, and the stream read by a worker thread.

grpc.aio spends two event-loop turns and a hand-off from its poller thread on every
message, more than converting and accounting the flow. The stream is therefore read
by a worker thread with the sync API in ``SingleThreadedUnaryStream`` mode (it polls
the call's completion queue itself) and handed to the event loop in batches of raw
messages (``ThreadedCall``); conversion and everything after it stay on the loop.
``bench.bench_e2e`` measures both paths.

A fresh channel is dialled for every attempt (``open_channel``), so certificate files
are re-read and the reconnect timing is the reader's, not the gRPC library's. Each
call is released completely when it ends (``release_call``): a call the library
leaves half-read keeps its channel alive after ``close()``, and that channel's
subchannel would go on dialling the server by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncGenerator
from pathlib import Path

import grpc
import grpc.experimental

from exporter._gen.flow import flow_pb2
from exporter._gen.observer import observer_pb2
from exporter.sources.errors import HubbleError
from exporter.sources.settings import HubbleSettings, parse_filter

log = logging.getLogger(__name__)

GET_FLOWS = "/observer.Observer/GetFlows"

#: Sync channels whose streams are read by one thread, each with its own
#: connection (no backoff state shared with an earlier attempt's channel).
CHANNEL_OPTIONS: list[tuple[str, str | int]] = [
    (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
    ("grpc.use_local_subchannel_pool", 1),
]


def open_channel(settings: HubbleSettings) -> grpc.Channel:
    """A new channel to ``settings.address`` (plaintext, TLS or mTLS).

    Raises ``HubbleError`` (code ``CLIENT``) when a certificate file cannot be read.
    """
    if not settings.tls_enabled:
        return grpc.insecure_channel(settings.target, options=CHANNEL_OPTIONS)
    tls = settings.tls
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(tls.ca_file),
            private_key=_read(tls.key_file),
            certificate_chain=_read(tls.cert_file),
        )
    except OSError as exc:
        raise HubbleError(settings.address, "CLIENT", f"TLS files: {exc}") from exc
    options = list(CHANNEL_OPTIONS)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(settings.target, credentials, options=options)


def flows_request(settings: HubbleSettings) -> observer_pb2.GetFlowsRequest:
    """``GetFlows(follow=true)`` with the configured allow- and denylist filters."""
    request = observer_pb2.GetFlowsRequest(follow=True)
    for entry in settings.allowlist:
        _fill_filter(request.whitelist.add(), entry)
    for entry in settings.denylist:
        _fill_filter(request.blacklist.add(), entry)
    return request


def release_call(call: object) -> None:
    """Read the completions a single-threaded stream left unread, so the call is freed.

    grpc's single-threaded stream stops reading its completion queue once the
    status is in. When the status comes first (the connection failed before the
    request was sent), the request's batch stays due: the C call is never
    released, it keeps its channel alive after ``close()``, and the channel's
    subchannel redials the server on its own for as long as the process lives.
    Cancelling first makes every outstanding batch complete, so the loop ends.
    Other call objects (the multi-threaded API, test doubles) are left alone.
    """
    state = getattr(call, "_state", None)
    consume = getattr(call, "_consume_next_event", None)
    cancel = getattr(call, "cancel", None)
    if state is None or consume is None or cancel is None or not hasattr(state, "due"):
        return
    cancel()
    try:
        while state.due:
            consume()
    except Exception as exc:  # noqa: BLE001 - a library change must not break the reader
        log.debug("could not release a finished GetFlows call: %r", exc)


class ThreadedCall:
    """A sync unary-stream call run by a worker thread, read on the event loop as
    batches of raw messages (see the module docstring).

    The worker wakes the loop once per ``batch`` messages; the loop also looks
    every ``max_delay`` seconds, so a quiet stream is not held back. The worker
    waits while ``max_pending`` messages are queued, so back-pressure reaches the
    server through HTTP/2 flow control. ``async for batch in call`` ends when the
    server ends the stream, raises the stream's ``grpc.RpcError``, or raises
    ``asyncio.CancelledError`` after ``cancel()``. Once the iteration has ended,
    the call is released (``release_call``).
    """

    def __init__(self, multicallable: grpc.UnaryStreamMultiCallable, request: object, *,
                 batch: int = 256, max_delay: float = 0.05, max_pending: int = 65_536) -> None:
        self._multicallable = multicallable
        self._request = request
        self.batch = batch
        self.max_delay = max_delay
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._room = threading.Event()
        self._ended = False
        self._cancelled = False
        self._error: BaseException | None = None
        self._call: grpc.Call | None = None

    def cancel(self) -> None:
        """Stop the stream (from any thread); the reading side raises ``CancelledError``."""
        self._cancelled = True
        self._room.set()
        call = self._call
        if call is not None:
            call.cancel()

    def _pump(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event,
              done: asyncio.Future[None]) -> None:
        call = None
        try:
            call = self._call = self._multicallable(self._request)
            if self._cancelled:
                call.cancel()
            lock, batch, limit, room = self._lock, self.batch, self.max_pending, self._room
            for raw in call:
                with lock:
                    pending = self._pending
                    pending.append(raw)
                    queued = len(pending)
                if queued == batch:
                    loop.call_soon_threadsafe(wake.set)
                elif queued >= limit:
                    room.clear()
                    loop.call_soon_threadsafe(wake.set)
                    room.wait()
                    if self._cancelled:
                        break
        except BaseException as exc:  # noqa: BLE001 - raised on the loop
            self._error = exc
        finally:
            if call is not None:
                release_call(call)
            self._ended = True
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(wake.set)
                loop.call_soon_threadsafe(done.set_result, None)

    def __aiter__(self) -> AsyncGenerator[list[bytes], None]:
        return self._batches()

    async def _batches(self) -> AsyncGenerator[list[bytes], None]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        done: asyncio.Future[None] = loop.create_future()
        threading.Thread(target=self._pump, args=(loop, wake, done), name="hubble-stream",
                         daemon=True).start()
        try:
            while True:
                if not wake.is_set():
                    timer = loop.call_later(self.max_delay, wake.set)
                    await wake.wait()
                    timer.cancel()
                wake.clear()
                with self._lock:
                    batch, self._pending = self._pending, []
                    ended = self._ended
                self._room.set()
                if batch:
                    yield batch
                if ended:
                    break
            if self._cancelled:
                raise asyncio.CancelledError
            if self._error is not None:
                raise self._error
        finally:
            self.cancel()
            await done


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _fill_filter(target: flow_pb2.FlowFilter, entry: str) -> None:
    for name, value in parse_filter(entry):
        if name == "event_type":
            assert isinstance(value, tuple)
            kind, sub = value
            target.event_type.add(type=kind, match_sub_type=sub is not None, sub_type=sub or 0)
        else:
            getattr(target, name).append(value)
