"""The kube-proxy exclusion as the official procedure writes it, and its exact undo."""

from __future__ import annotations

from exporter.cilium import MIGRATION_LABEL
from exporter.migrate.affinity import excludes, with_exclusion, without_exclusion
from exporter.rollback.model import schedules_on
from tests.fakekube.fixtures import daemonset

KEY = MIGRATION_LABEL


def test_added_to_every_term_and_removed_without_a_trace():
    plain = daemonset("kube-proxy", "kube-system", {"k8s-app": "kube-proxy"})
    excluded = with_exclusion(plain, KEY, "true")
    assert excludes(excluded, KEY, "true") and not excludes(plain, KEY, "true")
    assert not schedules_on(excluded, "n", {KEY: "true"}) and schedules_on(excluded, "n", {})
    assert without_exclusion(excluded, KEY, "true") == plain
    assert with_exclusion(excluded, KEY, "true") == excluded  # idempotent


def test_existing_terms_keep_their_own_expressions():
    arch = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]},
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["edge"]}]}]}}}
    ds = daemonset("kube-proxy", "kube-system", {"k8s-app": "kube-proxy"}, affinity=arch)
    excluded = with_exclusion(ds, KEY, "true")
    assert excludes(excluded, KEY, "true")
    assert not schedules_on(excluded, "n", {"pool": "edge", KEY: "true"})  # both terms exclude
    assert schedules_on(excluded, "n", {"kubernetes.io/os": "linux"})
    assert without_exclusion(excluded, KEY, "true") == ds


def test_the_merge_patch_turns_one_affinity_into_the_other():
    from exporter.migrate.affinity import affinity_patch, merge_patch
    from tests.fakekube.patches import merge_patch as apply

    plain = daemonset("kube-proxy", "kube-system", {"k8s-app": "kube-proxy"})
    plain["metadata"]["resourceVersion"] = "7"
    excluded = with_exclusion(plain, KEY, "true")
    for before, after in ((plain, excluded), (excluded, plain)):
        patch = affinity_patch(before, after["spec"]["template"]["spec"].get("affinity"))
        assert patch["metadata"] == {"resourceVersion": "7"}
        assert apply(before, patch) == after
    assert merge_patch({"a": 1, "b": {"c": 2}}, {"b": {"c": 3}}) == {"a": None, "b": {"c": 3}}
