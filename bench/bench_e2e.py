"""Benchmark: end-to-end throughput, Hubble stream -> reader -> SLI pipeline (brief §10).

Target: the full path receives and processes a stream at >= 85 % of the rate at
which a bare client only receives and decodes the same stream, side by side in
one run.

A sender process (this module with ``--serve``) streams the same pre-serialised
``GetFlowsResponse`` messages (``bench.prebuilt.prebuilt_responses``, ~340
bytes each, the canary scenario's mix) on 127.0.0.1 with
``bench.fastpath.RawStreamServer``, which needs a few percent of a core, so
the receiver is the bottleneck. Each round runs, in alternating order:

* ``bare``: a ``grpc.aio`` ``ObserverStub.GetFlows`` call that deserialises every
  message into the generated ``observer.GetFlowsResponse`` and counts it;
* ``full``: ``HubbleReader.events()`` -> ``Pipeline.process`` with every default
  SLI handler and a static datapath resolver: the loop of ``Exporter._consume``;
* ``threaded``: the reader's receive path (``exporter.sources.hubble.ThreadedCall``): a worker thread
  drives a sync GetFlows stream with ``SingleThreadedUnaryStream`` and queues the
  raw messages; the event loop takes them in batches, converts them with
  ``HubbleConverter`` and runs ``Pipeline.process``.

Each run reports messages/s (wall time), messages per CPU-second of the receiver
(this process, all threads), the CPU time of the receiver and of the sender as a
share of wall time (a receiver near 100 % and a sender far below shows the
client was the limit), and the receiver's voluntary context switches per
message ("sleeps/msg"). grpc.aio hands every message from its poller thread to
the event loop: two sleeps per message, so its rate depends on how fast an idle
core wakes up. On this project's VMs that is slow when the machine is otherwise
idle (~11k msg/s) and fast while the other core is busy (~45k msg/s);
``--busy-neighbour`` runs a spinning process meanwhile to measure that case on
purpose. The best of the rounds is the figure to compare.

``--explore`` adds receive variants (raw bytes, ``read()``, channel options, the
sync API in a thread); ``--profile N`` profiles one more full run with cProfile,
prints the top N functions and the in-process cost of each stage. Run:
``python -m bench.bench_e2e [--messages N] [--rounds R] [--busy-neighbour] [--explore]
[--profile N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.experimental
from prometheus_client import CollectorRegistry

from exporter import model
from exporter._gen.observer import observer_pb2, observer_pb2_grpc
from exporter.model import Event, Flow, LostEvents
from exporter.simulator.scenarios import CANARY_NODE
from exporter.sli import Pipeline, SliSettings, StaticDatapathResolver
from exporter.sources.hubble import GET_FLOWS, HubbleReader, ThreadedCall
from exporter.sources.hubble_convert import HubbleConverter
from exporter.sources.settings import HubbleSettings

TARGET = 0.85
ROOT = Path(__file__).resolve().parents[1]
#: The simulator's nodes after the canary switch: the canary on eBPF, the others kube-proxy.
DATAPATHS = {
    node: model.EBPF if node == CANARY_NODE else model.KUBE_PROXY
    for node in ("node-a", "node-b", "node-c")
}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_SINGLE_THREADED = ((grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),)

Receiver = Callable[[str, int], Awaitable[int]]


# -- the sender process --------------------------------------------------------------------
def _quiet_cancelled(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # Python 3.11's StreamReaderProtocol reports a cancelled connection task as an
    # error when the server stops; that is the normal end here.
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


async def _serve(messages: int, seed: int) -> None:
    from bench.fastpath import RawStreamServer
    from bench.prebuilt import prebuilt_responses

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancelled)
    server = RawStreamServer(prebuilt_responses(messages, seed=seed), repeat=1)
    port = await server.start()
    print(port, flush=True)
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    await server.stop()


class Sender:
    """The sender subprocess: ``target``, ``cpu_seconds()`` and ``close()``."""

    def __init__(self, messages: int, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_e2e", "--serve", "--messages", str(messages),
             "--seed", str(seed)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"sender did not start (said {line!r})")
        self.target = f"127.0.0.1:{int(line)}"

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the receivers -------------------------------------------------------------------------
def _request() -> observer_pb2.GetFlowsRequest:
    return observer_pb2.GetFlowsRequest(follow=True)


def _pipeline() -> Pipeline:
    return Pipeline(SliSettings(), CollectorRegistry(), datapaths=StaticDatapathResolver(DATAPATHS))


async def bare(target: str, expected: int, options: tuple = ()) -> int:
    """Receive and decode into ``GetFlowsResponse``; nothing else."""
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        call = observer_pb2_grpc.ObserverStub(channel).GetFlows(_request())
        n = 0
        async for _ in call:
            n += 1
            if n == expected:
                call.cancel()
                break
    return n


async def _answered() -> bool:
    return True


async def consume(events: AsyncIterator[Event], pipeline: Pipeline, expected: int) -> int:
    """``Exporter._consume``, stopping after ``expected`` flows."""
    process = pipeline.process
    lost = pipeline.events_lost
    n = 0
    try:
        async for event in events:
            if type(event) is Flow:
                process(event)
                n += 1
                if n == expected:
                    break
            elif type(event) is LostEvents:
                lost(event)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    errors = {name: count for name, count in pipeline.stats.errors.items() if count}
    assert not errors, f"handler errors: {errors}"
    return n


async def full(target: str, expected: int) -> int:
    """The exporter's path: ``HubbleReader`` -> ``Pipeline.process``."""
    reader = HubbleReader(HubbleSettings(address=target), registry=CollectorRegistry())
    # The raw sender answers every call with the flow stream, ServerStatus included;
    # a real server answers it with one small message, so take it as answered.
    reader.poll_status = _answered  # type: ignore[method-assign]
    return await consume(reader.events(), _pipeline(), expected)


