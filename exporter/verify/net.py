"""How a probe talks from its node: a ``Dialer`` bound to one source address.

A probe "runs from a node" by binding that node's address (host network) or its own pod
address (pod network) as the source of every connection. ``resolve`` is the node's view
of virtual addresses: identity on a real node, where the kernel's datapath translates
ClusterIPs; the emulator maps them to the node's own userspace load-balancer.

Every exchange returns an ``Outcome`` instead of raising, except ``ProbeError`` when the
probe itself cannot run (its source address cannot be bound): that is an ``error``
result, never a verdict on the datapath.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.verify.targets import Endpoint

ANSWERED = "answered"
REFUSED = "refused"
TIMEOUT = "timeout"
RESET = "reset"
CLOSED = "closed without answer"
UNREACHABLE = "unreachable"
GARBLED = "not an echo answer"

_PROBE_SIDE = (errno.EADDRNOTAVAIL, errno.EADDRINUSE, errno.EACCES)
#: Most bytes of an HTTP answer read (an echo or health-check answer is a few hundred).
MAX_ANSWER = 65536


class ProbeError(Exception):
    """The probe cannot run a check from its node (e.g. its source address is not local)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one exchange saw. ``reply`` is the echo's JSON object when it answered."""

    kind: str
    connect_seconds: float | None = None
    reply: dict[str, Any] | None = None
    status: int | None = None
    detail: str = ""

    @property
    def answered(self) -> bool:
        return self.kind == ANSWERED

    def describe(self) -> str:
        if self.kind != ANSWERED:
            return self.kind + (f" ({self.detail})" if self.detail else "")
        if self.status is not None:
            return f"HTTP {self.status} {json.dumps(self.reply, sort_keys=True)}"
        return f"answer from {(self.reply or {}).get('pod', '?')}"


Resolver = Callable[[str, int], Endpoint]


def _same(host: str, port: int) -> Endpoint:
    return host, port


class Dialer:
    """Connections from ``source``; every one binds it, so the datapath sees this node."""

    def __init__(self, source: str, *, resolve: Resolver = _same,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._resolve = resolve
        self._clock = clock

    def rebound(self, source: str) -> Dialer:
        """The same node's view from another of its addresses (e.g. its loopback)."""
        return Dialer(source, resolve=self._resolve, clock=self._clock)

    async def open(self, host: str, port: int, timeout: float) -> tuple[
            asyncio.StreamReader, asyncio.StreamWriter, float]:
        """Connect; returns the streams and the handshake time. Raises OSError / TimeoutError,
        or ProbeError when the source cannot be bound."""
        real_host, real_port = self._resolve(host, port)
        started = self._clock()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(real_host, real_port, local_addr=(self.source, 0)),
                timeout)
        except OSError as exc:
            if exc.errno in _PROBE_SIDE:
                raise ProbeError(f"cannot bind source {self.source}: {exc.strerror}") from exc
            raise
        return reader, writer, self._clock() - started

    async def line(self, endpoint: Endpoint, timeout: float, text: str = "hello") -> Outcome:
        """Send one line, read the echo's one-line JSON answer."""
        async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Outcome:
            writer.write(text.encode() + b"\n")
            await writer.drain()
            return _parse_line(await reader.readline())
        return await self._exchange(endpoint, timeout, talk)

    async def http_get(self, endpoint: Endpoint, path: str, timeout: float) -> Outcome:
        """``GET path``; the answer carries the status and the JSON body (None if not JSON)."""
        async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Outcome:
            host = endpoint[0]
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                         .encode())
            await writer.drain()
            return _parse_http(await _read_to_end(reader))
        return await self._exchange(endpoint, timeout, talk)

    async def connect_only(self, endpoint: Endpoint, timeout: float) -> Outcome:
        """Only the handshake: ``answered`` once it completed."""
        async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Outcome:
            return Outcome(ANSWERED)
        return await self._exchange(endpoint, timeout, talk)

    async def _exchange(self, endpoint: Endpoint, timeout: float,
                        talk: Callable[..., Any]) -> Outcome:
        try:
            reader, writer, took = await self.open(*endpoint, timeout)
        except ConnectionRefusedError:
            return Outcome(REFUSED)
        except asyncio.TimeoutError:
            return Outcome(TIMEOUT, detail=f"no handshake within {timeout:g}s")
        except OSError as exc:
            return Outcome(UNREACHABLE, detail=exc.strerror or str(exc))
        try:
            seen: Outcome = await asyncio.wait_for(talk(reader, writer), timeout)
        except (ConnectionResetError, BrokenPipeError):
            seen = Outcome(RESET)
        except asyncio.TimeoutError:
            seen = Outcome(TIMEOUT, detail=f"no answer within {timeout:g}s")
        except OSError as exc:
            seen = Outcome(UNREACHABLE, detail=exc.strerror or str(exc))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return Outcome(seen.kind, took, seen.reply, seen.status, seen.detail)


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """The answer up to the server's close (``Connection: close``), at most ``MAX_ANSWER``."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_ANSWER and (chunk := await reader.read(MAX_ANSWER - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _parse_line(raw: bytes) -> Outcome:
    if not raw:
        return Outcome(CLOSED)
    try:
        reply = json.loads(raw)
    except ValueError:
        return Outcome(GARBLED, detail=raw[:60].decode(errors="replace"))
    return Outcome(ANSWERED, reply=reply) if isinstance(reply, dict) else Outcome(GARBLED)


def _parse_http(raw: bytes) -> Outcome:
    if not raw:
        return Outcome(CLOSED)
    head, _, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return Outcome(GARBLED, detail=raw[:60].decode(errors="replace"))
    try:
        reply = json.loads(body) if body else None
    except ValueError:
        reply = None
    return Outcome(ANSWERED, reply=reply if isinstance(reply, dict) else None,
                   status=int(parts[1]))
