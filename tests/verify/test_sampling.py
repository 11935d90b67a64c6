"""The sampling formula: own node plus k rotating others, linear cost, full coverage."""

from __future__ import annotations

import math

import pytest

from exporter.verify.sampling import SamplingError, plan, rounds_to_full_coverage, sample

NODES = [f"node-{i:02d}" for i in range(10)]


def test_own_node_first_then_k_distinct_others() -> None:
    got = sample(NODES, "node-03", k=3, round_no=0)
    assert got == ("node-03", "node-04", "node-05", "node-06")
    assert sample(NODES, "node-03", k=3, round_no=1) == ("node-03", "node-07", "node-08",
                                                         "node-09")
    assert sample(NODES, "node-09", k=2, round_no=0) == ("node-09", "node-00", "node-01")


@pytest.mark.parametrize(("n", "k"), [(2, 1), (5, 2), (10, 3), (17, 4), (30, 29), (30, 50)])
def test_every_probe_covers_every_node_within_the_formula(n: int, k: int) -> None:
    nodes = [f"n{i}" for i in range(n)]
    rounds = rounds_to_full_coverage(n, k)
    assert rounds == (1 if n <= 1 + k else math.ceil((n - 1) / k))
    for own in nodes:
        seen: set[str] = set()
        for round_no in range(rounds):
            picked = sample(nodes, own, k, round_no)
            assert picked[0] == own and len(set(picked)) == len(picked) == 1 + min(k, n - 1)
            seen.update(picked)
        assert seen == set(nodes), own


def test_each_node_is_probed_by_exactly_k_remote_probes_per_round() -> None:
    k = 3
    for round_no in range(5):
        load = {n: 0 for n in NODES}
        for own in NODES:
            for target in sample(NODES, own, k, round_no)[1:]:
                load[target] += 1
        assert set(load.values()) == {k}


def test_cost_is_linear_in_nodes() -> None:
    small = plan(100, 3, per_target_checks=4, shared_checks=6, interval_seconds=30)
    large = plan(1000, 3, per_target_checks=4, shared_checks=6, interval_seconds=30)
    assert small.checks_per_round == 100 * (4 * 4 + 6)
    assert large.checks_per_round == 10 * small.checks_per_round
    assert large.targets_per_probe == 4
    documented = plan(500, 3, per_target_checks=4, shared_checks=6, interval_seconds=30)
    assert documented.checks_per_round == 11_000  # the docstring's example
    assert documented.rounds_to_full_coverage == 167
    assert documented.seconds_to_full_coverage == pytest.approx(83.5 * 60)


def test_small_clusters_and_bad_input() -> None:
    assert sample(["only"], "only", k=3, round_no=7) == ("only",)
    assert plan(1, 3, per_target_checks=4, shared_checks=6, interval_seconds=30).checks_per_round == 10
    with pytest.raises(SamplingError, match="not among"):
        sample(NODES, "ghost", k=1, round_no=0)
    with pytest.raises(SamplingError, match="at least 1"):
        sample(NODES, "node-01", k=0, round_no=0)
    with pytest.raises(SamplingError, match="at least one node"):
        plan(0, 1, per_target_checks=1, shared_checks=1, interval_seconds=1)
