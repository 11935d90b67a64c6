"""Benchmark: webhook answer latency under 50 concurrent deliveries (brief §10: p99 <= 50 ms).

Starts ``bench.webhook_server`` in its own process on 127.0.0.1: the real receiver
(``build_rollback_service``, dry-run, no Kubernetes, bearer token file, a cluster
in phase ``canary`` with one eBPF node) and, on the same application, a baseline
handler that reads the body and answers 200 without parsing it.

Then fires bounded rounds of ``--concurrency`` deliveries at once from one
aiohttp client (keep-alive connections, as Alertmanager uses), each round to the
receiver and to the baseline, in alternating order, with the same bodies. Every
round mixes realistic version-4 payloads built from ``tests/data/alertmanager``:

* ``resend``   the same firing alert again (duplicate: its first delivery, sent once
               before the rounds, is accepted and its dry-run plan refused offline),
* ``new``      a firing ``kpr_action=rollback`` alert with a fresh fingerprint
               (refused: cooldown after the first rollback),
* ``resolved`` a resolved alert (ignored),
* ``other``    a firing alert without the action label (ignored),
* ``group``    a group of three alerts, one resolved, one firing naming a node
               (eBPF node: refused by cooldown; kube-proxy node: nothing to do),
               one without the action label.

Bodies are serialised before the clock starts; a latency is from just before the
request to the end of reading the answer. Prints p50/p99/max per endpoint, the
target and the ratio p99/target, the receiver's p99 minus the baseline's, the
server's CPU time per delivery, the outcome counts the receiver exported, the time
both processes waited for a core held by other processes (``/proc/<pid>/schedstat``:
latency figures are only comparable when it is low) and the server's collector pauses.
Warm-up rounds are not counted. The run stops after ``--rounds`` rounds or
``--seconds`` seconds, whichever comes first. ``--profile N`` runs the server under
cProfile (slower; the latencies are then not comparable) and prints its top N
functions by own time.

Run: ``python -m bench.bench_webhook [--rounds N] [--seconds S] [--concurrency C]
[--profile N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import json
import math
import os
import pstats
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

TARGET_MS = 50.0
#: The server's no-parsing handler (``bench.webhook_server`` imports it from here, so the
#: client never loads the exporter and its collector stays small).
BASELINE_PATH = "/bench/baseline"
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "alertmanager"
WEBHOOK_PATH = "/webhook/alertmanager"
TOKEN = "bench-webhook-token"
# Kinds of delivery per round of 50, scaled to --concurrency.
MIX = {"resend": 20, "new": 10, "resolved": 8, "other": 7, "group": 5}
_TICKS = os.sysconf("SC_CLK_TCK")


class Payloads:
    """Realistic Alertmanager v4 bodies, derived from the test fixtures."""

    def __init__(self, seed: int) -> None:
        self._firing = json.loads((FIXTURES / "firing.json").read_text())
        self._resolved = json.loads((FIXTURES / "resolved.json").read_text())
        self._group = json.loads((FIXTURES / "mixed.json").read_text())
        self._serial = 0
        self._groups = 0
        self._rng = random.Random(seed)
        self.first = resend = _encode(self._firing)
        self._builders = {"resend": lambda: resend, "new": self._new, "resolved": self._resolved_one,
                          "other": self._other, "group": self._group_one}

    def round(self, size: int) -> list[tuple[str, bytes]]:
        pattern = [kind for kind, share in MIX.items() for _ in range(share)]
        kinds = [pattern[i * len(pattern) // size] for i in range(size)]
        self._rng.shuffle(kinds)
        return [(kind, self._builders[kind]()) for kind in kinds]

    def _next(self) -> tuple[str, str]:
        self._serial += 1
        n = self._serial
        starts = f"2026-11-24T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z"
        return f"{0xbe00000000000000 + n:016x}", starts

    def _new(self) -> bytes:
        doc = copy.deepcopy(self._firing)
        fingerprint, starts = self._next()
        alert = doc["alerts"][0]
        alert["fingerprint"], alert["startsAt"] = fingerprint, starts
        alert["labels"]["service"] = doc["commonLabels"]["service"] = f"svc-{self._serial % 97}"
        return _encode(doc)

    def _resolved_one(self) -> bytes:
        doc = copy.deepcopy(self._resolved)
        fingerprint, _ = self._next()
        doc["alerts"][0]["fingerprint"] = fingerprint
        return _encode(doc)

    def _other(self) -> bytes:
        doc = copy.deepcopy(self._firing)
        fingerprint, starts = self._next()
        labels = {"alertname": "KprHubbleDown", "cluster": "local", "severity": "warning"}
        doc["alerts"][0].update(labels=labels, fingerprint=fingerprint, startsAt=starts)
        doc["commonLabels"] = doc["groupLabels"] = {"alertname": "KprHubbleDown"}
        doc["groupKey"] = '{}:{alertname="KprHubbleDown"}'
        return _encode(doc)

    def _group_one(self) -> bytes:
        doc = copy.deepcopy(self._group)
        for alert in doc["alerts"]:
            alert["fingerprint"], alert["startsAt"] = self._next()
        self._groups += 1
        doc["alerts"][1]["labels"]["node"] = "node-b" if self._groups % 2 else "node-a"
        return _encode(doc)


def _encode(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Series:
    """Latencies (seconds), answer statuses and server CPU of one endpoint."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    server_cpu: float = 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class ServerProcess:
    """``bench.webhook_server`` in a child process; stopped by closing its stdin."""

    def __init__(self, token_file: str, profile: str = "") -> None:
        self._token_file = token_file
        self._profile = profile
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    async def __aenter__(self) -> ServerProcess:
        extra = ["--profile", self._profile] if self._profile else []
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.webhook_server", "--token-file", self._token_file, *extra,
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=30)
        if not line.startswith(b"listening "):
            raise RuntimeError(f"webhook server did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=10)
        except asyncio.TimeoutError:
            self.proc.terminate()
            await self.proc.wait()

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def waited_seconds(self) -> float:
        assert self.proc is not None
        return run_queue_wait(self.proc.pid)


def run_queue_wait(pid: int | str = "self") -> float:
    """Seconds the process's main thread was ready to run but waited for a core."""
    with open(f"/proc/{pid}/schedstat") as fh:
        return int(fh.read().split()[1]) / 1e9


async def _deliver(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    async with session.post(url, data=body) as resp:
        await resp.read()
        status = resp.status
    return time.perf_counter() - start, status


async def _round(session, server: ServerProcess, url: str, bodies: list[bytes],
                 series: Series | None) -> None:
    cpu = server.cpu_seconds()
    answers = await asyncio.gather(*(_deliver(session, url, body) for body in bodies))
    if series is not None:
        series.server_cpu += server.cpu_seconds() - cpu
        for latency, status in answers:
            series.latencies.append(latency)
            series.statuses[status] += 1


async def run(rounds: int, seconds: float, concurrency: int, warmup: int, seed: int,
              profile: int = 0) -> int:
    payloads = Payloads(seed)
    receiver, baseline = Series("receiver"), Series("baseline (no parsing)")
    kinds: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        token_file = Path(tmp, "token")
        token_file.write_text(TOKEN + "\n")
        profile_file = str(Path(tmp, "server.prof")) if profile else ""
        async with ServerProcess(str(token_file), profile_file) as server:
            base = f"http://127.0.0.1:{server.port}"
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                       "User-Agent": "Alertmanager/0.25.0"}
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
                # The first delivery of the re-sent alert starts the (dry-run) rollback.
                await _deliver(session, base + WEBHOOK_PATH, payloads.first)
                # Pauses of this client's garbage collector are not the receiver's latency.
                gc.collect()
                gc.freeze()
                started, client_cpu = time.perf_counter(), time.process_time()
                server_cpu = server.cpu_seconds()
                waited = (run_queue_wait(), server.waited_seconds())
                done = 0
                for i in range(warmup + rounds):
                    if time.perf_counter() - started > seconds:
                        break
                    batch = payloads.round(concurrency)
                    bodies = [body for _, body in batch]
                    counted = i >= warmup
                    legs = [(base + WEBHOOK_PATH, receiver), (base + BASELINE_PATH, baseline)]
                    for url, series in legs if i % 2 == 0 else legs[::-1]:
                        await _round(session, server, url, bodies, series if counted else None)
                    if counted:
                        done += 1
                        kinds.update(kind for kind, _ in batch)
                wall = time.perf_counter() - started
                cpu = (time.process_time() - client_cpu, server.cpu_seconds() - server_cpu,
                       run_queue_wait() - waited[0], server.waited_seconds() - waited[1])
                async with session.get(base + "/metrics") as resp:
                    exposition = await resp.text()
                async with session.get(base + "/bench/gc") as resp:
                    pauses = await resp.json()
        if profile:
            pstats.Stats(profile_file).sort_stats("tottime").print_stats(profile)
    outcomes = _outcomes(exposition)
    code = _report(receiver, baseline, done, concurrency, (wall, *cpu), kinds, outcomes)
    print("server garbage collector (whole run): " + ", ".join(
        f"gen{g} {runs} run(s), longest {longest * 1e3:.1f} ms"
        for g, (runs, longest) in enumerate(zip(pauses["runs"], pauses["longest_seconds"]))))
    return code


def _outcomes(exposition: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "kpr_webhook_requests_total" and sample.value:
                found[sample.labels["outcome"]] = int(sample.value)
            if sample.name == "kpr_rollbacks_total" and sample.value:
                found[f"rollback {sample.labels['result']}"] = int(sample.value)
    return found


def _report(receiver: Series, baseline: Series, rounds: int, concurrency: int,
            times: tuple[float, ...], kinds: Counter[str], outcomes: dict[str, int]) -> int:
    if not receiver.latencies:
        print("no round was measured (raise --seconds or lower --warmup)")
        return 1
    wall, client_cpu, server_cpu, client_wait, server_wait = times
    print(f"{rounds} rounds x {concurrency} concurrent deliveries per endpoint in {wall:.1f} s "
          f"(warm-up included); CPU: client {client_cpu / wall:.0%}, server {server_cpu / wall:.0%} "
          "of one core")
    print(f"waiting for a core taken by other processes: client {client_wait / wall:.0%}, "
          f"server {server_wait / wall:.0%} of the time (near 0 % on a quiet machine)")
    print("mix per endpoint: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print(f"{'endpoint':<24}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'target':>8}{'ratio':>7}{'server CPU/delivery':>21}")
    for s in (receiver, baseline):
        n = len(s.latencies)
        p99 = s.quantile(0.99) * 1e3
        print(f"{s.name:<24}{n:>7}{s.quantile(0.5) * 1e3:>9.2f}{p99:>9.2f}"
              f"{max(s.latencies) * 1e3:>9.2f}{TARGET_MS:>8.0f}{p99 / TARGET_MS:>7.2f}"
              f"{s.server_cpu / n * 1e6:>18.0f} µs")
    added = (receiver.quantile(0.99) - baseline.quantile(0.99)) * 1e3
    print(f"receiver adds {added:.2f} ms at p99, "
          f"{(receiver.quantile(0.5) - baseline.quantile(0.5)) * 1e3:.2f} ms at p50")
    print("receiver statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(receiver.statuses.items())))
    print("receiver outcomes (all rounds, warm-up included): "
          + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    unexpected = {k: v for k, v in receiver.statuses.items() if k not in (200, 503)}
    unexpected.update({k: v for k, v in baseline.statuses.items() if k != 200})
    if unexpected:
        print(f"unexpected statuses: {unexpected}")
        return 1
    verdict = "meets" if receiver.quantile(0.99) * 1e3 <= TARGET_MS else "misses"
    print(f"receiver p99 {verdict} the target of {TARGET_MS:.0f} ms")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400, help="measured rounds per endpoint")
    parser.add_argument("--seconds", type=float, default=40.0, help="stop starting rounds after this")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile the server and print its top N functions")
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(run(args.rounds, args.seconds, args.concurrency, args.warmup, args.seed,
                             args.profile)))


if __name__ == "__main__":
    main()
