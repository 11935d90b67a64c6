"""A bare HTTP/2 responder that streams ready-made ``GetFlowsResponse`` bytes, for benchmarks.

grpcio's Python server spends ~35 µs of CPU per streamed message, so it cannot
outrun a client by much. This server skips gRPC's per-message machinery: every
message is length-prefixed once up front (gRPC framing: flag byte + 4-byte
big-endian length) and the whole buffer is cut into HTTP/2 DATA frames, so the
cost per message is a share of a 16 KiB write. It speaks just enough HTTP/2 for
grpc clients (settings, ping, window updates, flow control, RST_STREAM, GOAWAY)
and answers *every* call, whatever its path, with the stream followed by
``grpc-status: 0``; it never reads the request. Loopback benchmarks only.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence
from typing import Final

_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = (
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9)
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4
_SETTINGS_INITIAL_WINDOW_SIZE, _SETTINGS_MAX_FRAME_SIZE = 0x4, 0x5
_DEFAULT_WINDOW: Final = 65_535
_DEFAULT_FRAME: Final = 16_384


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    head = struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + struct.pack(">I", stream)
    return head + payload


def _literal(name: bytes, value: bytes) -> bytes:
    """HPACK literal header field without indexing, new name, no Huffman (names < 127 bytes)."""
    return b"\x00" + bytes((len(name),)) + name + bytes((len(value),)) + value


def grpc_framed(messages: Sequence[bytes]) -> bytes:
    """The messages as one gRPC length-prefixed byte stream."""
    return b"".join(b"\x00" + struct.pack(">I", len(m)) + m for m in messages)


class _Connection:
    def __init__(self, owner: RawStreamServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.owner = owner
        self.reader = reader
        self.writer = writer
        self.conn_window = _DEFAULT_WINDOW
        self.initial_window = _DEFAULT_WINDOW
        self.max_frame = _DEFAULT_FRAME
        self.windows: dict[int, int] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.credit = asyncio.Event()

    async def run(self) -> None:
        try:
            if await self.reader.readexactly(len(_PREFACE)) != _PREFACE:
                return
            self.writer.write(_frame(_SETTINGS, 0, 0))
            while True:
                head = await self.reader.readexactly(9)
                length = int.from_bytes(head[:3], "big")
                kind, flags = head[3], head[4]
                stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = await self.reader.readexactly(length) if length else b""
                if not self._on_frame(kind, flags, stream, payload):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            for task in self.tasks.values():
                task.cancel()
            self.writer.close()

    def _on_frame(self, kind: int, flags: int, stream: int, payload: bytes) -> bool:
        if kind == _SETTINGS and not flags & _ACK:
            for i in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[i:i + 6])
                if key == _SETTINGS_INITIAL_WINDOW_SIZE:
                    delta, self.initial_window = value - self.initial_window, value
                    for sid in self.windows:
                        self.windows[sid] += delta
                elif key == _SETTINGS_MAX_FRAME_SIZE:
                    self.max_frame = value
            self.writer.write(_frame(_SETTINGS, _ACK, 0))
            self.credit.set()
        elif kind == _PING and not flags & _ACK:
            self.writer.write(_frame(_PING, _ACK, 0, payload))
        elif kind == _WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream == 0:
                self.conn_window += increment
            elif stream in self.windows:
                self.windows[stream] += increment
            self.credit.set()
        elif kind in (_HEADERS, _CONTINUATION) and stream not in self.tasks:
            self.windows[stream] = self.initial_window
            self.tasks[stream] = asyncio.create_task(self._respond(stream))
        elif kind == _RST_STREAM and stream in self.tasks:
            self.tasks.pop(stream).cancel()
            self.windows.pop(stream, None)
        elif kind == _GOAWAY:
            return False
        return True

    async def _respond(self, stream: int) -> None:
        owner = self.owner
        headers = (b"\x88" + _literal(b"content-type", b"application/grpc")
                   + _literal(b"hubble-relay-version", owner.version.encode()))
        self.writer.write(_frame(_HEADERS, _END_HEADERS, stream, headers))
        body = memoryview(owner.body)
        sent_rounds = 0
        while owner.repeat == 0 or sent_rounds < owner.repeat:
            pos = 0
            while pos < len(body):
                room = min(self.conn_window, self.windows[stream], self.max_frame)
                if room <= 0:
                    self.credit.clear()
                    await self.credit.wait()
                    continue
                chunk = body[pos:pos + room]
                self.writer.write(_frame(_DATA, 0, stream, chunk))
                pos += len(chunk)
                self.conn_window -= len(chunk)
                self.windows[stream] -= len(chunk)
                if self.writer.transport.get_write_buffer_size() > 1 << 20:
                    await self.writer.drain()
            sent_rounds += 1
        self.writer.write(_frame(_HEADERS, _END_HEADERS | _END_STREAM, stream,
                                 _literal(b"grpc-status", b"0")))
        await self.writer.drain()
        self.tasks.pop(stream, None)
        self.windows.pop(stream, None)


class RawStreamServer:
    """Streams ``messages`` (serialised ``GetFlowsResponse``) ``repeat`` times per call.

    ``repeat=0`` streams until the client cancels.
    """

    def __init__(self, messages: Sequence[bytes], *, repeat: int = 1,
                 version: str = "1.19.4") -> None:
        self.body = grpc_framed(messages)
        self.repeat = repeat
        self.version = version
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the bound port."""
        self._server = await asyncio.start_server(self._accept, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer).run()
        finally:
            self._connections.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
