"""Scenarios as data, and each one moving its SLIs as intended.

Matrix: catalogue (brief's names, default cluster) x determinism (same seed, other
seed, window split) x per scenario: baseline, canary-improvement,
canary-regression, full-improvement, drop-regression, relay-outage, low-traffic,
canary-rollback. SLIs are measured on the generated model flows directly.
"""

from __future__ import annotations

import pytest

from exporter.model import EBPF, KUBE_PROXY, Flow, LostEvents
from exporter.simulator.flows import DEFAULT_EPOCH_NS, generate, generate_flows
from exporter.simulator.scenarios import SCENARIO_NAMES, SCENARIOS, UnknownScenario, get_scenario

BRIEF_NAMES = ("baseline", "canary-improvement", "canary-regression", "full-improvement",
               "drop-regression", "relay-outage", "low-traffic")


def slis(measure_slis, name: str, start: float, end: float, seed: int = 1):
    scenario = SCENARIOS[name]
    return measure_slis(generate_flows(scenario, seed, start, end), scenario, DEFAULT_EPOCH_NS)


def close(value: float, expected: float, rel: float = 0.12) -> bool:
    return abs(value - expected) <= rel * expected


def test_catalogue_has_the_brief_names_and_the_default_cluster() -> None:
    assert set(BRIEF_NAMES) <= set(SCENARIO_NAMES)
    for scenario in SCENARIOS.values():
        cluster = scenario.cluster
        assert cluster.node_names == ("node-a", "node-b", "node-c")
        client_nodes = {cluster.pod(c.namespace, c.pod).node for c in cluster.clients}
        assert client_nodes == set(cluster.node_names)
        assert len(cluster.namespaces) >= 3 and len(cluster.services) >= 4
        assert {e.datapath for e in scenario.expected} == {KUBE_PROXY, EBPF}
        assert scenario.outcomes, scenario.name
    with pytest.raises(UnknownScenario):
        get_scenario("nope")


def test_expectations_come_from_the_profiles() -> None:
    s = SCENARIOS["canary-regression"]
    assert s.expectation(EBPF).connect_median_s == s.ebpf.connect.median_s
    assert s.expectation(EBPF).drop_ratio(158) == pytest.approx(0.010)
    assert s.expectation(KUBE_PROXY).drop_ratio(158) == 0.0


def test_same_seed_same_flows_other_seed_other_flows() -> None:
    s = SCENARIOS["canary-improvement"]
    a = generate(s, 7, 295, 305)
    assert a == generate(s, 7, 295, 305)
    b = generate(s, 8, 295, 305)
    assert [f.uuid for f in a if isinstance(f, Flow)] != [f.uuid for f in b if isinstance(f, Flow)]
    assert [f.time_ns for f in a] != [f.time_ns for f in b]


def test_windows_compose_and_events_are_time_ordered_with_unique_uuids() -> None:
    s = SCENARIOS["relay-outage"]
    whole = generate(s, 3, 85, 95)
    assert whole == generate(s, 3, 85, 90.5) + generate(s, 3, 90.5, 95)
    times = [e.time_ns for e in whole]
    assert times == sorted(times)
    uuids = [f.uuid for f in whole if isinstance(f, Flow)]
    assert len(uuids) == len(set(uuids)) > 500