async def threaded(target: str, expected: int) -> int:
    """``ThreadedCall`` -> ``HubbleConverter.convert`` -> ``Pipeline.process`` on the loop."""
    pipeline = _pipeline()
    process = pipeline.process
    convert = HubbleConverter().convert
    n = 0
    with grpc.insecure_channel(target, options=_SINGLE_THREADED) as channel:
        call = ThreadedCall(channel.unary_stream(
            GET_FLOWS, request_serializer=observer_pb2.GetFlowsRequest.SerializeToString
        ), _request())
        batches = aiter(call)
        try:
            async for batch in batches:
                for raw in batch:
                    event = convert(raw)
                    if type(event) is Flow:
                        process(event)
                        n += 1
                if n >= expected:
                    break
        finally:
            await batches.aclose()  # type: ignore[attr-defined]
    errors = {name: count for name, count in pipeline.stats.errors.items() if count}
    assert not errors, f"handler errors: {errors}"
    return min(n, expected)


# Variants for --explore: where the receive time goes, and what else could be cheaper.
async def bare_raw(target: str, expected: int) -> int:
    """Receive only: raw bytes (no deserialiser), ``async for``."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_stream(
            GET_FLOWS, request_serializer=observer_pb2.GetFlowsRequest.SerializeToString
        )(_request())
        n = 0
        async for _ in call:
            n += 1
            if n == expected:
                call.cancel()
                break
    return n


async def bare_read(target: str, expected: int) -> int:
    """Decode into ``GetFlowsResponse``, reading with ``await call.read()``."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = observer_pb2_grpc.ObserverStub(channel).GetFlows(_request())
        n = 0
        read, eof = call.read, grpc.aio.EOF
        while await read() is not eof:
            n += 1
            if n == expected:
                call.cancel()
                break
    return n


async def full_polled(target: str, expected: int) -> int:
    """``full`` with the reader's own ServerStatus poll against the raw sender."""
    reader = HubbleReader(HubbleSettings(address=target), registry=CollectorRegistry())
    return await consume(reader.events(), _pipeline(), expected)


async def inline(target: str, expected: int) -> int:
    """grpc.aio raw bytes -> ``HubbleConverter.convert`` -> ``Pipeline.process`` in
    one loop: the reader's generator layers, dedup and bookkeeping left out."""
    pipeline = _pipeline()
    process = pipeline.process
    convert = HubbleConverter().convert
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_stream(
            GET_FLOWS, request_serializer=observer_pb2.GetFlowsRequest.SerializeToString
        )(_request())
        n = 0
        async for raw in call:
            event = convert(raw)
            if type(event) is Flow:
                process(event)
                n += 1
                if n == expected:
                    call.cancel()
                    break
    return n


def _sync_stream(target: str, expected: int, handle: Callable[[bytes], object],
                 options: tuple = ()) -> int:
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.unary_stream(
            GET_FLOWS, request_serializer=observer_pb2.GetFlowsRequest.SerializeToString
        )(_request())
        n = 0
        for raw in call:
            handle(raw)
            n += 1
            if n == expected:
                call.cancel()
                break
    return n


