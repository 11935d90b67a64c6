"""The server side of ``bench.bench_webhook``, run in its own process.

Serves, on one aiohttp application and listener (``exporter.web.Server``, as the
exporter does):

* ``POST /webhook/alertmanager``: the real receiver, built by
  ``build_rollback_service`` in dry-run mode without Kubernetes access (so an
  accepted rollback is planned and refused offline, nothing else happens), with a
  bearer token file and a fixed cluster view: phase ``canary``, node ``node-b`` on
  eBPF, ``node-a`` and ``node-c`` on kube-proxy;
* ``POST /bench/baseline``: reads the body and answers 200 with a constant JSON
  body, parsing nothing: the floor that aiohttp and the loopback cost;
* ``GET /metrics``: the registry the receiver and runner export to, so the
  benchmark can read the outcome counts;
* ``GET /bench/gc``: the garbage collector's runs and pauses per generation since
  start (JSON), since a full collection stops every answer in flight.

Logs go through the exporter's logfmt formatter at level info, as in production,
into ``os.devnull`` (the formatting cost is part of the measurement; the lines are
not kept). Prints ``listening <port>`` on stdout once bound, then serves until
its standard input closes or it gets SIGTERM.

``--profile FILE`` runs the server under cProfile and writes the statistics to FILE
when it stops.

Run: ``python -m bench.webhook_server --token-file FILE [--listen-address 127.0.0.1:0]
[--profile FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import signal
import sys
import time
from collections.abc import Collection, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from bench.bench_webhook import BASELINE_PATH
from exporter import logs
from exporter.model import EBPF, KUBE_PROXY, UNKNOWN
from exporter.cilium import CANARY
from exporter.rollback.settings import RollbackSettings
from exporter.web import Server
from exporter.webhook.service import build_rollback_service
from exporter.webhook.settings import WebhookSettings

_BASELINE_BODY = b'{"outcome":"baseline"}'


class CanaryView:
    """A ``ClusterView`` with fixed answers: one eBPF canary among three nodes."""

    def __init__(self) -> None:
        self._nodes: dict[str, frozenset[str]] = {
            KUBE_PROXY: frozenset({"node-a", "node-c"}), EBPF: frozenset({"node-b"}),
            UNKNOWN: frozenset(),
        }

    def phase(self) -> str:
        return CANARY

    def nodes_by_datapath(self) -> Mapping[str, Collection[str]]:
        return self._nodes


async def _baseline(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_BASELINE_BODY, content_type="application/json")


class GcPauses:
    """Counts the collector's runs and pauses per generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.runs = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gen, pause = info["generation"], time.perf_counter() - self._started
        self.runs[gen] += 1
        self.total[gen] += pause
        self.longest[gen] = max(self.longest[gen], pause)

    def as_dict(self) -> dict[str, list]:
        return {"runs": self.runs, "total_seconds": self.total, "longest_seconds": self.longest}


def build(token_file: str) -> tuple[web.Application, CollectorRegistry]:
    """The benchmark application: receiver, baseline handler and ``/metrics``."""
    webhook = WebhookSettings(token_file=token_file)
    registry = CollectorRegistry()
    app = web.Application(client_max_size=webhook.max_body_bytes + 1)
    build_rollback_service(app, webhook=webhook, rollback=RollbackSettings(), view=CanaryView(),
                           kube=None, registry=registry)
    app.router.add_post(BASELINE_PATH, _baseline)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app.router.add_get("/metrics", metrics)
    pauses = GcPauses()
    gc.callbacks.append(pauses)

    async def gc_pauses(request: web.Request) -> web.Response:
        return web.json_response(pauses.as_dict())

    app.router.add_get("/bench/gc", gc_pauses)
    return app, registry


async def serve(token_file: str, listen_address: str) -> None:
    app, _ = build(token_file)
    server = Server(app, listen_address)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), _on_stdin, stop)
    print(f"listening {server.port}", flush=True)
    try:
        await stop.wait()
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await server.stop()


def _on_stdin(stop: asyncio.Event) -> None:
    if not os.read(sys.stdin.fileno(), 4096):  # EOF: the benchmark is gone or done
        stop.set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--listen-address", default="127.0.0.1:0")
    parser.add_argument("--profile", default="", help="write cProfile statistics to this file")
    args = parser.parse_args(argv)
    profiler = cProfile.Profile() if args.profile else None
    with open(os.devnull, "w") as sink:
        logs.setup("logfmt", "info", stream=sink)
        if profiler is not None:
            profiler.enable()
        try:
            asyncio.run(serve(args.token_file, args.listen_address))
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
