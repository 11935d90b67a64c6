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

from .cluster import seed_canary, seed_full, settings


def helm_secret(revision: int, status: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": f"sh.helm.release.v1.cilium.v{revision}", "namespace": "kube-system",
                         "labels": {"owner": "helm", "name": "cilium", "status": status,
                                    "version": str(revision)}},
            "type": "helm.sh/release.v1", "data": {"release": "H4sI"}}


async def test_capture_strips_server_fields_and_records_helm(fake_kube, kube, vtime):
    seed_canary(fake_kube)
    for rev, status in ((1, "superseded"), (2, "superseded"), (10, "deployed")):
        fake_kube.seed(helm_secret(rev, status))
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
    assert b.helm_release == {"name": "cilium", "revision": 10, "status": "deployed",
                              "secret": "sh.helm.release.v1.cilium.v10"}


async def test_missing_objects_and_forbidden_secrets_are_notes(fake_kube, kube, vtime):
    seed_full(fake_kube)
    fake_kube.deny("list", "secrets")
    report = await take_backup(kube, settings(), clock=vtime)
    assert report.backup.kube_proxy_daemonset is None
    text = "\n".join(report.notes)
    assert "DaemonSet kube-system/kube-proxy not found" in text
    assert "cannot bring kube-proxy back" in text
    assert "listing Secrets is not allowed" in text


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
