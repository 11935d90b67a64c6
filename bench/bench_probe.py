"""Benchmark: one verification probe's CPU and memory at the default rate (issue target:
under 2 % of a core and 60 MiB).

This process runs the emulated datapath on loopback (``EmulatedCluster``, ``--nodes`` nodes,
healthy); a fresh subprocess is the probe: the probe's own modules, its targets read from a
target file every round (as ``kpr-exporter probe`` does), dialers bound to its node's
addresses, and every check of the vocabulary against its node and ``k`` sampled others. The
child starts its ``/metrics`` listener, runs ``--rounds`` rounds back to back after one
warm-up round, renders its exposition twice per round (two scrapes per 30 s round), and reports
its CPU time (``process_time``) and peak resident memory (``VmHWM``). The long-lived
connection's pings follow each other at once: the probe waits idle between them, so the CPU
is the same as at the default 5 s spacing. CPU share at the default rate = CPU per round /
the default interval. Run: ``python -m bench.bench_probe [--nodes N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from exporter.verify import targetfile
from exporter.verify.emulator.cluster import EmulatedCluster
from exporter.verify.emulator.scenario import load
from exporter.verify.settings import ProbeSettings

TARGET_CPU_PERCENT = 2.0
TARGET_MIB = 60.0

_CHILD = r"""
import asyncio, json, sys, time

def status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])

from prometheus_client import CollectorRegistry, generate_latest
from exporter.verify import targetfile
from exporter.verify.checks import Limits
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.verify.net import Dialer
from exporter.verify.service import ProbeLoop
from exporter.web import Server, Surface, build_app

cfg = json.loads(open(sys.argv[1]).read())
virtual = {(h, p): tuple(to) for h, p, to in cfg["resolve"]}
resolve = lambda host, port: virtual.get((host, port), (host, port))
registry = CollectorRegistry()
loop = ProbeLoop(node=cfg["node"], host=Dialer(cfg["host"], resolve=resolve),
                 pod=Dialer(cfg["pod"], resolve=resolve),
                 load=lambda: targetfile.load(cfg["targets"]),
                 metrics=ProbeMetrics(registry), status=ProbeStatus(cfg["node"], registry),
                 interval=cfg["interval"], k=cfg["k"],
                 limits=Limits(timeout=cfg["timeout"], ping_interval=0.0))

async def main():
    server = Server(build_app(Surface(registry)), "127.0.0.1:0")  # its /metrics listener
    await server.start()
    await loop.round()  # warm-up: first connections, caches
    cpu0, wall0 = time.process_time(), time.monotonic()
    results = failed = 0
    for _ in range(cfg["rounds"]):
        found = await loop.round()
        results += len(found)
        failed += sum(1 for r in found if r.result != "pass")
        for _ in range(2):
            generate_latest(registry)
    await server.stop()
    return {"cpu": time.process_time() - cpu0, "wall": time.monotonic() - wall0,
            "results": results, "not_passed": failed, "rss_kib": status_kib("VmRSS"),
            "hwm_kib": status_kib("VmHWM")}

print(json.dumps(asyncio.run(main())))
"""


async def _run(nodes: int, rounds: int, network: int) -> dict:
    defaults = ProbeSettings()
    scenario = load({"name": "bench", "network": network,
                     "nodes": [{"name": f"node-{i:02d}"} for i in range(1, nodes + 1)]})
    async with EmulatedCluster(scenario) as cluster:
        node = scenario.node_names[0]
        view = cluster.nodes[node]
        t = cluster.targets()
        virtual = [(h, p, view.resolve(h, p)) for h, p in (
            t.cluster_ip, t.affinity, t.no_endpoints, t.apiserver, (t.loopback, t.node_port),
            *([t.loadbalancer] if t.loadbalancer else []))]
        with tempfile.TemporaryDirectory(prefix="kpr-bench-probe-") as tmp:
            targets = Path(tmp) / "targets.yaml"
            targets.write_text(yaml.safe_dump(targetfile.dump(cluster.targets())))
            cfg = Path(tmp) / "probe.json"
            cfg.write_text(json.dumps({
                "node": node, "host": view.addresses.node_ip, "pod": view.addresses.pod_ip,
                "resolve": virtual, "targets": str(targets), "rounds": rounds,
                "interval": defaults.interval_seconds, "k": defaults.sample_size,
                "timeout": defaults.timeout_seconds}))
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _CHILD, str(cfg), stdout=subprocess.PIPE)
            out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the probe process failed (exit {proc.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--network", type=int, default=199,
                        help="the emulator's 127.<network>.0.0/16")
    args = parser.parse_args()
    defaults = ProbeSettings()
    result = asyncio.run(_run(args.nodes, args.rounds, args.network))
    per_round = result["cpu"] / args.rounds
    share = 100 * per_round / defaults.interval_seconds
    peak = result["hwm_kib"] / 1024
    print(f"probe on 1 of {args.nodes} emulated nodes, k={defaults.sample_size}, every "
          f"{defaults.interval_seconds:g} s: {args.rounds} rounds, "
          f"{result['results'] / args.rounds:.0f} results per round "
          f"({result['not_passed']} not passed), {result['wall'] / args.rounds * 1e3:.0f} ms "
          "wall per round")
    print(f"CPU: {per_round * 1e3:.1f} ms per round -> {share:.3f} % of a core at one round "
          f"per {defaults.interval_seconds:g} s")
    print(f"target: < {TARGET_CPU_PERCENT:g} % of a core; ratio: "
          f"{share / TARGET_CPU_PERCENT:.3f} (lower is better)")
    print(f"memory: peak RSS {peak:.1f} MiB (now {result['rss_kib'] / 1024:.1f} MiB)")
    print(f"target: < {TARGET_MIB:g} MiB; ratio: {peak / TARGET_MIB:.2f} (lower is better)")


if __name__ == "__main__":
    main()
