"""rollback --persist against the fake API, with the Helm call played by the test (thin edge)."""

from __future__ import annotations

import io
from typing import Any

from exporter.kube.client import FIELD_MANAGER
from exporter.rollback.persist_cmd import cmd_persist
from tests.fakekube.fixtures import configmap
from tests.fakekube.helm import release_secret

from .cluster import settings

S = settings()
MANAGED = [
    {"manager": "helm", "operation": "Apply", "apiVersion": "v1",
     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:kube-proxy-replacement": {}}}},
    {"manager": FIELD_MANAGER, "operation": "Update", "apiVersion": "v1",
     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:kube-proxy-replacement": {}}}},
]


class HelmPlayer:
    def __init__(self) -> None:
        self.calls: list[tuple[dict, dict]] = []
        self.descriptions: list[str] = []

    def __call__(self, document: Any, values: Any, *, description: str) -> dict:
        self.calls.append((dict(document), dict(values)))
        self.descriptions.append(description)
        return {"name": document["name"], "version": document["version"] + 1}


def seed(fake) -> None:
    fake.seed(release_secret("cilium", 3, status="superseded", values={"kubeProxyReplacement": False}))
    fake.seed(release_secret("cilium", 4, values={"kubeProxyReplacement": True, "k8sServicePort": 6443}))
    cm = configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "false"})
    cm["metadata"]["managedFields"] = MANAGED
    fake.seed(cm)


async def test_persist_upgrades_the_deployed_release_and_hands_back_the_fast_patch(fake_kube, kube, vtime):
    seed(fake_kube)
    helm, out = HelmPlayer(), io.StringIO()
    assert await cmd_persist(S, kube, out=out, upgrade=helm, clock=vtime) == 0, out.getvalue()
    ((document, values),) = helm.calls
    assert document["version"] == 4, "the deployed revision, not the newest Secret"
    assert values == {"kubeProxyReplacement": False, "k8sServicePort": 6443}
    assert helm.descriptions == ["kpr-exporter rollback --persist: kubeProxyReplacement=false"]
    text = out.getvalue()
    assert "- kubeProxyReplacement: true" in text and "+ kubeProxyReplacement: false" in text
    assert "--reuse-values --set kubeProxyReplacement=false" in text
    assert "revision 5 sets kubeProxyReplacement=false" in text
    live = fake_kube.get("configmaps", "cilium-config", "kube-system")
    assert [m["manager"] for m in live["metadata"].get("managedFields") or []] == ["helm"]
    events = fake_kube.objects("events", "kube-system")
    assert [e["reason"] for e in events] == ["RollbackPersisted"]


async def test_declining_changes_nothing(fake_kube, kube, vtime):
    seed(fake_kube)
    helm, out = HelmPlayer(), io.StringIO()
    assert await cmd_persist(S, kube, out=out, upgrade=helm, confirm=lambda plan: False,
                             clock=vtime) == 3
    assert helm.calls == [] and "aborted" in out.getvalue()


async def test_a_release_that_already_agrees_needs_no_upgrade(fake_kube, kube, vtime):
    fake_kube.seed(release_secret("cilium", 2, values={"kubeProxyReplacement": False}))
    helm, out = HelmPlayer(), io.StringIO()
    assert await cmd_persist(S, kube, out=out, upgrade=helm, clock=vtime) == 0
    assert helm.calls == [] and "nothing to change" in out.getvalue()


async def test_without_the_right_to_read_the_release_it_says_so(fake_kube, kube, vtime):
    seed(fake_kube)
    fake_kube.deny("list", "secrets")
    helm, out = HelmPlayer(), io.StringIO()
    assert await cmd_persist(S, kube, out=out, upgrade=helm, clock=vtime) == 1
    assert "cannot read Helm release kube-system/cilium" in out.getvalue() and helm.calls == []
