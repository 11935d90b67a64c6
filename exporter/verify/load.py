"""The probes' load option: a small, rate-capped measurement of connection rate and
throughput through the echo Service, the same from every node whatever its datapath.

After each round's checks, ``LoadRunner.run`` does two phases from the pod network to the
echo's ClusterIP (translated on the probing node, so the numbers are that node's
datapath's):

1. **connections**: ``connections_per_second`` handshakes for ``seconds``, each opened and
   closed at once (``pass``: the handshake completed; ``fail``: refused, timed out or
   unreachable; ``error``: the probe could not bind its source), each handshake timed;
2. **stream**: one connection sends the echo's ``SINK`` line, then ``bytes_per_second``
   for ``seconds`` in paced chunks, half-closes and reads the echo's count of the bytes it
   received. A stream passes when the echo confirms every byte; only passing streams add
   to the byte and second counters, so their ratio is the delivered throughput.

Both phases are paced by ``exporter.verify.pacing`` on an injected clock and sleep: the
rate is a ceiling, never exceeded, and the settings cap it (``exporter.verify.settings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from exporter.verify import results as r
from exporter.verify.echo import SINK_LINE
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.net import Dialer, ProbeError
from exporter.verify.pacing import Clock, Sleep, budget, paced
from exporter.verify.targets import Endpoint, show

log = logging.getLogger(__name__)

#: Largest chunk written at once; smaller at low rates (ten chunks per second).
MAX_CHUNK = 65536


@dataclass(frozen=True)
class LoadPlan:
    connections_per_second: float
    bytes_per_second: int
    seconds: float
    timeout: float = 2.0

    @property
    def chunk(self) -> int:
        return max(1, min(MAX_CHUNK, self.bytes_per_second // 10))

    @property
    def total_bytes(self) -> int:
        return math.floor(self.bytes_per_second * self.seconds)


@dataclass(frozen=True)
class StreamOutcome:
    result: str
    received: int
    seconds: float
    detail: str = ""


@dataclass
class LoadRunner:
    plan: LoadPlan
    metrics: MeasureMetrics
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep

    async def run(self, node: str, datapath: Callable[[], str], dialer: Dialer,
                  endpoint: Endpoint) -> None:
        """Both phases from ``node`` (its datapath read at the start of each)."""
        await self.connections(node, datapath(), dialer, endpoint)
        if self.plan.bytes_per_second > 0:
            await self.stream(node, datapath(), dialer, endpoint)

    async def connections(self, node: str, datapath: str, dialer: Dialer,
                          endpoint: Endpoint) -> int:
        """The paced handshakes; returns how many were made."""
        plan = self.plan
        count = budget(plan.connections_per_second, plan.seconds)
        if count == 0:
            return 0
        failed = 0
        async for _ in paced(count, plan.connections_per_second, self.clock, self.sleep):
            try:
                seen = await dialer.connect_only(endpoint, plan.timeout)
            except ProbeError as exc:
                self.metrics.connection(node, datapath, r.ERROR, None)
                log.warning("load from %s to %s: %s", node, show(endpoint), exc)
                continue
            result = r.PASS if seen.answered else r.FAIL
            failed += result == r.FAIL
            self.metrics.connection(node, datapath, result, seen.connect_seconds)
        if failed:
            log.warning("load from %s [%s] to %s: %d of %d connections failed", node,
                        datapath, show(endpoint), failed, count)
        return count

    async def stream(self, node: str, datapath: str, dialer: Dialer,
                     endpoint: Endpoint) -> StreamOutcome:
        """The paced payload; the outcome is also counted."""
        try:
            outcome = await self._stream(dialer, endpoint)
        except ProbeError as exc:
            outcome = StreamOutcome(r.ERROR, 0, 0.0, str(exc))
        if outcome.result == r.PASS:
            self.metrics.stream(node, datapath, r.PASS, outcome.received, outcome.seconds)
        else:
            self.metrics.stream(node, datapath, outcome.result, 0, 0.0)
            log.warning("load stream from %s [%s] to %s: %s: %s", node, datapath,
                        show(endpoint), outcome.result, outcome.detail)
        return outcome

    async def _stream(self, dialer: Dialer, endpoint: Endpoint) -> StreamOutcome:
        plan = self.plan
        try:
            reader, writer, _ = await dialer.open(*endpoint, plan.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            return StreamOutcome(r.FAIL, 0, 0.0, f"cannot connect: {_why(exc)}")
        try:
            return await self._send(reader, writer)
        except (OSError, asyncio.TimeoutError) as exc:
            return StreamOutcome(r.FAIL, 0, 0.0, f"stream broken: {_why(exc)}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _send(self, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> StreamOutcome:
        plan = self.plan
        total, chunk = plan.total_bytes, plan.chunk
        payload = bytes(chunk)
        chunks = math.ceil(total / chunk)
        rate = plan.bytes_per_second / chunk
        writer.write(SINK_LINE)
        started = self.clock()
        sent = 0
        async for _ in paced(chunks, rate, self.clock, self.sleep):
            size = min(chunk, total - sent)
            writer.write(payload[:size])
            await asyncio.wait_for(writer.drain(), plan.timeout)
            sent += size
        if (rest := started + chunks / rate - self.clock()) > 0:
            await self.sleep(rest)  # the last chunk's slot: the stream lasts its window
        writer.write_eof()
        line = await asyncio.wait_for(reader.readline(), plan.timeout)
        took = self.clock() - started
        try:
            received = int(json.loads(line)["received"])
        except (ValueError, KeyError, TypeError):
            return StreamOutcome(r.FAIL, 0, took, f"no byte count from the echo: {line[:60]!r}")
        if received != sent:
            return StreamOutcome(r.FAIL, received, took,
                                 f"the echo received {received} of {sent} bytes")
        return StreamOutcome(r.PASS, received, took)


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
