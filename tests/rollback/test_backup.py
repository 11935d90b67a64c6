"""Backup capture, stores and restore against the fake API.

Matrix: what is captured (cilium-config, kube-proxy DaemonSet + ConfigMap stripped of
server fields, CiliumNodeConfigs, highest Helm release revision); missing objects and
a forbidden Secret list become notes; v2alpha1-only CiliumNodeConfigs; ConfigMap and
file stores round trip (and save twice); corrupt backups raise BackupError; restore
round trip (mutate/delete -> restore -> identical capture; a second restore is a no-op).
"""

from __future__ import annotations

import pytest

from exporter.rollback.backup import (
    BackupError, ConfigMapBackupStore, FileBackupStore, restore_backup, take_backup,
)

from tests.fakekube.helm import release_secret

from .cluster import seed_canary, seed_full, settings


async def test_capture_strips_server_fields_and_records_helm(fake_kube, kube, vtime):
    seed_canary(fake_kube)
    for rev, status in ((1, "superseded"), (2, "superseded"), (10, "deployed")):
        fake_kube.seed(release_secret("cilium", rev, status=status,
                                      values={"kubeProxyReplacement": True, "k8sServicePort": 6443}))
    report = await take_backup(kube, settings(), clock=vtime)
    b = report.backup
    assert report.notes == ()
    assert b.taken_at == "2027-01-15T08:00:00Z"
    ds = b.kube_proxy_daemonset
    assert ds["metadata"] == {"name": "kube-proxy", "namespace": "kube-system",
                              "labels": {"k8s-app": "kube-proxy"}}
    assert "status" not in ds and ds["spec"]["template"]["spec"]["affinity"]
    assert b.kube_proxy_configmap["data"] == {"config.conf": "mode: iptables"}
    assert "uid" not in b.cilium_config["metadata"]
    assert [c["metadata"]["name"] for c in b.node_configs] == ["kube-proxy-replacement"]
    assert b.node_configs[0]["apiVersion"] == "cilium.io/v2"
    assert b.helm_release == {
        "name": "cilium", "namespace": "kube-system", "revision": 10, "status": "deployed",
        "secret": "sh.helm.release.v1.cilium.v10", "chart": "cilium", "chartVersion": "1.18.3",
        "appVersion": "1.18.3", "values": {"kubeProxyReplacement": True, "k8sServicePort": 6443}}
    assert b.notes == ()


async def test_helm_values_come_from_the_deployed_revision_not_a_later_failed_one(
        fake_kube, kube, vtime):
    seed_canary(fake_kube)
    fake_kube.seed(release_secret("cilium", 4, values={"kubeProxyReplacement": False}))
    fake_kube.seed(release_secret("cilium", 5, status="failed", values={"broken": True}))
    helm = (await take_backup(kube, settings(), clock=vtime)).backup.helm_release
    assert (helm["revision"], helm["values"]) == (4, {"kubeProxyReplacement": False})


async def test_an_unreadable_release_record_keeps_the_revision_and_says_why(fake_kube, kube, vtime):
    seed_canary(fake_kube)
    secret = release_secret("cilium", 3)
    secret["data"]["release"] = "bm90IGhlbG0="
    fake_kube.seed(secret)
    report = await take_backup(kube, settings(), clock=vtime)
    assert report.backup.helm_release["revision"] == 3
    assert "values" not in report.backup.helm_release
    assert any("values not recorded" in n and "helm get values cilium" in n for n in report.notes)


async def test_kube_proxy_service_account_and_its_bindings_are_captured(fake_kube, kube, vtime):
    seed_canary(fake_kube)
    ds = fake_kube.get("daemonsets", "kube-proxy", "kube-system")
    ds["spec"]["template"]["spec"]["serviceAccountName"] = "kube-proxy"
    fake_kube.seed(ds)
    fake_kube.seed({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "kube-proxy", "namespace": "kube-system"}})
    subject = {"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"}
    for name, subjects in (("kubeadm:node-proxier", [subject]),
                           ("unrelated", [{**subject, "name": "someone-else"}])):
        fake_kube.seed({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                        "metadata": {"name": name},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                    "name": "system:node-proxier"},
                        "subjects": subjects})
    b = (await take_backup(kube, settings(), clock=vtime)).backup
    assert b.kube_proxy_service_account["metadata"] == {"name": "kube-proxy",
                                                        "namespace": "kube-system"}
    assert [c["metadata"]["name"] for c in b.kube_proxy_role_bindings] == ["kubeadm:node-proxier"]
    fake_kube.remove("serviceaccounts", "kube-proxy", "kube-system")
    fake_kube.remove("clusterrolebindings", "kubeadm:node-proxier")
    done = await restore_backup(kube, b)
    assert "created ServiceAccount kube-system/kube-proxy" in done
    assert any("ClusterRoleBinding" in line and "kubeadm:node-proxier" in line for line in done)
    fake_kube.deny("list", "clusterrolebindings")
    report = await take_backup(kube, settings(), clock=vtime)
    assert any("ClusterRoleBindings of ServiceAccount kube-system/kube-proxy not captured" in n
               for n in report.notes)


