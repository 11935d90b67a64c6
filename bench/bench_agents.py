"""Benchmark: a misbehaving Cilium agent endpoint against the agent scraper (target: < 50 ms
of event-loop time per scrape of a 13 MB body).

An agent server in a process of its own on 127.0.0.1 serves:

* ``/oversize``: 50 MB streamed without Content-Length (lines of families not read);
* ``/hostile``: a valid 13 MB body: the Cilium 1.18 fixture, then ~106,000 drop-counter
  lines, one series each (an extra ``endpoint`` label), among ~27,000 lines of other families;
* ``/typical``: a valid 13 MB body: the fixture, then ~110,000 lines of other families;
* ``/small``: the fixture alone (warm-up).

Two clients, each in a fresh process, one after the other in the same run:
**streaming**, the ``AgentScraper`` of ``exporter.sources.agents`` with its default settings
(16 MiB limit, 2,000 series); **baseline**, the scraper as it was before, reproduced here:
the body gathered into a bytearray, decoded and parsed by prometheus_client on the event
loop, and the failure kept as an exception bound in the scraping frame.

Each client: one warm-up scrape, then ``--scrapes`` scrapes of ``/oversize`` (all fail on
size) and its resident memory (VmRSS, and the peak VmHWM since the warm-up); then per
13 MB body ``--rounds`` x 2 scrapes: the event loop thread's CPU time per scrape (without
probe), the longest stall a 1 ms probe task sees (with probe), the wall time and the
process CPU. Run: ``python -m bench.bench_agents [--scrapes N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.sources.agent_text import WANTED, AgentScrapeError
from exporter.sources.agents import AgentScraper
from exporter.sources.agents_settings import AgentSettings

TARGET_MS = 50.0
MB = 1_000_000
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "agent_metrics" / "cilium-1.18.txt"
FILLER = "".join(
    f'cilium_bpf_map_ops_total{{map_name="cilium_lb4_services_v2",operation="lookup",'
    f'outcome="success",shard="{i}"}} {i * 7}\n' for i in range(512)
).encode()
BODIES = ("hostile", "typical")
Scrape = Callable[[str], Awaitable[str]]  # path -> error kind ("" when it worked)
Close = Callable[[], Awaitable[None]]


# --- the agent server (its own process) ------------------------------------------------------

def _bodies() -> dict[str, bytes]:
    head = FIXTURE.read_bytes()
    hostile, typical, block = [head], [head], 0
    while sum(map(len, hostile)) < 13 * MB:
        hostile.append("".join(
            f'cilium_drop_count_total{{direction="INGRESS",reason="Policy denied",'
            f'endpoint="{block * 2048 + i}"}} 1\n' for i in range(2048)).encode() + FILLER)
        block += 1
    while sum(map(len, typical)) < 13 * MB:
        typical.append(FILLER)
    return {"hostile": b"".join(hostile), "typical": b"".join(typical), "small": head}


async def _serve() -> None:
    bodies = _bodies()

    async def fixed(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bodies[request.match_info["name"]], content_type="text/plain")

    async def oversize(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(50 * MB // len(FILLER)):
                await response.write(FILLER)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up at its limit
        return response

    app = web.Application()
    app.router.add_get("/oversize", oversize)
    app.router.add_get("/{name}", fixed)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(json.dumps({"port": runner.addresses[0][1],
                      "sizes": {k: len(v) for k, v in bodies.items()}}), flush=True)
    await asyncio.Event().wait()


# --- the baseline: the scraper before the change ---------------------------------------------

async def _baseline_fetch(session: aiohttp.ClientSession, url: str, limit: int) -> str:
    async with asyncio.timeout(60):
        async with session.get(url) as response:
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > limit:
                    raise AgentScrapeError("oversize", f"body exceeds the limit of {limit} bytes")
            charset = response.charset or "utf-8"
    return body.decode(charset)


def _baseline_parse(text: str) -> int:
    lines = text.split("\n")
    wanted = "\n".join(line for line in lines if line.startswith(WANTED))
    return sum(len(family.samples) for family in text_string_to_metric_families(wanted))


def baseline(url_base: str) -> tuple[Scrape, Close]:
    session = aiohttp.ClientSession()

    async def scrape(path: str) -> str:
        try:
            _baseline_parse(await _baseline_fetch(session, url_base + path, 16 * 1024 * 1024))
            error = None
        except AgentScrapeError as exc:
            error = exc  # as the scraper did: bound in this frame, its traceback holds the frame
        return error.kind if error else ""

    return scrape, session.close


def streaming(url_base: str) -> tuple[Scrape, Close]:
    target = {"bench": url_base}

    async def discover() -> dict[str, str]:
        return dict(target)

    scraper = AgentScraper(settings=AgentSettings(timeout_seconds=60.0), discover=discover)

    async def scrape(path: str) -> str:
        target["bench"] = url_base + path
        await scraper.scrape_once()
        return scraper.states()["bench"].error_kind

    return scrape, scraper.aclose


# --- one client (its own process) ---------------------------------------------------------------

def _status(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _measured(scrape: Scrape, path: str, probe: bool) -> dict:
    stalls: list[float] = []
    done = asyncio.Event()

    async def prober() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            stalls.append(time.perf_counter() - started - 0.001)

    task = asyncio.create_task(prober()) if probe else None
    await asyncio.sleep(0)
    cpu, proc, wall = time.thread_time(), time.process_time(), time.perf_counter()
    kind = await scrape(path)
    cpu, proc, wall = (time.thread_time() - cpu, time.process_time() - proc,
                       time.perf_counter() - wall)
    done.set()
    if task is not None:
        await task
    return {"kind": kind, "probe": probe, "loop_ms": cpu * 1000, "proc_ms": proc * 1000, "wall_ms": wall * 1000,
            "stall_ms": max(stalls, default=0.0) * 1000}


async def _client(variant: str, port: int, scrapes: int, rounds: int) -> dict:
    scrape, close = (streaming if variant == "streaming" else baseline)(
        f"http://127.0.0.1:{port}")
    try:
        return await _measure_all(scrape, scrapes, rounds)
    finally:
        await close()


async def _measure_all(scrape: Scrape, scrapes: int, rounds: int) -> dict:
    assert await scrape("/small") == ""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # restart VmHWM from here
    except OSError:
        pass
    rss0 = _status("VmRSS")
    kinds = {await scrape("/oversize") for _ in range(scrapes)}
    assert kinds == {"oversize"}, kinds
    out: dict = {"rss0": rss0, "rss": _status("VmRSS"), "hwm": _status("VmHWM")}
    for body in BODIES:
        runs = [await _measured(scrape, f"/{body}", probe) for _ in range(rounds)
                for probe in (False, True)]
        assert {r["kind"] for r in runs} == {""}, runs
        out[body] = runs
    return out


# --- the parent -----------------------------------------------------------------------------

def _report(name: str, r: dict, scrapes: int) -> None:
    print(f"{name:<9} RSS after {scrapes} failing 50 MB scrapes: {r['rss']:6.1f} MiB "
          f"(before {r['rss0']:.1f}, peak {r['hwm']:.1f})")
    for body in BODIES:
        runs = r[body]
        loop = min(x["loop_ms"] for x in runs if not x["probe"])
        stall = min(x["stall_ms"] for x in runs if x["probe"])
        wall = min(x["wall_ms"] for x in runs)
        proc = min(x["proc_ms"] for x in runs)
        print(f"{name:<9} 13 MB {body:<8} loop CPU {loop:7.1f} ms  longest stall {stall:7.1f} ms  "
              f"wall {wall:7.1f} ms  process CPU {proc:7.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=100, help="failing 50 MB scrapes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per 13 MB body (best of)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve())
        return 0
    if args.client:
        result = asyncio.run(_client(args.client, args.port, args.scrapes, args.rounds))
        print(json.dumps(result))
        return 0

    server = subprocess.Popen([sys.executable, "-m", "bench.bench_agents", "--serve"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        print(f"agent server on 127.0.0.1:{info['port']}; bodies: "
              + ", ".join(f"{k} {v / MB:.1f} MB" for k, v in info["sizes"].items())
              + ", oversize 50 MB streamed")
        results = {}
        for variant in ("baseline", "streaming"):
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_agents", "--client", variant,
                 "--port", str(info["port"]), "--scrapes", str(args.scrapes),
                 "--rounds", str(args.rounds)],
                check=True, capture_output=True, text=True)
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
            _report(variant, results[variant], args.scrapes)
    finally:
        server.terminate()
        server.wait()
    new = results["streaming"]
    worst = max(min(x["loop_ms"] for x in new[b] if not x["probe"]) for b in BODIES)
    print(f"target: < {TARGET_MS:.0f} ms of loop time per 13 MB scrape; "
          f"ratio: {worst / TARGET_MS:.2f} (streaming, worst body; lower is better)")
    print(f"RSS ratio streaming / baseline after {args.scrapes} failing scrapes: "
          f"{new['rss'] / results['baseline']['rss']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
