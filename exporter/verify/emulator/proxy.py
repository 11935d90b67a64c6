"""The plumbing of the emulated datapath: listeners that serve, refuse or drop, and splices.

A ``Listener`` owns one address:port and is in one of three modes:

* ``serve``: an asyncio server handing each connection to a handler;
* ``refuse``: nothing listens, so the kernel answers a SYN with a RST (a fast refusal,
  like iptables' REJECT);
* ``drop``: a socket listening with an accept queue of one, filled by a connection
  nobody accepts, so the kernel drops every further SYN and clients hang until their
  timeout (like a datapath that drops).

The port is reserved at creation and kept across mode changes, so addresses handed to
probes stay valid.

A splice can be *shaped*: each direction forwards at most ``rate`` bytes per second after
a small ``SHAPING_BURST`` (so short answers pass at once), on an injected clock and sleep.
That is how a scenario gives each datapath its throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

SERVE = "serve"
REFUSE = "refuse"
DROP = "drop"
_CHUNK = 65536
#: Bytes a shaped direction forwards before its rate applies.
SHAPING_BURST = 4096
_SHAPED_CHUNK = 16384  # the largest read of a shaped direction: smooth, not bursty


@dataclass(frozen=True)
class Shaping:
    """At most ``rate`` bytes per second per direction (0: unshaped), timed by ``clock`` and
    ``sleep``."""

    rate: float = 0.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep

    def wait(self, sent: int, elapsed: float) -> float:
        """Seconds to hold back after ``sent`` bytes went out ``elapsed`` seconds after the
        first: the rate's schedule for the bytes beyond the burst, minus the time gone."""
        if self.rate <= 0:
            return 0.0
        return max(0.0, (sent - SHAPING_BURST) / self.rate - elapsed)


UNSHAPED = Shaping()


class EmulatorError(Exception):
    """The emulated datapath cannot start (an address cannot be bound)."""


def reserve_port(host: str, port: int = 0) -> int:
    """Bind ``host:port`` once to learn (or check) a free port; raises EmulatorError."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise EmulatorError(f"cannot bind {host}:{port}: {exc.strerror}") from exc
        return int(sock.getsockname()[1])


class Listener:
    """One address:port. While refusing it holds the port bound but not listening."""

    def __init__(self, host: str, handler: Handler, port: int = 0) -> None:
        self.host = host
        self._sock: socket.socket | None = _bound(host, port)
        self.port = int(self._sock.getsockname()[1])
        self.mode = REFUSE
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._held: list[socket.socket] = []

    async def set_mode(self, mode: str) -> None:
        if mode == self.mode:
            return
        await self._release()
        sock, self._sock = self._sock or _bound(self.host, self.port), None
        if mode == SERVE:
            sock.listen(128)
            self._server = await asyncio.start_server(self._handler, sock=sock)
        elif mode == DROP:
            sock.listen(0)  # the accept queue holds one connection ...
            filler = socket.create_connection((self.host, self.port), timeout=1.0)  # ... this
            self._held = [sock, filler]
        else:
            self._sock = sock
        self.mode = mode

    async def _release(self) -> None:
        if self._server is not None:
            # close() stops listening at once; connections already accepted live on (as
            # established connections survive a rules change), so no wait for them here.
            self._server.close()
            self._server = None
        for sock in self._held:
            sock.close()
        self._held = []

    async def close(self) -> None:
        await self._release()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.mode = REFUSE


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EmulatorError(f"cannot bind {host}:{port}: {exc.strerror}") from exc
    return sock


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST (SO_LINGER 0), as a datapath losing a connection's state does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                shaping: Shaping = UNSHAPED) -> None:
    size = _SHAPED_CHUNK if shaping.rate > 0 else _CHUNK
    started, sent = 0.0, 0
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(size):
            if not sent:
                started = shaping.clock()
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            if (wait := shaping.wait(sent, shaping.clock() - started)) > 0:
                await shaping.sleep(wait)
        if writer.can_write_eof():
            writer.write_eof()


async def splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 backend: tuple[str, int], source: str, *, timeout: float = 2.0,
                 shaping: Shaping = UNSHAPED) -> None:
    """Connect to ``backend`` from ``source`` and copy both ways until both sides close,
    each way at most at ``shaping``'s rate. A backend that cannot be reached resets the
    client."""
    c_reader, c_writer = client
    try:
        b_reader, b_writer = await asyncio.wait_for(
            asyncio.open_connection(*backend, local_addr=(source, 0)), timeout)
    except (OSError, asyncio.TimeoutError):
        reset(c_writer)
        return
    try:
        await asyncio.gather(_copy(c_reader, b_writer, shaping),
                             _copy(b_reader, c_writer, shaping))
    finally:
        for w in (b_writer, c_writer):
            w.close()
