"""A TCP listener on 127.0.0.1 that counts the connections made to it.

With an ``upstream`` port it forwards each connection there (a transparent proxy in
front of a real gRPC server); without one it closes every connection at once, the
way a server that is not a Hubble Relay ends a gRPC handshake. ``connects`` counts
accepted connections, ``open`` the ones neither side has closed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class CountingListener:
    def __init__(self, upstream: int | None = None) -> None:
        self.upstream = upstream
        self.connects = 0
        self.open = 0
        self.port = 0
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # the handlers see their connections end and return
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_until(self, predicate: Callable[[CountingListener], bool],
                         timeout: float) -> None:
        """Wait until ``predicate(self)`` holds; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    def _note(self, connects: int = 0, open_: int = 0) -> None:
        self.connects += connects
        self.open += open_
        self._changed.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self._note(connects=1, open_=1)
        try:
            if self.upstream is not None:
                await self._forward(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._note(open_=-1)
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            return
        self._writers.add(up_writer)
        try:
            pipes = [asyncio.create_task(_pipe(reader, up_writer)),
                     asyncio.create_task(_pipe(up_reader, writer))]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._writers.discard(up_writer)
            up_writer.close()
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            target.write(data)
            await target.drain()