async def test_missing_objects_and_forbidden_secrets_are_notes(fake_kube, kube, vtime):
    seed_full(fake_kube)
    fake_kube.deny("list", "secrets")
    report = await take_backup(kube, settings(), clock=vtime)
    assert report.backup.kube_proxy_daemonset is None
    text = "\n".join(report.notes)
    assert "DaemonSet kube-system/kube-proxy not found" in text
    assert "cannot bring kube-proxy back" in text
    assert "listing Secrets in kube-system is not allowed" in text
    assert "helm get values cilium -n kube-system -o yaml" in text, "the command that captures it"
    assert report.backup.notes == report.notes, "the backup itself says what it lacks"


async def test_v2alpha1_node_configs(fake_kube, kube, vtime):
    seed_canary(fake_kube)
    fake_kube.remove("ciliumnodeconfigs", "kube-proxy-replacement", "kube-system", api_version="cilium.io/v2")
    fake_kube.unserve("cilium.io", "v2")
    from tests.fakekube.fixtures import cilium_node_config
    fake_kube.seed(cilium_node_config("old", "kube-system", {}, {"kube-proxy-replacement": "strict"},
                                      version="v2alpha1"))
    b = (await take_backup(kube, settings(), clock=vtime)).backup
    assert [(c["apiVersion"], c["metadata"]["name"]) for c in b.node_configs] == [("cilium.io/v2alpha1", "old")]


async def test_configmap_store_round_trip(fake_kube, kube, vtime):
    seed_canary(fake_kube)
    s = settings()
    store = ConfigMapBackupStore(kube, s.namespace, s.backup_configmap)
    assert await store.load() is None
    b = (await take_backup(kube, s, clock=vtime)).backup
    await store.save(b)
    await store.save(b)  # second save updates in place
    assert await store.load() == b
    cm = fake_kube.get("configmaps", s.backup_configmap, s.namespace)
    cm["data"]["backup.json"] = "{not json"
    fake_kube.seed(cm)
    with pytest.raises(BackupError, match="not valid JSON"):
        await store.load()


async def test_file_store_round_trip(fake_kube, kube, vtime, tmp_path):
    seed_canary(fake_kube)
    store = FileBackupStore(str(tmp_path / "sub" / "backup.json"))
    assert await store.load() is None
    b = (await take_backup(kube, settings(), clock=vtime)).backup
    await store.save(b)
    assert await store.load() == b
    (tmp_path / "sub" / "backup.json").write_text('{"format": "nope"}')
    with pytest.raises(BackupError, match="not a kpr-exporter backup"):
        await store.load()


async def test_restore_round_trip(fake_kube, kube, vtime):
    seed_canary(fake_kube)
    s = settings()
    original = (await take_backup(kube, s, clock=vtime)).backup
    cm = fake_kube.get("configmaps", "cilium-config", "kube-system")
    cm["data"]["kube-proxy-replacement"] = "true"
    fake_kube.seed(cm)
    fake_kube.remove("daemonsets", "kube-proxy", "kube-system")
    fake_kube.remove("configmaps", "kube-proxy", "kube-system")
    fake_kube.remove("ciliumnodeconfigs", "kube-proxy-replacement", "kube-system")

    done = await restore_backup(kube, original)
    assert sorted(done) == [
        "created CiliumNodeConfig kube-system/kube-proxy-replacement",
        "created ConfigMap kube-system/kube-proxy",
        "created DaemonSet kube-system/kube-proxy",
        "replaced ConfigMap kube-system/cilium-config",
    ]
    again = (await take_backup(kube, s, clock=vtime)).backup
    assert again == original
    assert await restore_backup(kube, original) == []
