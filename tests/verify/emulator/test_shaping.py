"""The emulated datapath shapes what it forwards: each datapath's throughput per connection
and handshake cost are scenario data, and a switch of datapath changes them."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify.echo import SINK_LINE
from exporter.verify.emulator import proxy
from exporter.verify.emulator import scenario as sc
from exporter.verify.emulator.dialer import EmulatedDialer, lognormal

#: Bytes per second of the shaped tests: a 40 KiB stream takes about a second at the lower one.
SLOW, FAST = 36 * 1024, 72 * 1024


def test_the_rate_holds_back_only_what_runs_ahead_of_it() -> None:
    shaping = proxy.Shaping(rate=1000.0)
    assert shaping.wait(proxy.SHAPING_BURST, 0.0) == 0.0  # the burst passes at once
    assert shaping.wait(proxy.SHAPING_BURST + 500, 0.1) == pytest.approx(0.4)
    assert shaping.wait(proxy.SHAPING_BURST + 500, 0.6) == 0.0  # behind schedule: no wait
    assert proxy.Shaping().wait(10**9, 0.0) == 0.0  # unshaped


async def _sunk_through(cluster, node: str, size: int) -> tuple[int, float]:
    """Stream ``size`` bytes from ``node``'s pod to the echo's ClusterIP as fast as possible;
    (bytes the echo confirmed, seconds until its answer)."""
    dialer = cluster.dialer(node, "pod")
    reader, writer, _ = await dialer.open(*cluster.targets().cluster_ip, 2.0)
    started = time.monotonic()
    writer.write(SINK_LINE + bytes(size))
    writer.write_eof()
    line = await asyncio.wait_for(reader.readline(), 10.0)
    took = time.monotonic() - started
    writer.close()
    return int(json.loads(line)["received"]), took


async def test_each_datapath_forwards_at_its_own_rate(emulate) -> None:
    cluster = await emulate({
        "nodes": [{"name": "a"}, {"name": "b", "datapath": EBPF}, {"name": "c"}],
        "throughput_bytes_per_second": {KUBE_PROXY: SLOW, EBPF: FAST},
    })
    size = 40 * 1024
    (sent_kp, kp), (sent_ebpf, ebpf) = await asyncio.gather(
        _sunk_through(cluster, "a", size), _sunk_through(cluster, "b", size))
    assert sent_kp == sent_ebpf == size  # nothing lost, only slower
    expected = (size - proxy.SHAPING_BURST) / SLOW
    assert expected * 0.95 <= kp <= expected + 1.5
    assert (size - proxy.SHAPING_BURST) / FAST * 0.95 <= ebpf < kp


async def test_a_switch_applies_the_new_datapaths_rate_to_new_connections(emulate) -> None:
    cluster = await emulate({"nodes": [{"name": "a"}, {"name": "b"}],
                             "throughput_bytes_per_second": {KUBE_PROXY: SLOW}})
    size = 24 * 1024
    _, shaped = await _sunk_through(cluster, "a", size)
    await cluster.switch("a", EBPF)  # no rate for eBPF: unshaped
    _, unshaped = await _sunk_through(cluster, "a", size)
    assert shaped >= (size - proxy.SHAPING_BURST) / SLOW * 0.95
    assert unshaped < shaped / 2


async def test_without_a_rate_the_loopback_forwards_at_full_speed(emulate) -> None:
    cluster = await emulate({"nodes": [{"name": "a"}]})
    sent, took = await _sunk_through(cluster, "a", 1024 * 1024)
    assert sent == 1024 * 1024 and took < 5.0  # a MiB at the lowest rate would take ~28 s


def test_handshake_costs_are_log_normal_draws_of_the_scenarios_median_and_p99() -> None:
    rng = random.Random(7)
    draws = sorted(lognormal(0.001, 0.004, rng, 2.0) for _ in range(20000))
    assert draws[10000] == pytest.approx(0.001, rel=0.05)
    assert draws[19800] == pytest.approx(0.004, rel=0.15)
    assert lognormal(1.0, 100.0, random.Random(1), 0.5) <= 0.5  # capped
    assert lognormal(0.002, 0.002, rng, 2.0) == 0.002  # no spread


async def test_the_translating_nodes_datapath_adds_its_handshake_cost(emulate) -> None:
    cluster = await emulate({
        "nodes": [{"name": "a"}, {"name": "b", "datapath": EBPF}],
        "connect_seconds": {KUBE_PROXY: {"median": 0.05, "p99": 0.05},
                            EBPF: {"median": 0.01, "p99": 0.01}},
    })
    targets = cluster.targets()
    from_a = cluster.dialer("a", "pod")
    assert isinstance(from_a, EmulatedDialer)
    # The ClusterIP is translated on the client's own node (kube-proxy) ...
    seen = await from_a.connect_only(targets.cluster_ip, 2.0)
    assert seen.answered and seen.connect_seconds >= 0.05
    # ... a NodePort on node b's address by node b (eBPF), whoever connects.
    remote = await from_a.connect_only((targets.nodes["b"].addresses[0], targets.node_port), 2.0)
    assert remote.answered and 0.01 <= remote.connect_seconds < 0.05
    await cluster.switch("a", EBPF)
    again = await from_a.rebound(cluster.nodes["a"].addresses.node_ip).connect_only(
        targets.cluster_ip, 2.0)
    assert again.answered and 0.01 <= again.connect_seconds < 0.05


async def test_without_a_cost_the_dialer_is_the_plain_one(emulate) -> None:
    cluster = await emulate({"nodes": [{"name": "a"}]})
    assert not isinstance(cluster.dialer("a", "pod"), EmulatedDialer)


@pytest.mark.parametrize(("data", "problem"), [
    ({"throughput_bytes_per_second": [1]}, "throughput_bytes_per_second: expected a mapping"),
    ({"throughput_bytes_per_second": {"ipvs": 2048}},
     "throughput_bytes_per_second: unknown datapath 'ipvs'"),
    ({"throughput_bytes_per_second": {"ebpf": 10}},
     "throughput_bytes_per_second.ebpf: expected bytes per second of at least 1024"),
    ({"throughput_bytes_per_second": {"ebpf": True}}, "throughput_bytes_per_second.ebpf"),
    ({"connect_seconds": {"ebpf": 0.001}}, "connect_seconds.ebpf: expected {median, p99}"),
    ({"connect_seconds": {"ebpf": {"median": 0.002, "p99": 0.001}}}, "connect_seconds.ebpf"),
    ({"connect_seconds": {"kube-proxy": {"median": 0.001, "p99": 3}}},
     "connect_seconds.kube-proxy"),
    ({"connect_seconds": {"kube-proxy": {"median": 0.001, "p99": 0.002, "p50": 1}}},
     "connect_seconds.kube-proxy"),
])
def test_bad_shaping_data_is_refused_with_every_problem(data, problem) -> None:
    with pytest.raises(sc.ScenarioError) as caught:
        sc.load({"nodes": [{"name": "a"}], **data})
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_shaping_is_data_and_absent_means_none() -> None:
    got = sc.load({"nodes": [{"name": "a"}], "throughput_bytes_per_second": {"ebpf": 4096},
                   "connect_seconds": {"kube-proxy": {"median": 0.001, "p99": 0.004}}})
    assert (got.throughput(EBPF), got.throughput(KUBE_PROXY)) == (4096.0, 0.0)
    assert got.connect_seconds == {KUBE_PROXY: (0.001, 0.004)}
    plain = sc.load({"nodes": [{"name": "a"}]})
    assert plain.throughput_bytes_per_second == {} and plain.connect_seconds == {}
    assert "throughput_bytes_per_second:" in sc.__doc__ and "connect_seconds:" in sc.__doc__
