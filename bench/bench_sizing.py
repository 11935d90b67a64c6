"""Benchmark: sizing a node-mode fleet (1,000 nodes x 2,000 services x 2 datapaths, two hours).

Builds the fleet of ``bench.sizing`` (the shape and the series count are printed) as
OpenMetrics text, backfills it into a real Prometheus with ``promtool tsdb
create-blocks-from openmetrics``, starts Prometheus on it with the project's rules
(``alerts/rules/default.yaml``), and measures:

* the judge's full evaluation over Prometheus (``exporter.judge_prom`` + ``Judge``) at the
  data's end, in a process of its own: wall time, queries, peak RSS, and Prometheus' CPU
  seconds over the pass (``/proc/<pid>/stat``); run twice (cold, then warm caches);
* the baseline capture's queries: the four window queries over the baseline window
  (``baseline.window_seconds``) ending at the switch, as a capture from Prometheus runs them;
* the report (``kpr-exporter report`` over the two hours, charts included), own process;
* the recording and alerting rules' evaluation time as Prometheus reports it
  (``/api/v1/rules``: each rule's and group's ``evaluationTime``), the samples the slowest
  rules read, and Prometheus' CPU per minute while it only evaluates rules
  (``bench.sizing_rules``); ``--rules FILE`` (repeatable) measures several rule files in
  turn on the same data, e.g. the shipped file and an earlier version of it.

The data ends ``--lead`` seconds after generation starts (estimated from a 1 % slice built
first), so that it reaches the present by the time Prometheus runs; rule timings are those of
every rule's first evaluation from a start chosen so that the rule files' measurements
straddle the data's end (one file: just after it); each says how many seconds from the
data's end it was evaluated, as the short window empties after it.
Targets: judge pass < 30 s, judge RSS <
300 MiB, no rule > 1 s. Slow (several minutes, a few GiB of disk): not in the default
``make bench``; run ``python -m bench sizing --timeout 3600`` or ``python -m bench.bench_sizing``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import sizing
from bench.sizing_rules import cpu_seconds, load
from bench.sizing_rules import measure as measure_rules
from exporter.demo.processes import PROMTOOL, find_binary
from exporter.demo.prometheus import Prometheus, PrometheusOptions

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "alerts" / "rules" / "default.yaml"
JUDGE_TARGET_S = 30.0
RSS_TARGET_MIB = 300.0


def backfill(source: Path, tsdb: Path) -> float:
    promtool = find_binary(PROMTOOL)
    if promtool is None:
        raise SystemExit("promtool is not installed (`make system-deps`)")
    start = time.monotonic()
    result = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                             str(tsdb)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"promtool backfill failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.monotonic() - start


# --- measured in a process of its own (RSS) ---------------------------------------------


async def measure_judge(url: str, at: float) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from exporter.judge.driver import Judge
    from exporter.judge.settings import JudgeSettings
    from exporter.judge.source_settings import PrometheusSourceSettings
    from exporter.judge.verdict import CANARY_VS_CONTROL, WORSE
    from exporter.judge_prom import PrometheusEvidence

    settings = JudgeSettings(source="prometheus", stale_after_seconds=600.0,
                             prometheus=PrometheusSourceSettings(url=url, timeout_seconds=120.0))
    source = PrometheusEvidence(settings, registry=CollectorRegistry())
    start = time.monotonic()
    evidence = await source.evidence(at)
    fetched = time.monotonic()
    verdicts = Judge(settings).evaluate_evidence(at, evidence, baseline=None, phase="canary")
    done = time.monotonic()
    outcomes: dict[str, int] = {}
    for v in verdicts:
        word = "better" if v.better else v.outcome
        outcomes[word] = outcomes.get(word, 0) + 1
    worse = sorted({v.service for v in verdicts
                    if v.outcome == WORSE and v.comparison == CANARY_VS_CONTROL})
    return {"seconds": done - start, "query_seconds": fetched - start, "worse": worse,
            "statistics_seconds": done - fetched, "queries": source.queries,
            "services": len(evidence.services), "verdicts": len(verdicts),
            "outcomes": outcomes, "problem": evidence.problem, "partial": len(evidence.partial)}


async def measure_baseline(url: str, at: float) -> dict[str, Any]:
    from exporter.baseline.settings import BaselineSettings
    from exporter.report.client import PrometheusClient, session
    from exporter.report.queries import WINDOW_QUERIES

    window = BaselineSettings().window_seconds
    start = time.monotonic()
    async with session(120.0) as http:
        client = PrometheusClient(url, http)
        results = await asyncio.gather(*(client.query(q(window), at)
                                         for q in WINDOW_QUERIES.values()))
    return {"seconds": time.monotonic() - start, "queries": len(WINDOW_QUERIES),
            "window_seconds": window, "rows": sum(len(r) for r in results)}


async def measure_report(url: str, start: float, end: float) -> dict[str, Any]:
    import io

    from exporter.report.report_cmd import cmd_report

    out = io.StringIO()
    with tempfile.TemporaryDirectory() as output:
        began = time.monotonic()
        code = await cmd_report(url, f"{start:.0f}", f"{end:.0f}", output, out=out,
                                timeout=120.0)
    return {"seconds": time.monotonic() - began, "exit": code,
            "summary": out.getvalue().splitlines()[0] if out.getvalue() else ""}


def child_main(argv: list[str]) -> int:
    kind, url, *times = argv
    at = [float(t) for t in times]
    work = {"judge": lambda: measure_judge(url, at[0]),
            "baseline": lambda: measure_baseline(url, at[0]),
            "report": lambda: measure_report(url, at[0], at[1])}[kind]
    result = asyncio.run(work())
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))
    return 0


def in_child(prometheus: Prometheus, *args: str) -> dict[str, Any]:
    """Run one measurement in its own process; adds Prometheus' CPU seconds over it."""
    pid = prometheus.pid
    assert pid is not None
    before = cpu_seconds(pid)
    proc = subprocess.run([sys.executable, "-m", "bench.bench_sizing", "--child", *args],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"measurement {args[0]} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["prometheus_cpu_seconds"] = cpu_seconds(pid) - before
    return result


# --- the run --------------------------------------------------------------------------


def _shape(args: argparse.Namespace, workdir: Path) -> sizing.Shape:
    shape = sizing.Shape(nodes=args.nodes, services=args.services, per_node=args.per_node,
                         hours=args.hours, interval=args.interval)
    lead = args.lead if args.lead is not None else calibrate(shape, workdir)
    end = time.time() + lead
    return replace(shape, end=end - end % shape.interval)


def calibrate(shape: sizing.Shape, workdir: Path) -> float:
    """Seconds from now until Prometheus will serve the whole fleet: a 1 % slice is
    generated and backfilled now, on this machine at its present load, and scaled up."""
    small = replace(shape, nodes=max(2, shape.nodes // 100))
    began = time.monotonic()
    sizing.write(small, workdir / "calibrate.om")
    backfill(workdir / "calibrate.om", workdir / "calibrate-tsdb")
    spent = time.monotonic() - began
    (workdir / "calibrate.om").unlink()
    shutil.rmtree(workdir / "calibrate-tsdb", ignore_errors=True)
    lead = spent * shape.nodes / small.nodes * 1.3 + 120.0
    print(f"calibration: {small.nodes} nodes in {spent:.1f} s; the data will end {lead:.0f} s "
          "from now")
    return lead


async def run(args: argparse.Namespace, workdir: Path) -> None:
    shape = _shape(args, workdir)
    print(f"fleet: {shape.nodes} nodes (every odd one switches to eBPF after "
          f"{shape.switch_after / 3600:g} h), {shape.services} services in {shape.namespaces} "
          f"namespaces; each node calls the {shape.hot} hot services and {shape.per_node} others; "
          f"{shape.hours:g} h at {shape.interval:g} s; {load()}")
    source = workdir / "fleet.om"
    began = time.monotonic()
    counts = sizing.write(shape, source)
    print(f"generate: {time.monotonic() - began:.1f} s, {counts.series:,} series "
          f"({counts.service_series:,} service series, {counts.node_series:,} node series), "
          f"{counts.samples:,} samples, {source.stat().st_size / 2**30:.2f} GiB of text")
    print(f"backfill: {backfill(source, workdir / 'prom' / 'tsdb'):.1f} s (promtool peak RSS "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB); {load()}")
    source.unlink()
    rule_files = [Path(f) for f in args.rules] or [RULES]
    live = workdir / "rules.yaml"
    shutil.copyfile(rule_files[0], live)
    options = PrometheusOptions(rule_files=[live], retention="36500d", scrape_interval="30s",
                                evaluation_interval="30s")
    async with Prometheus(workdir / "prom", options, ready_timeout=600.0) as prometheus:
        print(f"prometheus: ready; data ends {shape.end - time.time():+.0f} s from now; {load()}")
        for attempt in () if "judge" in args.skip else ("cold", "warm"):
            j = in_child(prometheus, "judge", prometheus.url, f"{shape.end}")
            print(f"judge ({attempt}): {j['seconds']:.2f} s ({j['query_seconds']:.2f} s queries, "
                  f"{j['statistics_seconds']:.2f} s statistics), {j['queries']} queries, "
                  f"{j['services']} services, {j['verdicts']} verdicts {j['outcomes']}, problem "
                  f"{j['problem']!r}, partial {j['partial']}; Prometheus CPU "
                  f"{j['prometheus_cpu_seconds']:.2f} s; judge RSS {j['rss_mib']:.0f} MiB; {load()}")
        if "judge" not in args.skip:
            print(f"judge pass: {j['seconds']:.2f} s (target < {JUDGE_TARGET_S:g} s, ratio "
                  f"{j['seconds'] / JUDGE_TARGET_S:.2f})")
            print(f"judge RSS: {j['rss_mib']:.0f} MiB (target < {RSS_TARGET_MIB:g} MiB, ratio "
                  f"{j['rss_mib'] / RSS_TARGET_MIB:.2f})")
        switch = shape.start + shape.switch_step * shape.interval
        if "baseline" not in args.skip:
            b = in_child(prometheus, "baseline", prometheus.url, f"{switch}")
            print(f"baseline capture queries: {b['seconds']:.2f} s, {b['queries']} queries over "
                  f"{b['window_seconds']:g} s, {b['rows']} rows; Prometheus CPU "
                  f"{b['prometheus_cpu_seconds']:.2f} s; RSS {b['rss_mib']:.0f} MiB")
        if "report" not in args.skip:
            r = in_child(prometheus, "report", prometheus.url, f"{shape.start}", f"{shape.end}")
            print(f"report: {r['seconds']:.1f} s (exit {r['exit']}: {r['summary']}); Prometheus "
                  f"CPU {r['prometheus_cpu_seconds']:.1f} s; RSS {r['rss_mib']:.0f} MiB; {load()}")
        await measure_rules(prometheus, live, rule_files, shape.end)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--per-node", type=int, default=10,
                        help="services each node calls besides the hot ones")
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--interval", type=float, default=60.0, help="scrape interval (s)")
    parser.add_argument("--lead", type=float,
                        help="seconds the data reaches past the start of generation (default: "
                             "estimated from a 1 %% slice generated and backfilled first)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("judge", "report", "baseline"),
                        help="leave out a measurement (repeatable)")
    parser.add_argument("--rules", action="append", default=[], metavar="FILE",
                        help="rule file to measure (repeatable, measured in turn on the same "
                             "data; default: alerts/rules/default.yaml)")
    parser.add_argument("--workdir", help="keep the data here (default: a temporary directory)")
    args = parser.parse_args(argv)
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args, workdir))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="kpr-sizing-"))
    try:
        asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
