"""Benchmark: ``/metrics`` render at 2,000 services x 2 datapaths (brief §10: <= 100 ms).

Fills a pipeline through its handlers, for every service on both datapaths:
one established handshake, forwarded flows, a drop for one service in ten and
L7 responses for one in five. Then times, best of ``--repeat``:

* ``generate_latest(registry)`` over the registry the pipeline registered on
  (the stock prometheus_client path), and
* ``Pipeline.render()``, the engine's own text renderer (same samples; checked), and
* the standard exporter metrics the exporter's registry adds to every scrape
  (``kpr_exporter_build_info``, the process and platform collectors).

Run: ``python -m bench.bench_render [--services N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import buildinfo, model
from exporter.model import Endpoint, Flow, L7Http, ServiceRef
from exporter.sli import Pipeline, SliSettings, StaticDatapathResolver

TARGET_MS = 100.0
NS = 1_000_000_000


def fill(services: int) -> tuple[Pipeline, CollectorRegistry]:
    nodes = {"node-kp": model.KUBE_PROXY, "node-ebpf": model.EBPF}
    registry = CollectorRegistry()
    pipeline = Pipeline(
        SliSettings(max_services_per_metric=services), registry,
        datapaths=StaticDatapathResolver(nodes), clock=lambda: 1_764_000_000.0,
    )
    client = Endpoint("client", "web", 30001, 101, "web")
    t = 1_764_000_000 * NS
    port = 10000
    for i in range(services):
        svc = ServiceRef(f"ns{i % 40}", f"service-{i}")
        for node in nodes:
            port += 1
            t += 10_000
            ip = f"10.0.{port // 250 % 250}.{port % 250}"
            syn = Flow(t, node, model.FORWARDED, model.L3_L4, 4, 3, ip, "10.96.0.1", model.TCP,
                       port, 80, model.SYN, client, None, None, svc, False)
            ack = Flow(t + 300_000 + i * 10, node, model.FORWARDED, model.L3_L4, 4, 0,
                       "10.96.0.1", ip, model.TCP, 80, port, model.SYN | model.ACK, None, client,
                       svc, None, True, observation_point=model.TO_ENDPOINT)
            pipeline.process(syn)
            pipeline.process(ack)
            if i % 10 == 0:
                pipeline.process(Flow(t, node, model.DROPPED, model.L3_L4, 1, 158, ip,
                                      "10.96.0.1", model.TCP, port, 80, model.SYN, client, None,
                                      None, svc, drop_reason=158))
            if i % 5 == 0:
                pipeline.process(Flow(t, node, model.FORWARDED, model.L7, 129, 0, "10.1.0.1", ip,
                                      source_service=svc, is_reply=True,
                                      traffic_direction=model.EGRESS,
                                      l7=L7Http(model.L7_RESPONSE, 2_000_000 + i, 200, "GET")))
    return pipeline, registry


def best_ms(fn, repeat: int) -> tuple[float, bytes]:
    best, out = float("inf"), b""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - start) * 1000)
    return best, out


def samples(text: bytes) -> set:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for fam in text_string_to_metric_families(text.decode())
        for s in fam.samples
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pipeline, registry = fill(args.services)
    stock_ms, stock = best_ms(lambda: generate_latest(registry), args.repeat)
    fast_ms, fast = best_ms(pipeline.render, args.repeat)
    standard = CollectorRegistry()
    buildinfo.register(standard)
    std_ms, std = best_ms(lambda: generate_latest(standard), max(args.repeat, 20))
    same = samples(stock) == samples(fast)
    lines = stock.count(b"\n")
    print(f"{args.services} services x 2 datapaths: {lines:,} lines, {len(stock) / 1e6:.1f} MB")
    print(f"generate_latest(registry): {stock_ms:.1f} ms; ratio to target: "
          f"{stock_ms / TARGET_MS:.2f} (lower is better)")
    print(f"Pipeline.render():         {fast_ms:.1f} ms; ratio to target: "
          f"{fast_ms / TARGET_MS:.2f} (lower is better); same samples: {same}")
    std_samples = sum(1 for line in std.splitlines() if line and not line.startswith(b"#"))
    print(f"standard exporter metrics: {std_ms:.2f} ms, {std_samples} samples; "
          f"with Pipeline.render(): {fast_ms + std_ms:.1f} ms")
    print(f"target: <= {TARGET_MS:.0f} ms")


if __name__ == "__main__":
    main()