def _sync(options: tuple, work: str) -> Receiver:
    async def receive(target: str, expected: int) -> int:
        if work == "decode":
            handle: Callable[[bytes], object] = observer_pb2.GetFlowsResponse.FromString
        else:
            process = _pipeline().process
            convert = HubbleConverter().convert

            def handle(raw: bytes) -> None:
                event = convert(raw)
                if type(event) is Flow:
                    process(event)
        return await asyncio.to_thread(_sync_stream, target, expected, handle, options)
    return receive


_THROUGHPUT = (("grpc.optimization_target", "throughput"),)

EXPLORE: dict[str, tuple[str, Receiver]] = {
    "raw": ("grpc.aio, raw bytes, async for: the receive floor", bare_raw),
    "read": ("grpc.aio, decode, await call.read() instead of async for", bare_read),
    "throughput": ("grpc.aio, decode, grpc.optimization_target=throughput",
                   lambda t, n: bare(t, n, _THROUGHPUT)),
    "polled": ("full, with the reader's ServerStatus poll against the raw sender",
               full_polled),
    "inline": ("grpc.aio raw -> convert -> process in one loop, no reader", inline),
    "sync": ("sync API in a thread (channel spin thread), decode", _sync((), "decode")),
    "st": ("sync API, SingleThreadedUnaryStream, in a thread, decode",
           _sync(_SINGLE_THREADED, "decode")),
    "st-all": ("sync API, SingleThreadedUnaryStream: convert + process all in the thread",
               _sync(_SINGLE_THREADED, "process")),
}
MAIN: dict[str, Receiver] = {"bare": bare, "full": full, "threaded": threaded}


# -- measuring -----------------------------------------------------------------------------
@dataclass
class Run:
    name: str
    messages: int
    wall: float
    receiver_cpu: float
    sender_cpu: float
    switches: int  # voluntary context switches of the receiver's threads

    @property
    def rate(self) -> float:
        return self.messages / self.wall

    @property
    def per_cpu(self) -> float:
        return self.messages / self.receiver_cpu

    @property
    def receiver_pct(self) -> float:
        return 100 * self.receiver_cpu / self.wall

    @property
    def sender_pct(self) -> float:
        return 100 * self.sender_cpu / self.wall

    def line(self) -> str:
        return (f"{self.name:<10} {self.rate:>9,.0f} msg/s  {self.per_cpu:>9,.0f} msg/CPU-s  "
                f"{self.wall:6.2f} s  receiver CPU {self.receiver_pct:4.0f} %  "
                f"sender CPU {self.sender_pct:3.0f} %  "
                f"{self.switches / self.messages:4.2f} sleeps/msg")


def _own_usage() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_nvcsw


async def measure(name: str, receive: Receiver, sender: Sender, expected: int) -> Run:
    gc.collect()
    s0, (r0, v0), t0 = sender.cpu_seconds(), _own_usage(), time.perf_counter()
    n = await receive(sender.target, expected)
    wall = time.perf_counter() - t0
    r1, v1 = _own_usage()
    run = Run(name, n, wall, r1 - r0, sender.cpu_seconds() - s0, v1 - v0)
    if n != expected:
        raise RuntimeError(f"{name}: received {n} of {expected} messages")
    return run