def test_baseline_is_all_kube_proxy_at_the_configured_latency(measure_slis, merge_slis) -> None:
    m = slis(measure_slis, "baseline", 0, 200)
    assert not merge_slis(m, EBPF).total_attempts
    kp = merge_slis(m, KUBE_PROXY)
    expected = SCENARIOS["baseline"].expectation(KUBE_PROXY)
    assert len(kp.latencies) > 4000
    assert close(kp.median(), expected.connect_median_s, 0.05)
    assert close(kp.quantile(0.99), expected.connect_p99_s, 0.2)
    assert close(kp.attempts["refused"] / kp.total_attempts, expected.refused_ratio, 0.5)
    assert kp.attempts["timeout"] > 0
    assert close(kp.drop_ratio(133), expected.drop_ratio(133), 0.5)
    http_median = sorted(kp.http_latencies)[len(kp.http_latencies) // 2]
    assert close(http_median, expected.http_median_s, 0.1)
    assert set(kp.http_codes) == {200, 404, 503}


def test_canary_improvement_makes_the_canary_faster(measure_slis, merge_slis) -> None:
    before = slis(measure_slis, "canary-improvement", 0, 300)
    assert not merge_slis(before, EBPF).total_attempts
    after = slis(measure_slis, "canary-improvement", 300, 420)
    ebpf, kp = merge_slis(after, EBPF), merge_slis(after, KUBE_PROXY)
    s = SCENARIOS["canary-improvement"]
    assert close(ebpf.median(), s.expectation(EBPF).connect_median_s)
    assert close(kp.median(), s.expectation(KUBE_PROXY).connect_median_s)
    assert ebpf.median() < 0.8 * kp.median()
    assert ebpf.drops.keys() <= {133}


def test_canary_regression_makes_the_canary_slower_with_kpr_drops(measure_slis, merge_slis) -> None:
    m = slis(measure_slis, "canary-regression", 300, 480)
    ebpf, kp = merge_slis(m, EBPF), merge_slis(m, KUBE_PROXY)
    expected = SCENARIOS["canary-regression"].expectation(EBPF)
    assert ebpf.median() > 1.5 * kp.median()
    assert close(ebpf.median(), expected.connect_median_s)
    assert close(ebpf.drop_ratio(158), expected.drop_ratio(158), 0.35)
    assert ebpf.drops[155] > 0
    assert kp.drops[158] == kp.drops[155] == 0
    # only node-b switched: every eBPF sample comes from its client
    nodes = {f.node_name for f in generate_flows(SCENARIOS["canary-regression"], 1, 300, 310)
             if f.sock_xlate_point}
    assert nodes == {"node-b"}


def test_full_improvement_switches_every_node_in_turn(measure_slis, merge_slis) -> None:
    s = SCENARIOS["full-improvement"]
    at_650 = [s.datapath_at(n, 650) for n in ("node-a", "node-b", "node-c")]
    assert at_650 == [EBPF, EBPF, KUBE_PROXY]
    m = slis(measure_slis, "full-improvement", 900, 1000)
    assert not merge_slis(m, KUBE_PROXY).total_attempts
    ebpf = merge_slis(m, EBPF)
    assert close(ebpf.median(), s.expectation(EBPF).connect_median_s)
    assert ebpf.median() < 0.8 * s.expectation(KUBE_PROXY).connect_median_s


def test_drop_regression_raises_backend_not_found_only(measure_slis, merge_slis) -> None:
    m = slis(measure_slis, "drop-regression", 300, 480)
    ebpf, kp = merge_slis(m, EBPF), merge_slis(m, KUBE_PROXY)
    assert close(ebpf.drop_ratio(158), 0.03, 0.3)
    assert kp.drops[158] == 0
    assert close(ebpf.median(), kp.median(), 0.1)


def test_relay_outage_windows_and_lost_events() -> None:
    s = SCENARIOS["relay-outage"]
    assert s.outage_at(59.9) is None and s.outage_at(60) is not None and s.outage_at(90) is None
    lost = [e for e in generate(s, 1, 85, 95) if isinstance(e, LostEvents)]
    assert lost == [LostEvents("node-a", 3, 120, DEFAULT_EPOCH_NS + 90_500_000_000)]


def test_low_traffic_is_too_little_to_judge(measure_slis, merge_slis) -> None:
    m = slis(measure_slis, "low-traffic", 0, 600)
    total = sum(x.total_attempts for x in m.values())
    assert 0 < total < 100
    assert all(x.total_attempts < 30 for x in m.values())


def test_canary_rollback_returns_to_kube_proxy() -> None:
    s = SCENARIOS["canary-rollback"]
    modes = [s.datapath_at("node-b", t) for t in (299, 300, 899, 900)]
    assert modes == [KUBE_PROXY, EBPF, EBPF, KUBE_PROXY]
    assert not any(f.sock_xlate_point for f in generate_flows(s, 1, 905, 915))
