"""The planner: batch sizes and percentages, already-migrated nodes, nodes that join or leave."""

from __future__ import annotations

import pytest

from exporter.cilium import MIGRATION_LABEL
from exporter.migrate.model import (
    STEP_CLUSTER_WIDE, STEP_GATES, MigrationSpec, MigrationStatus, SpecError,
)
from exporter.migrate.plan import Targets, place_new_nodes, plan_batches, render_plan, targets

TEN = [f"node-{i:02d}" for i in range(10)]


@pytest.mark.parametrize("sizes, nodes, expected", [
    (("1", "10%", "50%", "100%"), 10, [1, 1, 5, 10]),
    (("1", "10%", "50%", "100%"), 3, [1, 1, 2, 3]),
    (("2", "5"), 3, [2, 3]),
    (("33%", "100%"), 7, [3, 7]),
])
def test_targets_are_cumulative_and_round_up(sizes, nodes, expected):
    assert targets(sizes, nodes) == expected


def test_ten_nodes_in_growing_batches():
    batches = plan_batches(reversed(TEN), (), ("1", "10%", "50%", "100%"))
    assert batches == (("node-00",), ("node-01", "node-02", "node-03", "node-04"),
                       tuple(TEN[5:]))  # 10% of 10 is already reached by the first node


def test_three_nodes_one_per_batch():
    assert plan_batches(["node-c", "node-a", "node-b"], (), ("1", "10%", "50%", "100%")) == (
        ("node-a",), ("node-b",), ("node-c",))


def test_already_migrated_nodes_count_and_are_never_planned():
    batches = plan_batches(TEN, ["node-03", "node-07"], ("1", "50%", "100%"))
    planned = [n for b in batches for n in b]
    assert "node-03" not in planned and "node-07" not in planned
    assert batches[0] == ("node-00", "node-01", "node-02")  # 50%: 5 in all, 2 were done
    assert len(planned) == 8


def test_a_last_target_below_100_percent_still_covers_every_node():
    batches = plan_batches(TEN, (), ("1", "20%"))
    assert batches[-1] == tuple(TEN[2:]) and sum(len(b) for b in batches) == 10


def test_every_node_already_migrated_gives_no_batch():
    assert plan_batches(TEN, TEN, ("1", "100%")) == ()


def test_a_bad_size_is_refused():
    with pytest.raises(SpecError):
        targets(("0",), 3)
    with pytest.raises(SpecError):
        targets(("150%",), 3)


def status(step: str, batch: int, batches) -> MigrationStatus:
    return MigrationStatus(step=step, batch=batch, batches=batches, migrated=batches[0])


def test_a_node_that_joins_goes_into_the_next_batch():
    s = status(STEP_GATES, 0, (("a",), ("b",)))
    after, notes = place_new_nodes(s, ["a", "b", "z"])
    assert after.batches == (("a",), ("b", "z")) and "added to batch 2" in notes[0]


def test_a_node_that_joins_during_the_last_batch_gets_a_batch_of_its_own():
    s = status(STEP_GATES, 1, (("a",), ("b",)))
    after, notes = place_new_nodes(s, ["a", "b", "z"])
    assert after.batches == (("a",), ("b",), ("z",)) and notes


def test_a_node_that_joins_after_the_cluster_wide_step_is_reported():
    s = status(STEP_CLUSTER_WIDE, 1, (("a",), ("b",)))
    after, notes = place_new_nodes(s, ["a", "b", "z"])
    assert after.batches == s.batches and "joined after the last batch" in notes[0]


def test_a_node_that_leaves_is_dropped_from_later_batches_and_empty_ones_go():
    s = status(STEP_GATES, 0, (("a",), ("b",), ("c", "d")))
    after, notes = place_new_nodes(s, ["a", "c", "d"])
    assert after.batches == (("a",), ("c", "d")) and "left the cluster" in notes[0]


def test_nothing_changed_means_no_note():
    s = status(STEP_GATES, 0, (("a",), ("b",)))
    assert place_new_nodes(s, ["a", "b"]) == (s, ())


def test_the_plan_lists_every_step_and_warns_about_gates_turned_off():
    spec = MigrationSpec("m1", gates=("verify",), drain=True)
    text = render_plan(spec, (("a",), ("b", "c")), ("z",), Targets(
        MIGRATION_LABEL, "true", "kube-system/kube-proxy",
        "kube-system/kube-proxy-replacement", "0.0.0.0:10256", "Helm"))
    for expected in ("preflight", "NotIn [true]", 'kube-proxy-replacement: "true"', "0.0.0.0:10256",
                     "batch 1/2: a", "batch 2/2: b, c", "cordon and drain b, c", "uncordon a",
                     "cluster-wide kube-proxy-replacement=true through Helm",
                     "delete DaemonSet kube-system/kube-proxy", "already migrated (counted as done): z",
                     "warning: gate(s) judge, alerts turned off"):
        assert expected in text, expected