async def profile(sender: Sender, expected: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        await full(sender.target, expected)
    finally:
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def stage_costs(messages: int, seed: int) -> dict[str, float]:
    """CPU microseconds per message of each in-process stage over the sender's messages."""
    from bench.prebuilt import prebuilt_responses

    raws = prebuilt_responses(messages, seed=seed)
    parse = observer_pb2.GetFlowsResponse.FromString
    convert = HubbleConverter().convert
    costs: dict[str, float] = {}
    start = time.process_time()
    for raw in raws:
        parse(raw)
    costs["decode into GetFlowsResponse (bare)"] = time.process_time() - start
    start = time.process_time()
    events = [convert(raw) for raw in raws]
    costs["HubbleConverter.convert"] = time.process_time() - start
    process = _pipeline().process
    gc.collect()
    start = time.process_time()
    for event in events:
        process(event)
    costs["Pipeline.process (all handlers)"] = time.process_time() - start
    return {stage: 1e6 * seconds / len(raws) for stage, seconds in costs.items()}


@dataclass
class Summary:
    best: float
    median: float
    per_cpu: float  # median messages per receiver CPU-second
    receiver_pct: float
    sender_pct: float


def summarise(runs: list[Run]) -> Summary:
    return Summary(
        best=max(r.rate for r in runs),
        median=statistics.median(r.rate for r in runs),
        per_cpu=statistics.median(r.per_cpu for r in runs),
        receiver_pct=statistics.median(r.receiver_pct for r in runs),
        sender_pct=statistics.median(r.sender_pct for r in runs),
    )


#: The busy neighbour: spins for argv[1] seconds at most.
_SPIN = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


async def run(args: argparse.Namespace) -> int:
    sender = Sender(args.messages, args.seed)
    neighbour = None
    if args.busy_neighbour:
        # Bounded in time, and stopped by pid when the measurement ends.
        neighbour = subprocess.Popen([sys.executable, "-c", _SPIN, "900"])
        print(f"busy neighbour: pid {neighbour.pid} spins on one core during the run")
    try:
        print(f"sender pid {sender.proc.pid} on {sender.target}: {args.messages:,} "
              f"pre-serialised GetFlowsResponse per call; receiver pid {os.getpid()}")
        warm = min(args.messages, 10_000)
        for receive in MAIN.values():
            await receive(sender.target, warm)
        runs: dict[str, list[Run]] = {name: [] for name in MAIN}
        names = list(MAIN)
        for i in range(args.rounds):
            for name in names if i % 2 == 0 else reversed(names):
                result = await measure(name, MAIN[name], sender, args.messages)
                runs[name].append(result)
                print(f"round {i + 1}  {result.line()}", flush=True)
        for name, (what, receive) in EXPLORE.items() if args.explore else ():
            result = await measure(name, receive, sender, args.messages)
            print(f"explore  {result.line()}  {what}", flush=True)

        print("\nbare = grpc.aio stub decoding into GetFlowsResponse; full = HubbleReader -> "
              "Pipeline.process (all handlers);\nthreaded = proposed receive path: sync "
              "single-threaded stream in a worker thread, raw batches to the loop, "
              "convert + process there")
        sums = {name: summarise(found) for name, found in runs.items()}
        for name, s in sums.items():
            print(f"{name:<9} best {s.best:>9,.0f} msg/s  median {s.median:>9,.0f} msg/s  "
                  f"{s.per_cpu:>9,.0f} msg/CPU-s  receiver CPU {s.receiver_pct:4.0f} %  "
                  f"sender CPU {s.sender_pct:3.0f} % (medians)")
        bare_s = sums["bare"]
        for name in ("full", "threaded"):
            s = sums[name]
            paired = ", ".join(f"{f.rate / b.rate:.2f}" for b, f in zip(runs["bare"], runs[name]))
            print(f"{name} / bare: best {s.best / bare_s.best:.2f}, median "
                  f"{s.median / bare_s.median:.2f}, per CPU-second "
                  f"{s.per_cpu / bare_s.per_cpu:.2f}; per round {paired}")
        spread = max(r.rate for r in runs["bare"]) / min(r.rate for r in runs["bare"])
        if spread > 1.25:
            print(f"note: bare rates differ {spread:.1f}x between rounds: other processes "
                  "competed for the cores; the best-of figures are the ones to compare")
        ratio = sums["full"].best / bare_s.best
        print(f"target: full >= {TARGET:.2f} of bare; ratio: {ratio:.3f} "
              f"({'met' if ratio >= TARGET else 'not met'}; threaded: "
              f"{sums['threaded'].best / bare_s.best:.2f})")
        if args.profile:
            print(f"\ncProfile of one more full run (top {args.profile} by own time):")
            print(await profile(sender, args.messages, args.profile))
            print("in-process stages over the same messages (no gRPC), CPU per message:")
            for stage, micros in stage_costs(args.messages, args.seed).items():
                print(f"  {stage:<40} {micros:6.2f} us")
            for name, s in sums.items():
                print(f"  whole {name:<34} {1e6 / s.per_cpu:6.2f} us (median, from above)")
    finally:
        sender.close()
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages per call")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every main receiver")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--explore", action="store_true", help="also measure receive variants")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile one more full run, print the top N functions")
    parser.add_argument("--busy-neighbour", action="store_true",
                        help="keep the other core busy with a spinning process meanwhile")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.messages, args.seed))
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
