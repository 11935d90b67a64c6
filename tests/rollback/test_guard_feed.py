"""The rollback guard against the fake API: persisted or not (by the Helm release, or by the
field manager when Secrets are refused), undone nodes with one Event each, nothing without a
rollback on record."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from exporter.kube.client import FIELD_MANAGER
from exporter.model import EBPF, KUBE_PROXY
from exporter.rollback.backup import ConfigMapBackupStore
from exporter.rollback.guard_feed import UndoGuard
from exporter.rollback.model import Backup
from exporter.rollback.state import STATE_ANNOTATION
from tests.fakekube.fixtures import configmap
from tests.fakekube.helm import release_secret

from .cluster import settings

S = settings()
ENDED = 1_800_000_100.0


class Tracker:
    """The datapath tracker's read side."""

    def __init__(self, datapaths: dict[str, str], switched: dict[str, float]) -> None:
        self._datapaths, self._switched = datapaths, switched

    def decisions(self) -> dict[str, object]:
        return dict.fromkeys(self._datapaths)

    def datapath(self, node: str) -> str:
        return self._datapaths[node]

    def switch_times(self) -> dict[str, float]:
        return dict(self._switched)


def seed(fake, *, ours: bool = True, status: str = "succeeded") -> None:
    cm = configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "false"})
    cm["metadata"]["annotations"] = {"meta.helm.sh/release-name": "cilium",
                                     "meta.helm.sh/release-namespace": "kube-system"}
    cm["metadata"]["managedFields"] = [{"manager": "helm", "operation": "Update"}] + (
        [{"manager": FIELD_MANAGER, "operation": "Update"}] if ours else [])
    fake.seed(cm)
    plan = {"id": "1800000000-abcd", "scope": {"kind": "nodes", "nodes": ["node-b"]},
            "trigger": {"reason": "test", "fingerprints": [], "source": "webhook"},
            "createdAt": ENDED - 100, "nodes": ["node-b"], "steps": []}
    state = {"plan": plan, "status": status, "done": [], "restarting": {},
             "startedAt": ENDED - 100, "updatedAt": ENDED, "message": "", "holder": "r1"}
    holder = configmap(S.state_configmap, S.namespace, {})
    holder["metadata"]["annotations"] = {STATE_ANNOTATION: json.dumps(state)}
    fake.seed(holder)


def guard(kube, tracker: Tracker) -> UndoGuard:
    store = ConfigMapBackupStore(kube, S.namespace, S.backup_configmap)
    return UndoGuard(kube, S, store=store, tracker=tracker, clock=lambda: ENDED + 500)


def gauges(g: UndoGuard) -> dict[str, list]:
    registry = CollectorRegistry()
    registry.register(g)
    return {m.name: [(s.labels, s.value) for s in m.samples] for m in registry.collect()}


async def test_helm_release_still_on_and_a_node_back_on_ebpf(fake_kube, kube):
    seed(fake_kube)
    fake_kube.seed(release_secret("cilium", 7, values={"kubeProxyReplacement": True}))
    g = guard(kube, Tracker({"node-a": KUBE_PROXY, "node-b": EBPF}, {"node-b": ENDED + 60}))
    await g.check_once()
    await g.check_once()
    found = gauges(g)
    assert found["kpr_rollback_persisted"] == [(
        {"owner": "helm", "release": "cilium", "namespace": "kube-system", "chart": "cilium",
         "chart_version": "1.18.3", "evidence": "helm-release"}, 0.0)]
    assert found["kpr_rollback_undone"] == [({"node": "node-b"}, 1.0)]
    events = [e for e in fake_kube.objects("events", S.namespace)
              if e["reason"] == "KprReenabledAfterRollback"]
    assert len(events) == 1, "one Event per node and rollback, however often it is checked"
    assert "node-b" in events[0]["message"] and events[0]["type"] == "Warning"
    (unpersisted,) = [e for e in fake_kube.objects("events", S.namespace)
                      if e["reason"] == "RollbackNotPersisted"]
    assert "helm upgrade cilium cilium/cilium --version 1.18.3 -n kube-system" in unpersisted["message"]


async def test_without_secrets_the_field_manager_and_the_backup_speak(fake_kube, kube):
    seed(fake_kube, ours=False)
    fake_kube.deny("list", "secrets")
    store = ConfigMapBackupStore(kube, S.namespace, S.backup_configmap)
    await store.save(Backup("2026-12-01T00:00:00Z", helm_release={
        "name": "cilium", "revision": 6, "chart": "cilium", "chartVersion": "1.17.9"}))
    g = guard(kube, Tracker({"node-b": KUBE_PROXY}, {}))
    await g.check_once()
    found = gauges(g)
    ((labels, value),) = found["kpr_rollback_persisted"]
    assert (labels["evidence"], labels["chart_version"], value) == ("field-manager", "1.17.9", 1.0)
    assert found["kpr_rollback_undone"] == []


async def test_no_rollback_on_record_no_series(fake_kube, kube):
    seed(fake_kube, status="failed")
    g = guard(kube, Tracker({"node-b": EBPF}, {"node-b": ENDED + 60}))
    await g.check_once()
    assert gauges(g) == {"kpr_rollback_persisted": [], "kpr_rollback_undone": []}
