"""kube-proxy's mode and its cleanup, the owners of what a rollback writes, backup freshness."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.preflight import FAIL, PASS, WARN
from exporter.preflight.checks.undo import mode_of
from exporter.rollback.model import Backup
from tests.preflight.helpers import good_facts, row, said

OWNERS = Path(__file__).parents[2] / "data" / "owners"


def kube_proxy_cm(text: str) -> dict:
    return {"metadata": {"name": "kube-proxy"}, "data": {"config.conf": text}}


@pytest.mark.parametrize("text, mode, status, cleanup", [
    ("kind: KubeProxyConfiguration\nmode: \"\"\n", "iptables", PASS, "iptables-restore"),
    ("kind: KubeProxyConfiguration\nmode: ipvs\n", "ipvs", WARN, "kube-ipvs0"),
    ("kind: KubeProxyConfiguration\nmode: nftables\n", "nftables", WARN, "nft delete table"),
    ("kind: KubeProxyConfiguration\n", "iptables", PASS, "iptables-save"),
])
def test_kube_proxy_mode_and_its_cleanup(text: str, mode: str, status: str, cleanup: str) -> None:
    assert mode_of(kube_proxy_cm(text)) == mode
    r = row(good_facts(kube_proxy_configmap=kube_proxy_cm(text)), "kube-proxy-mode")
    assert r.status == status and mode in r.message and cleanup in r.todo
    assert "failure class 18" in r.why


def test_missing_kube_proxy_configmap_is_not_a_pass() -> None:
    assert row(good_facts(kube_proxy_configmap=None), "kube-proxy-mode").status == WARN


@pytest.mark.parametrize("fixture, status, text", [
    ("cilium-config.helm.yaml", WARN, "rollback --persist"),
    ("cilium-config.flux-helmrelease.yaml", WARN, "flux HelmRelease flux-system/cilium"),
    ("cilium-config.argocd-annotation.yaml", WARN, "GitOps controller"),
])
def test_owners_are_named_with_how_to_make_a_change_stick(fixture: str, status: str, text: str) -> None:
    obj = yaml.safe_load((OWNERS / fixture).read_text())
    r = row(good_facts(cilium_config_object=obj), "owners")
    assert r.status == status and text in said(r) and r.message.startswith("cilium-config: ")


def test_unowned_objects_pass() -> None:
    kubeadm = yaml.safe_load((OWNERS / "kube-proxy.kubeadm.yaml").read_text())
    assert row(good_facts(kube_proxy_daemonset=kubeadm), "owners").status == PASS


@pytest.mark.parametrize("held, revisions, errors, status, text", [
    (7, {7: "deployed", 6: "superseded"}, {}, PASS, "deployed Helm revision 7"),
    (6, {7: "deployed", 6: "superseded"}, {}, FAIL, "backup holds Helm revision 6"),
    (None, {7: "deployed"}, {}, FAIL, "records no revision"),
    (None, {}, {}, PASS, "nothing to be stale against"),
    (7, None, {"helm_revisions": "forbidden: list secrets"}, WARN, "forbidden"),
])
def test_backup_freshness(held, revisions, errors, status, text) -> None:
    backup = Backup("2026-11-20T10:00:00Z", {}, {"kind": "DaemonSet"}, {}, (),
                    {"revision": held} if held is not None else None)
    r = row(good_facts(backup=backup, helm_revisions=revisions, errors=errors), "backup-freshness")
    assert r.status == status and text in said(r), r
