"""``long-lived-connection``: a connection held open through the ClusterIP with periodic
pings; a reset, a close or a stall (no answer within the timeout) is a failure. Held
across a datapath switch, it catches the switch resetting established connections."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from exporter.verify import results as r
from exporter.verify.checks.context import ProbeContext

EXPECTED = "every ping answered on one connection"


async def long_lived_connection(ctx: ProbeContext) -> list[r.CheckResult]:
    endpoint = ctx.targets.cluster_ip
    timeout = ctx.limits.timeout
    try:
        reader, writer, took = await ctx.pod.open(*endpoint, timeout)
    except asyncio.TimeoutError:
        return [ctx.result(r.LONG_LIVED_CONNECTION, endpoint, False, EXPECTED,
                           f"no handshake within {timeout:g}s")]
    except OSError as exc:
        return [ctx.result(r.LONG_LIVED_CONNECTION, endpoint, False, EXPECTED,
                           f"cannot connect: {exc.strerror or exc}")]
    answered = 0
    problem = ""
    try:
        async for _ in ctx.limits.ping_ticks():
            try:
                writer.write(b"ping\n")
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), timeout)
            except (ConnectionResetError, BrokenPipeError):
                problem = "reset"
            except asyncio.TimeoutError:
                problem = f"stalled (no answer within {timeout:g}s)"
            except OSError as exc:
                problem = f"broken ({exc.strerror or exc})"
            else:
                problem = "" if line else "closed by the peer"
            if problem:
                break
            answered += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    observed = (f"{problem} after {answered} answered ping(s)" if problem
                else f"{answered} pings answered")
    res = ctx.result(r.LONG_LIVED_CONNECTION, endpoint, not problem and answered > 0,
                     EXPECTED, observed)
    return [replace(res, connect_seconds=took)]
