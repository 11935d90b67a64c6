"""Is the rollback durable, and does it still hold: the guard's table."""

from __future__ import annotations

import pytest

from exporter.ownership import detect_owner
from exporter.rollback.guard import (
    FIELD_MANAGER, HELM_RELEASE, Observed, RollbackRecord, assess, last_succeeded,
)

HELM = detect_owner({"metadata": {"namespace": "kube-system", "annotations": {
    "meta.helm.sh/release-name": "cilium", "meta.helm.sh/release-namespace": "kube-system"}}})
FLUX = detect_owner({"metadata": {"labels": {"helm.toolkit.fluxcd.io/name": "cilium",
                                             "helm.toolkit.fluxcd.io/namespace": "flux-system"},
                                  "annotations": {"meta.helm.sh/release-name": "cilium"}}})
NOBODY = detect_owner({})
RECORD = RollbackRecord(1000.0, ("node-b",), "1000-abc")


@pytest.mark.parametrize("observed, value, evidence", [
    (Observed(HELM, release_values={"kubeProxyReplacement": True}), 0.0, HELM_RELEASE),
    (Observed(HELM, release_values={"kubeProxyReplacement": "false"}), 1.0, HELM_RELEASE),
    (Observed(HELM, release_values={}), 1.0, HELM_RELEASE),  # the chart's default: off
    (Observed(HELM, our_fields=True), 0.0, FIELD_MANAGER),  # the fast patch still stands alone
    (Observed(HELM, our_fields=False), 1.0, FIELD_MANAGER),  # handed back by --persist
])
def test_persisted_by_helm(observed: Observed, value: float, evidence: str) -> None:
    found = assess(RECORD, Observed(**{**observed.__dict__, "chart_version": "1.18.3"})).persisted
    assert found is not None and (found.value, found.evidence) == (value, evidence)
    assert found.labels() == ["helm", "cilium", "kube-system", "cilium", "1.18.3", evidence]


@pytest.mark.parametrize("owner", [NOBODY, FLUX])
def test_no_persistence_question_without_a_helm_only_owner(owner) -> None:
    assert assess(RECORD, Observed(owner, our_fields=True)).persisted is None


def test_nothing_to_say_without_a_rollback_on_record() -> None:
    found = assess(None, Observed(HELM, our_fields=True, ebpf_since={"node-b": 2000.0}))
    assert found.persisted is None and found.undone == ()


@pytest.mark.parametrize("ebpf_since, migration, undone", [
    ({}, None, ()),
    ({"node-b": 900.0}, None, ()),  # the old switch, before the rollback ended
    ({"node-b": 1500.0}, None, ("node-b",)),
    ({"node-b": None}, None, ("node-b",)),  # on eBPF, switch not seen: still undone
    ({"node-a": 1500.0}, None, ()),  # not a node this rollback restored
    ({"node-b": 1500.0}, 1200.0, ()),  # a migration was started on purpose since
    ({"node-b": 1500.0}, 800.0, ("node-b",)),  # a migration before the rollback does not count
])
def test_undone(ebpf_since, migration, undone) -> None:
    observed = Observed(NOBODY, ebpf_since=ebpf_since, migration_started_at=migration)
    assert assess(RECORD, observed).undone == undone


def test_the_newest_succeeded_rollback_is_the_record() -> None:
    states = [{"status": "succeeded", "updatedAt": 10.0, "plan": {"id": "a", "nodes": ["n1"]}},
              {"status": "failed", "updatedAt": 30.0, "plan": {"id": "c", "nodes": ["n3"]}},
              {"status": "succeeded", "updatedAt": 20.0, "plan": {"id": "b", "nodes": ["n2"]}}]
    assert last_succeeded(states) == RollbackRecord(20.0, ("n2",), "b")
    assert last_succeeded(states[1:2]) is None
