"""``kpr-exporter echo``: the target behind every verification Service.

One TCP port speaks two protocols, told apart by the first line a client sends:

* HTTP: ``GET <any path> HTTP/1.1`` is answered ``200`` with a JSON body
  ``{"pod": ..., "node": ..., "client": "ip:port", "client_ip": ..., "client_port": ...}``
  and the connection is closed;
* plain TCP: any other line is answered with the same JSON object on one line, and so is
  each following line, until the client closes. Long-lived-connection probes use this
  to ping through a connection held open;
* sink: the line ``SINK`` is followed by any bytes up to the client's half-close, read and
  discarded; the echo then answers the JSON object with ``received`` (the byte count) on
  one line and closes. The probes' load option streams its payload this way.

``client`` is the peer address the echo saw, which is what the source-address checks
compare with the probe's own address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Longest request line or header line accepted.
MAX_LINE = 8192
#: Most header lines read before the request is refused.
MAX_HEADERS = 100
#: The first line of a sink connection (``exporter.verify.load`` streams after it).
SINK_LINE = b"SINK\n"
_SINK_CHUNK = 65536


class EchoError(Exception):
    """The echo server cannot start (bad listen address, port taken)."""


@dataclass(frozen=True, slots=True)
class Identity:
    pod: str
    node: str


def answer(identity: Identity, peer: tuple[str, int]) -> dict[str, object]:
    """The object the echo returns to a client at ``peer``."""
    host, port = peer[0], peer[1]
    client = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {"pod": identity.pod, "node": identity.node, "client": client,
            "client_ip": host, "client_port": port}


async def _finish(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel connection handlers still running and wait for them to end."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class EchoServer:
    """The echo on one address; ``port`` is known after ``start`` (0 picks a free one)."""

    def __init__(self, identity: Identity, host: str, port: int = 0, *,
                 read_timeout: float = 30.0) -> None:
        self.identity = identity
        self.host = host
        self.port = port
        self._read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Connections accepted and bytes sunk since the start (tests count them).
        self.connections = 0
        self.sunk_bytes = 0

    async def start(self) -> int:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                      limit=MAX_LINE)
        except OSError as exc:
            raise EchoError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            await _finish(self._tasks)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        peer = writer.get_extra_info("peername")
        try:
            first = await asyncio.wait_for(reader.readline(), self._read_timeout)
            if first.startswith((b"GET ", b"HEAD ")):
                await self._http(reader, writer, peer, head=first.startswith(b"HEAD "))
            elif first == SINK_LINE:
                await self._sink(reader, writer, peer)
            else:
                await self._lines(first, reader, writer, peer)
        except (ConnectionError, asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away, sent too much or nothing: nothing to answer
        except asyncio.CancelledError:
            pass  # stop(): a leaf task nobody else awaits; ending quietly spares asyncio's
            # connection callback from reporting the cancellation as an error
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    peer: tuple[str, int], *, head: bool) -> None:
        for _ in range(MAX_HEADERS):
            line = await asyncio.wait_for(reader.readline(), self._read_timeout)
            if line in (b"\r\n", b"\n", b""):
                break
        else:
            writer.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        body = json.dumps(answer(self.identity, peer)).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        if not head:
            writer.write(body)
        await writer.drain()

    async def _lines(self, first: bytes, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, peer: tuple[str, int]) -> None:
        line = first
        reply = json.dumps(answer(self.identity, peer)).encode() + b"\n"
        while line:
            writer.write(reply)
            await writer.drain()
            line = await reader.readline()  # held open as long as the client wants

    async def _sink(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    peer: tuple[str, int]) -> None:
        received = 0
        while chunk := await asyncio.wait_for(reader.read(_SINK_CHUNK), self._read_timeout):
            received += len(chunk)
            self.sunk_bytes += len(chunk)
        reply = {**answer(self.identity, peer), "received": received}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
