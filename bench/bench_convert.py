"""Benchmark: protobuf decode alone vs decode + conversion to ``model`` events.

Run ``python -m bench.bench_convert``. Uses realistic Hubble flows (the
kube-proxy, KPR socket-LB, drop and L7 examples of the reference set, 230-380
bytes on the wire, TCP ports varied so caches see many connections) and prints
flows/s for each stage plus the share of time conversion adds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from google.protobuf import json_format

from exporter._gen.flow import flow_pb2
from exporter._gen.hubbleview import hubbleview_pb2
from exporter._gen.observer import observer_pb2
from exporter.sources.hubble_convert import HubbleConverter

EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "hubble" / "example-flows.jsonl"


def _payloads(distinct: int) -> list[bytes]:
    """Serialized ``GetFlowsResponse`` messages built from the example flows."""
    flows = []
    for line in EXAMPLES.read_text().splitlines():
        if line.strip():
            flows.append(json_format.ParseDict(json.loads(line)["flow"], flow_pb2.Flow()))
    out = []
    for i in range(distinct):
        f = flow_pb2.Flow()
        f.CopyFrom(flows[i % len(flows)])
        f.time.seconds += i // len(flows)
        f.uuid = f"00000000-0000-4000-8000-{i:012d}"
        if f.l4.HasField("TCP") and f.l4.TCP.source_port > 1024:
            f.l4.TCP.source_port = 32768 + i % 28000
        out.append(
            observer_pb2.GetFlowsResponse(flow=f, node_name=f.node_name, time=f.time)
            .SerializeToString()
        )
    return out


def _rate(fn, payloads: list[bytes], rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        fn(payloads)
        best = max(best, len(payloads) / (time.perf_counter() - start))
    return best


def decode_only(payloads: list[bytes]) -> None:
    parse = observer_pb2.GetFlowsResponse.FromString
    for raw in payloads:
        parse(raw)


def decode_view(payloads: list[bytes]) -> None:
    parse = hubbleview_pb2.Response.FromString
    for raw in payloads:
        parse(raw)


def decode_convert(payloads: list[bytes], converter: HubbleConverter | None = None) -> None:
    convert = (converter or HubbleConverter()).convert
    for raw in payloads:
        convert(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200_000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5, help="best of N rounds")
    args = parser.parse_args(argv)

    payloads = _payloads(args.flows)
    size = sum(map(len, payloads)) / len(payloads)
    converter = HubbleConverter()
    decode = _rate(decode_only, payloads, args.rounds)
    view = _rate(decode_view, payloads, args.rounds)
    both = _rate(lambda p: decode_convert(p, converter), payloads, args.rounds)
    convert_us = (1 / both - 1 / decode) * 1e6
    print(f"messages            {len(payloads)} x {args.rounds} rounds, mean {size:.0f} bytes")
    print(f"decode only (full)  {decode:12,.0f} flows/s   observer.GetFlowsResponse")
    print(f"decode only (view)  {view:12,.0f} flows/s   hubbleview.Response")
    print(f"decode + convert    {both:12,.0f} flows/s   -> model events")
    print(f"conversion cost     {convert_us:12.2f} us/flow over the full decode")
    print(f"ratio               {both / decode:12.2f} of the full decode rate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
