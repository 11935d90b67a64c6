"""Benchmark: the SLI handlers alone, in-process (brief §10: >= 200,000 flows/s).

Builds a realistic mix of both datapaths with ``exporter.model`` objects, then
times ``Pipeline.process`` over it with every handler enabled. Prints the rate,
the target and the ratio. Run: ``python -m bench.bench_handlers [--flows N] [--repeat R]``.

The mix: per connection, the flows Hubble shows with its default monitor
aggregation (TCP flag changes), following the reference examples:

* kube-proxy client node: SYN pre-DNAT (``destination_service``), SYN post-DNAT,
  the server node's SYN, the server's SYN-ACK, the SYN-ACK delivered to the
  client (``source_service``), then FIN/ACK on both nodes;
* eBPF (socket-LB) client node: the two trace-sock events, SYN to the backend,
  the server node's SYN, both SYN-ACK observations, FINs;
* about 8 % of connections add a dropped SYN and 10 % an L7 HTTP response.

Endpoints, Services and node names are shared objects, as the Hubble converter
caches them.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections import Counter

from prometheus_client import CollectorRegistry

from exporter import model
from exporter.model import Endpoint, Flow, L7Http, ServiceRef
from exporter.sli import Pipeline, SliSettings, StaticDatapathResolver

TARGET = 200_000.0

NS = 1_000_000_000


def build_mix(
    n_flows: int, *, services: int = 200, nodes: int = 10, seed: int = 1
) -> tuple[list[Flow], dict[str, str]]:
    """About ``n_flows`` flows, and the node -> datapath mapping (half the nodes eBPF)."""
    rng = random.Random(seed)
    node_names = [f"node-{i}" for i in range(nodes)]
    datapaths = {n: (model.EBPF if i % 2 else model.KUBE_PROXY) for i, n in enumerate(node_names)}
    svc_refs = [ServiceRef(f"ns{i % 20}", f"svc{i}") for i in range(services)]
    vips = [f"10.96.{i // 250}.{i % 250}" for i in range(services)]
    backends = [
        [(f"10.1.{(i * 3 + b) % 250}.{b + 10}", node_names[(i + b) % nodes]) for b in range(3)]
        for i in range(services)
    ]
    clients = [
        (f"10.0.{c % nodes}.{c // nodes + 5}", node_names[c % nodes],
         Endpoint("client", f"web-{c}", 30001, 100 + c, "web", ("k8s:app=web",)))
        for c in range(nodes * 20)
    ]
    remote_client = Endpoint("client", "web", 30001, 0, "web", ("k8s:app=web",))
    server_local = Endpoint("server", "api", 30002, 202, "api", ("k8s:app=api",))
    server_remote = Endpoint("server", "api", 30002, 0, "api", ("k8s:app=api",))

    flows: list[Flow] = []
    t = 1_764_000_000 * NS
    port = 30000
    cookie = 1
    while len(flows) < n_flows:
        s = rng.randrange(services)
        svc, vip = svc_refs[s], vips[s]
        backend_ip, server_node = backends[s][rng.randrange(3)]
        client_ip, client_node, client = clients[rng.randrange(len(clients))]
        port = port + 1 if port < 60000 else 30001
        t += rng.randrange(2_000, 8_000)
        rtt = rng.randrange(80_000, 900_000)
        ebpf = datapaths[client_node] == model.EBPF
        common = dict(protocol=model.TCP, verdict=model.FORWARDED, type=model.L3_L4)
        if ebpf:
            cookie += 1
            flows.append(Flow(t - 20_000, client_node, model.TRACED, model.SOCK, 7, 1,
                              client_ip, vip, model.TCP, 0, 8080, 0, client, None, None, svc,
                              None, 0, 0, 0, model.SOCK_XLATE_PRE_FWD, cookie))
            flows.append(Flow(t - 20_000, client_node, model.TRACED, model.SOCK, 7, 2,
                              client_ip, backend_ip, model.TCP, 0, 8080, 0, client, server_remote,
                              None, None, None, 0, 0, 0, model.SOCK_XLATE_POST_FWD, cookie))
        else:
            flows.append(Flow(t, client_node, src_ip=client_ip, dst_ip=vip, src_port=port,
                              dst_port=8080, tcp_flags=model.SYN, source=client,
                              destination_service=svc, is_reply=False,
                              observation_point=model.TO_STACK, **common))
        flows.append(Flow(t + 1_000, client_node, src_ip=client_ip, dst_ip=backend_ip,
                          src_port=port, dst_port=8080, tcp_flags=model.SYN, source=client,
                          destination=server_remote, is_reply=False,
                          observation_point=model.TO_OVERLAY, **common))
        flows.append(Flow(t + rtt // 3, server_node, src_ip=client_ip, dst_ip=backend_ip,
                          src_port=port, dst_port=8080, tcp_flags=model.SYN,
                          source=remote_client, destination=server_local, is_reply=False,
                          observation_point=model.TO_ENDPOINT, **common))
        syn_ack = model.SYN | model.ACK
        flows.append(Flow(t + rtt // 2, server_node, src_ip=backend_ip, dst_ip=client_ip,
                          src_port=8080, dst_port=port, tcp_flags=syn_ack, source=server_local,
                          destination=remote_client, is_reply=True,
                          observation_point=model.TO_OVERLAY, **common))
        flows.append(Flow(t + rtt, client_node, src_ip=vip if not ebpf else backend_ip,
                          dst_ip=client_ip, src_port=8080, dst_port=port, tcp_flags=syn_ack,
                          source=server_remote, destination=client,
                          source_service=None if ebpf else svc, is_reply=True,
                          observation_point=model.TO_ENDPOINT, **common))
        fin = model.FIN | model.ACK
        for node, src, dst, sp, dp, reply in (
            (client_node, client_ip, backend_ip, port, 8080, False),
            (server_node, backend_ip, client_ip, 8080, port, True),
        ):
            flows.append(Flow(t + 5 * rtt, node, src_ip=src, dst_ip=dst, src_port=sp,
                              dst_port=dp, tcp_flags=fin, source=client if not reply else
                              server_local, is_reply=reply, observation_point=model.TO_OVERLAY,
                              **common))
        if rng.random() < 0.10:
            flows.append(Flow(t + 4 * rtt, client_node, model.FORWARDED, model.L7, 129, 0,
                              backend_ip, client_ip, source=server_remote, destination=client,
                              source_service=svc, is_reply=True,
                              traffic_direction=model.EGRESS,
                              l7=L7Http(model.L7_RESPONSE, rng.randrange(200_000, 50_000_000),
                                        rng.choice((200, 200, 200, 404, 503)), "GET")))
        if rng.random() < 0.08:
            reason = rng.choice((158, 133, 151, 207))
            flows.append(Flow(t + 2_000, client_node, model.DROPPED, model.L3_L4, 1, reason,
                              client_ip, vip, model.TCP, port + 1, 8080, model.SYN, client, None,
                              None, svc, None, drop_reason=reason))
    return flows[:n_flows], datapaths


def run(n_flows: int, repeat: int) -> float:
    flows, datapaths = build_mix(n_flows)
    best = 0.0
    for _ in range(repeat):
        registry = CollectorRegistry()
        pipeline = Pipeline(
            SliSettings(), registry, datapaths=StaticDatapathResolver(datapaths),
            clock=time.time,
        )
        gc.collect()
        start = time.perf_counter()
        process = pipeline.process
        for flow in flows:
            process(flow)
        elapsed = time.perf_counter() - start
        best = max(best, len(flows) / elapsed)
        assert not any(pipeline.stats.errors.values()), pipeline.stats.errors
    kinds = Counter(
        "sock" if f.type == 3 else "l7" if f.type == 2 else "drop" if f.verdict == 2 else "l3l4"
        for f in flows
    )
    print(f"flows: {len(flows)} ({dict(kinds)}), handlers: {', '.join(SliSettings().handlers)}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rate = run(args.flows, args.repeat)
    print(f"handlers alone: {rate:,.0f} flows/s (best of {args.repeat})")
    print(f"target: >= {TARGET:,.0f} flows/s; ratio: {rate / TARGET:.2f}")


if __name__ == "__main__":
    main()
