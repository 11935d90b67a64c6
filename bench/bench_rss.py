"""Benchmark: resident memory with 200,000 half-open connections tracked (brief §10: <= 150 MiB).

A fresh subprocess imports what the exporter process imports (the SLI engine,
prometheus_client, grpc, aiohttp, kubernetes), builds the pipeline, feeds 200,000 client
SYNs that never get an answer (fresh address strings per flow, as decoded
messages have), checks they are all tracked, and reports its VmRSS. Run:
``python -m bench.bench_rss [--connections N]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

TARGET_MIB = 150.0

_CHILD = r"""
import json, sys

def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

import grpc, aiohttp, kubernetes  # the exporter process has these loaded too
from prometheus_client import CollectorRegistry, generate_latest
from exporter import model
from exporter.model import Endpoint, Flow, ServiceRef
from exporter.sli import Pipeline, SliSettings, StaticDatapathResolver

n = int(sys.argv[1])
base = rss_kib()
nodes = [f"node-{i}" for i in range(10)]
resolver = StaticDatapathResolver({node: model.EBPF if i % 2 else model.KUBE_PROXY
                                   for i, node in enumerate(nodes)})
services = [ServiceRef(f"ns{i % 20}", f"svc{i}") for i in range(2000)]
client = Endpoint("client", "web", 30001, 101, "web", ("k8s:app=web",))
registry = CollectorRegistry()
pipeline = Pipeline(SliSettings(table_max_entries=max(n, 1)), registry, datapaths=resolver)
t = 1_764_000_000 * 1_000_000_000
for i in range(n):
    pipeline.process(Flow(
        t + i * 1000, nodes[i % 10], model.FORWARDED, model.L3_L4, 4, 3,
        f"10.{i % 7}.{(i >> 8) % 250}.{i % 250}", f"10.96.{(i >> 4) % 200}.{i % 200}",
        model.TCP, 20000 + (i % 40000), 8080, model.SYN, client, None, None,
        services[i % 2000], False,
    ))
tracked = pipeline.stats.entries["handshake"]()
generate_latest(registry)
print(json.dumps({"base_kib": base, "rss_kib": rss_kib(), "tracked": tracked}))
"""


def measure(connections: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(connections)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200_000)
    args = parser.parse_args()
    result = measure(args.connections)
    assert result["tracked"] == args.connections, result
    rss = result["rss_kib"] / 1024
    base = result["base_kib"] / 1024
    per = (result["rss_kib"] - result["base_kib"]) * 1024 / max(args.connections, 1)
    print(f"half-open connections tracked: {result['tracked']:,}")
    print(f"RSS: {rss:.1f} MiB (after imports: {base:.1f} MiB; table and series: "
          f"{rss - base:.1f} MiB, about {per:.0f} bytes per connection)")
    print(f"target: <= {TARGET_MIB:.0f} MiB; ratio: {rss / TARGET_MIB:.2f} (lower is better)")


if __name__ == "__main__":
    main()
