"""``kpr-exporter verify``: the checks × nodes matrix from the probes' ``/metrics``.

Without ``--wait`` it judges every result collected so far, and the results are stale
when a probe has not completed a round within ``--max-age``. With ``--wait DURATION`` it
notes every probe's round count, then polls (reading the probes' state only) until each
probe has completed its coverage rounds plus one (the round in progress at the start may
predate it) and judges only the results observed in between: a fresh full round. Time and
sleeping are injected.

Exit codes: 0 every applicable cell passes, 1 any cell fails, 2 a cell without a result,
a stale or missing probe, no fresh round within the wait, or an unreadable URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from exporter.verify import matrix as mx
from exporter.verify import readback as rb

Fetch = Callable[[str], Awaitable[str]]
Sleep = Callable[[float], Awaitable[object]]
DEFAULT_URL = "http://127.0.0.1:9977"
POLL_SECONDS = 2.0


class FetchError(Exception):
    """A URL that did not answer with an exposition."""


def metrics_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/metrics") else url + "/metrics"


async def http_fetch(url: str) -> str:
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.get(url, headers={"Accept": "text/plain"}) as response:
                response.raise_for_status()
                return await response.text()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise FetchError(f"cannot read {url}: {exc or type(exc).__name__}") from None


async def read(urls: Sequence[str], fetch: Fetch, *,
               only: frozenset[str] | None = None) -> rb.Reading:
    """Every URL's probe results merged (only the samples ``only`` names, if given);
    raises FetchError."""
    readings = []
    for url in urls:
        target = metrics_url(url)
        try:
            readings.append(rb.parse(await fetch(target), source=url, only=only))
        except rb.ReadbackError as exc:
            raise FetchError(f"{target}: {exc}") from None
    return rb.merged(readings)


def _behind(first: rb.Reading, now: rb.Reading) -> list[str]:
    """Probes that have not completed a fresh full round since ``first``."""
    out = []
    for key, st in sorted(now.probes.items()):
        start = first.probes.get(key, rb.ProbeState()).rounds
        if st.coverage_rounds is None or st.rounds < start + st.coverage_rounds + 1:
            need = "?" if st.coverage_rounds is None else f"{st.coverage_rounds + 1:g}"
            out.append(f"probe on {key[1]} completed {st.rounds - start:g} of {need} rounds")
    missing = sorted(set(first.probes) - set(now.probes))
    out += [f"probe on {node} no longer reports" for _, node in missing]
    return out


async def wait_fresh(urls: Sequence[str], wait: float, *, fetch: Fetch,
                     clock: Callable[[], float], sleep: Sleep, poll: float = POLL_SECONDS,
                     first: rb.Reading | None = None, only: frozenset[str] | None = None
                     ) -> tuple[rb.Reading, list[str]]:
    """The results of a fresh full round of every probe since ``first`` (read now when not
    given), and what is still missing when ``wait`` seconds passed first. Polls read the
    probes' state only; the results (the samples ``only`` names, if given) are read once,
    at the end."""
    if first is None:
        first = await read(urls, fetch, only=only)
    if not first.probes:
        return first, ["no probe reported (no kpr_probe_rounds_total)"]
    deadline = clock() + wait
    while _behind(first, await read(urls, fetch, only=rb.STATE)) and clock() < deadline:
        await sleep(min(poll, max(0.0, deadline - clock())))
    now = await read(urls, fetch, only=only)
    return now.since(first), [f"no fresh full round within {wait:g}s: {b}"
                              for b in _behind(first, now)]


async def cmd_verify(urls: Sequence[str] | None, *, fmt: str, wait: float, max_age: float,
                     out: TextIO, err: TextIO, fetch: Fetch = http_fetch,
                     clock: Callable[[], float] = time.time,
                     sleep: Sleep = asyncio.sleep) -> int:
    urls = list(urls or [DEFAULT_URL])
    try:
        if wait > 0:
            reading, problems = await wait_fresh(urls, wait, fetch=fetch, clock=clock,
                                                 sleep=sleep)
        else:
            reading = await read(urls, fetch)
            problems = rb.stale(reading, clock(), max_age)
    except FetchError as exc:
        print(f"kpr-exporter verify: {exc}", file=err)
        return 2
    matrix = rb.to_matrix(reading)
    code = mx.exit_code(matrix)
    if problems and code == 0:
        code = 2
    if fmt == "json":
        import json

        doc = json.loads(mx.to_json(matrix))
        doc.update(problems=problems, exit_code=code)
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(mx.render_table(matrix))
        if problems:
            out.write("\nresults not fresh:\n" + "".join(f"  {p}\n" for p in problems))
    return code
