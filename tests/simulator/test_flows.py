"""Flow shapes against the fact sheet's examples (tests/data/hubble/example-flows.jsonl).

Matrix: one kube-proxy connection (client node-a, backend node-b), one KPR
connection (client node-b, backend node-a), a KPR-sensitive drop, an L7 HTTP
response: field by field after encoding to protobuf and printing the way
``hubble observe -o json`` does; time, uuid, the client's port and the socket
cookie differ by nature. Then same-node connections, refused, timed-out
attempts, and the handshake measured at the client node equal to the drawn latency.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from google.protobuf import json_format

from exporter.model import (
    ACK, DROPPED, EBPF, L7, RST, SOCK, SYN, TO_ENDPOINT, TO_OVERLAY, TO_STACK, Flow,
)
from exporter.simulator.encode import encode_flow
from exporter.simulator.flows import DEFAULT_EPOCH_NS, generate_flows
from exporter.simulator.scenarios import SCENARIOS, DatapathProfile, Latency, Switch

EXAMPLES = Path(__file__).parent.parent / "data" / "hubble" / "example-flows.jsonl"


def examples(prefix: str) -> list[dict]:
    rows = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    return [r["flow"] for r in rows if r["example"].startswith(prefix)]


def as_json(flow: Flow) -> dict:
    return json_format.MessageToDict(encode_flow(flow), preserving_proto_field_name=True)


def normalise(d: dict, *, drop: tuple[str, ...] = ()) -> dict:
    d = json.loads(json.dumps(d))
    for key in ("time", "uuid", "cgroup_id", "socket_cookie", *drop):
        d.pop(key, None)
    tcp = d.get("l4", {}).get("TCP", {})
    for port in ("source_port", "destination_port"):
        if tcp.get(port) not in (None, 8080):
            tcp[port] = "client-port"
    return d


def connection(flows: list[Flow], client_ip: str, backend_ip: str, *, kpr: bool) -> list[Flow]:
    """The packets (and trace-sock events) of the first established connection client -> backend."""
    for f in flows:
        if (f.src_ip == client_ip and f.dst_ip == backend_ip and f.tcp_flags == SYN
                and f.observation_point == TO_OVERLAY):
            port = f.src_port
            conn = [g for g in flows if g.type != L7 and (
                (g.src_ip == client_ip and g.src_port == port)
                or (g.dst_ip == client_ip and g.dst_port == port))]
            if not any(g.tcp_flags == SYN | ACK for g in conn):
                continue
            if kpr:
                t0 = conn[0].time_ns
                conn = [g for g in flows if g.type == SOCK and g.src_ip == client_ip
                        and t0 - 50_000 < g.time_ns <= t0] + conn
            return conn
    raise AssertionError("no such connection")


def test_kube_proxy_connection_matches_the_example() -> None:
    flows = generate_flows(SCENARIOS["baseline"], 1, 0, 30)
    conn = connection(flows, "10.0.1.5", "10.0.2.21", kpr=False)
    assert [normalise(as_json(f)) for f in conn] == [normalise(e) for e in examples("kube-proxy")]
    assert [f.observation_point for f in conn] == [
        TO_STACK, TO_OVERLAY, TO_ENDPOINT, TO_OVERLAY, TO_ENDPOINT]


def test_kpr_connection_matches_the_example() -> None:
    flows = generate_flows(SCENARIOS["canary-improvement"], 1, 300, 330)
    conn = connection(flows, "10.0.2.5", "10.0.1.22", kpr=True)
    assert [normalise(as_json(f)) for f in conn] == [normalise(e) for e in examples("KPR")]
    pre, post, syn = conn[0], conn[1], conn[2]
    assert pre.socket_cookie == post.socket_cookie != 0
    assert pre.src_port == post.src_port == 0 and pre.time_ns < syn.time_ns
    assert all(f.destination_service is None for f in conn[1:])


def test_drop_matches_the_example_shape() -> None:
    flows = generate_flows(SCENARIOS["canary-regression"], 1, 300, 400)
    drop = next(f for f in flows if f.verdict == DROPPED and f.drop_reason == 158
                and f.node_name == "node-b" and f.src_ip == "10.0.2.5")
    assert drop.is_reply is None and drop.event_type == 1 and drop.event_sub_type == 158
    ours, theirs = normalise(as_json(drop)), normalise(examples("drop")[0])
    for d in (ours, theirs):  # the example's Service has no backends; ours is a real one
        d["IP"].pop("destination")
        d.pop("destination_service")
    assert ours == theirs


def test_l7_response_matches_the_example() -> None:
    flows = generate_flows(SCENARIOS["baseline"], 1, 0, 30)
    resp = next(f for f in flows if f.type == L7 and f.is_reply and f.node_name == "node-a"
                and f.src_ip == "10.0.2.21" and f.dst_ip == "10.0.1.5" and f.l7.code == 200)
    assert resp.l7.latency_ns > 0
    ours, theirs = normalise(as_json(resp)), normalise(examples("L7")[0])
    for d in (ours, theirs):
        d["l7"].pop("latency_ns")
        d["l7"]["http"].pop("url")
    assert ours == theirs
    request = next(f for f in flows if f.type == L7 and not f.is_reply)
    assert request.l7.latency_ns == 0 and request.l7.code == 0 and request.destination_service


@pytest.mark.parametrize(("scenario", "start", "kpr"),
                         [("baseline", 0, False), ("canary-improvement", 300, True)])
def test_same_node_connections_are_seen_once_on_that_node(scenario: str, start: int,
                                                          kpr: bool) -> None:
    flows = generate_flows(SCENARIOS[scenario], 1, start, start + 30)
    # web-b-7c2e (node-b) -> cart-1-y9 (node-b)
    port = next(f.src_port for f in flows if f.src_ip == "10.0.2.5" and f.dst_ip == "10.0.2.21"
                and f.tcp_flags == SYN)
    conn = [f for f in flows if f.type != SOCK and f.type != L7
            and (("10.0.2.5", port) in ((f.src_ip, f.src_port), (f.dst_ip, f.dst_port)))]
    assert conn and {f.node_name for f in conn} == {"node-b"}
    assert not any(f.observation_point == TO_OVERLAY for f in conn)
    reply = next(f for f in conn if f.is_reply and f.observation_point == TO_ENDPOINT)
    assert reply.destination.endpoint_id == 201
    assert (reply.source_service is not None) is (not kpr)


def test_refused_and_timeouts() -> None:
    profile = DatapathProfile(connect=Latency(0.001, 0.002), refused_ratio=0.5, timeout_ratio=0.5,
                              drops=())
    scenario = replace(SCENARIOS["baseline"], kube_proxy=profile)
    flows = generate_flows(scenario, 1, 0, 5)
    rsts = [f for f in flows if f.tcp_flags == RST | ACK]
    assert rsts and all(f.is_reply for f in rsts)
    assert not any(f.tcp_flags == SYN | ACK for f in flows)
    syns = [f for f in flows if f.tcp_flags == SYN and f.observation_point == TO_STACK]
    by_port: dict[tuple[str, int], list[int]] = {}
    for f in syns:
        by_port.setdefault((f.src_ip, f.src_port), []).append(f.time_ns)
    retried = [ts for ts in by_port.values() if len(ts) == 2]
    assert retried and all(b - a == 1_000_000_000 for a, b in retried)


@pytest.mark.parametrize("switch_at", [0.0, 1e9], ids=["ebpf", "kube-proxy"])
def test_handshake_at_the_client_node_equals_the_configured_latency(
        measure_slis, switch_at: float) -> None:
    """A zero-spread profile: every handshake seen at the client node takes exactly 2 ms."""
    fixed = DatapathProfile(connect=Latency(0.002, 0.002), drops=())
    base = SCENARIOS["baseline"]
    scenario = replace(base, kube_proxy=fixed, ebpf=fixed,
                       switches=tuple(Switch(n, switch_at, EBPF) for n in base.cluster.node_names))
    measured = measure_slis(generate_flows(scenario, 2, 0, 20), scenario, DEFAULT_EPOCH_NS)
    latencies = [x for m in measured.values() for x in m.latencies]
    assert len(latencies) > 400
    assert all(abs(x - 0.002) < 2e-9 for x in latencies)
