"""Preflight: pure check tables, then good and bad clusters through the fake API.

Matrix: service host via env value / valueFrom / k8s-api-server-urls / missing; kernel
versions against the running Cilium's minimum (1.18: 5.4 fails; unknown version: 5.15 pass,
5.4 and 4.19.57 warn, 4.19.10, 5.0 and 5.1.3 fail, unparseable warn); kpr value true/false pass, strict fail (ConfigMap and CiliumNodeConfig),
partial warn; ETP Local and ClientIP affinity warn; hostPort warn, hostPort in the
NodePort range or on loopback fail; backup present / without kube-proxy / missing;
unreadable facts fail with the reason; table rendering and exit codes.
"""

from __future__ import annotations

import pytest

from exporter.preflight import FAIL, PASS, WARN, evaluate, exit_code, render_table
from exporter.preflight.checks.kernel import kernel_version
from exporter.preflight.gather import gather
from exporter.rollback.backup import ConfigMapBackupStore, take_backup
from exporter.cilium import NodeConfig
from exporter.rollback.model import Backup
from tests.fakekube.fixtures import configmap, daemonset, node, service
from tests.fakekube.helm import release_secret

from .helpers import BACKUP, GOOD_ENV, S, cilium_ds, good_facts, kernel_nodes, row, said


@pytest.mark.parametrize("facts, status, text", [
    (good_facts(), PASS, "api.example.internal"),
    (good_facts(cilium_daemonset=cilium_ds([
        {"name": "KUBERNETES_SERVICE_HOST", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "h"}}},
        {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"}])), PASS, "reference"),
    (good_facts(cilium_daemonset=cilium_ds([]),
                cilium_config={"k8s-api-server-urls": "https://10.0.0.1:6443"}), PASS, "k8s-api-server-urls"),
    (good_facts(cilium_daemonset=cilium_ds([])), FAIL, "k8sServiceHost"),
    (good_facts(cilium_daemonset=None), FAIL, "not found"),
    (good_facts(cilium_daemonset=None, errors={"cilium_daemonset": "forbidden: get daemonsets"}),
     FAIL, "could not check: forbidden"),
])
def test_service_host(facts, status, text):
    r = row(facts, "k8s-service-host")
    assert r.status == status and text in said(r)


OLD_CILIUM = "quay.io/cilium/cilium:latest"  # no version in the tag: socket-LB's own needs only


@pytest.mark.parametrize("image, kernels, status, text", [
    (OLD_CILIUM, {"a": "6.8.0-1-cloud", "b": "5.8.0"}, PASS, "2 node(s)"),
    (OLD_CILIUM, {"a": "5.4.0-150-generic"}, WARN, "a (5.4.0-150-generic)"),
    (OLD_CILIUM, {"a": "4.19.57-1"}, WARN, "getpeername"),
    (OLD_CILIUM, {"a": "4.19.10", "b": "6.1.0"}, FAIL, "a (4.19.10)"),
    (OLD_CILIUM, {"a": "5.0.21"}, FAIL, "5.0.21"),
    (OLD_CILIUM, {"a": "5.1.3"}, FAIL, "5.1.3"),
    (OLD_CILIUM, {"a": "5.1.16"}, WARN, "5.1.16"),
    (OLD_CILIUM, {"a": "weird"}, WARN, "unreadable kernel version on a (weird)"),
    (OLD_CILIUM, {}, FAIL, "no nodes"),
    ("quay.io/cilium/cilium:v1.18.3@sha256:0123", {"a": "5.4.0-150-generic", "b": "6.1.0"}, FAIL,
     "Cilium 1.18 needs kernel >= 5.10.0"),
    ("quay.io/cilium/cilium:v1.18.3", {"a": "5.10.0-28-amd64"}, PASS, "Cilium 1.18 needs >= 5.10.0"),
    ("quay.io/cilium/cilium:v1.17.9", {"a": "5.4.0-150-generic"}, WARN, "a (5.4.0-150-generic)"),
    ("quay.io/cilium/cilium:v1.17.9", {"a": "4.19.90"}, FAIL, "Cilium 1.17 needs kernel >= 5.4.0"),
    ("quay.io/cilium/cilium:v1.17.9", {"a": "4.18.0-477.el8.x86_64"}, WARN, "el8"),
    ("quay.io/cilium/cilium:v1.18.0", {"a": "4.18.0-477.el8.x86_64"}, FAIL, "el8"),
    ("quay.io/cilium/cilium:v1.15.2", {"a": "4.19.90"}, WARN, "4.19.90"),
])
def test_kernel(image, kernels, status, text):
    r = row(good_facts(nodes=kernel_nodes(kernels), cilium_daemonset=cilium_ds(GOOD_ENV, image)),
            "kernel")
    assert r.status == status and text in said(r), r


def test_kernel_version_parse():
    assert kernel_version("5.15.0-1052-azure") == (5, 15, 0)
    assert kernel_version("6.1") == (6, 1, 0)
    assert kernel_version("v6") is None


@pytest.mark.parametrize("config, cncs, status, text", [
    ({"kube-proxy-replacement": "true"}, (), PASS, "cilium-config=true"),
    ({}, (), PASS, "(unset: false)"),
    ({"kube-proxy-replacement": "strict"}, (), FAIL, "only \"true\""),
    ({"kube-proxy-replacement": "false"},
     (NodeConfig("kube-system", "canary", {}, {"kube-proxy-replacement": "strict"}),), FAIL,
     "CiliumNodeConfig kube-system/canary"),
    ({"kube-proxy-replacement": "partial"}, (), WARN, "deprecated"),
])
def test_kpr_value(config, cncs, status, text):
    r = row(good_facts(cilium_config=config, node_configs=cncs), "kpr-value")
    assert r.status == status and text in said(r)


def svc(name, **spec):
    s = service(name, "shop", "10.96.0.10", [80])
    s["spec"].update(spec)
    return s


def test_services():
    facts = good_facts(services=[svc("web", externalTrafficPolicy="Local", type="LoadBalancer"),
                                 svc("cart", sessionAffinity="ClientIP"), svc("plain")])
    assert row(facts, "external-traffic-policy").status == WARN
    assert "shop/web" in row(facts, "external-traffic-policy").message
    assert row(facts, "session-affinity").status == WARN
    assert "shop/cart" in row(facts, "session-affinity").message
    assert row(good_facts(), "external-traffic-policy").status == PASS
    assert row(good_facts(), "session-affinity").status == PASS


def pod_with_ports(name, *ports):
    return {"metadata": {"name": name, "namespace": "ingress"},
            "spec": {"containers": [{"name": "c", "ports": list(ports)}]}}


@pytest.mark.parametrize("pods, status, text", [
    ([], PASS, "no pod"),
    ([pod_with_ports("nginx", {"containerPort": 80, "hostPort": 80})], WARN, "ingress/nginx:80"),
    ([pod_with_ports("np", {"containerPort": 80, "hostPort": 30080})], FAIL, "NodePort range"),
    ([pod_with_ports("lo", {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"})], FAIL,
     "ingress/lo:8080"),
    ([pod_with_ports("none", {"containerPort": 80})], PASS, "no pod"),
])
def test_host_port(pods, status, text):
    r = row(good_facts(pods=pods), "host-port")
    assert r.status == status and text in said(r)


@pytest.mark.parametrize("backup, errors, status, text", [
    (BACKUP, {}, PASS, "Helm revision 7"),
    (Backup("2026-11-21T00:00:00Z"), {}, WARN, "holds no kube-proxy DaemonSet"),
    (None, {}, FAIL, "kpr-exporter backup"),
    (None, {"backup": "ConfigMap kpr/kpr-exporter-backup: not valid JSON"}, FAIL, "not valid JSON"),
])
def test_backup(backup, errors, status, text):
    r = row(good_facts(backup=backup, errors=errors), "backup")
    assert r.status == status and text in said(r)


def test_table_and_exit_code():
    rows = evaluate(good_facts(), S)
    assert exit_code(rows) == 0 and {r.status for r in rows} == {PASS}
    text = render_table(rows)
    assert text.splitlines()[0].split() == ["CHECK", "STATUS", "MESSAGE"]
    assert "why:" not in text and "do:" not in text, "passing rows stay one line"
    assert "k8s-service-host         PASS" in text
    assert text.endswith(f"{len(rows)} checks: 0 failed, 0 warnings") and len(rows) >= 14
    bad = evaluate(good_facts(backup=None), S)
    assert exit_code(bad) == 1 and "2 failed" in render_table(bad)
    assert "do: run `kpr-exporter backup` before switching" in render_table(bad)


def seed_cluster(fake, *, good: bool):
    for name, kernel in (("node-a", "6.1.0-18-amd64" if good else "4.19.10"), ("node-b", "5.15.0")):
        n = node(name)
        n["status"]["nodeInfo"] = {"kernelVersion": kernel}
        fake.seed(n)
    fake.seed(configmap("cilium-config", "kube-system",
                        {"kube-proxy-replacement": "false" if good else "strict"}))
    fake.seed(cilium_ds(GOOD_ENV if good else []))
    fake.seed(daemonset("kube-proxy", "kube-system", {"k8s-app": "kube-proxy"}))
    fake.seed(configmap("kube-proxy", "kube-system", {"config.conf": "x"}))
    fake.seed(svc("web", externalTrafficPolicy="Local" if not good else "Cluster"))
    fake.seed(release_secret("cilium", 3))


async def test_good_cluster_through_the_api(fake_kube, kube, vtime):
    seed_cluster(fake_kube, good=True)
    store = ConfigMapBackupStore(kube, S.namespace, S.backup_configmap)
    await store.save((await take_backup(kube, S, clock=vtime)).backup)
    rows = evaluate(await gather(kube, S, store), S)
    assert [(r.check, r.status) for r in rows if r.status != PASS] == [], render_table(rows)
    fake_kube.seed(release_secret("cilium", 3, status="superseded"))
    fake_kube.seed(release_secret("cilium", 4))
    rows = {r.check: r for r in evaluate(await gather(kube, S, store), S)}
    assert rows["backup-freshness"].status == FAIL
    assert "revision 3; the release is now at revision 4" in rows["backup-freshness"].message


async def test_bad_cluster_through_the_api(fake_kube, kube):
    seed_cluster(fake_kube, good=False)
    fake_kube.deny("list", "pods")
    store = ConfigMapBackupStore(kube, S.namespace, S.backup_configmap)
    rows = {r.check: r for r in evaluate(await gather(kube, S, store), S)}
    assert {k: r.status for k, r in rows.items()} == {
        "k8s-service-host": FAIL, "k8s-service-host-ha": PASS, "kernel": FAIL, "kpr-value": FAIL,
        "lb-mode": PASS, "lb-map-size": PASS, "external-traffic-policy": WARN,
        "session-affinity": PASS, "host-port": FAIL, "mesh-socket-lb": FAIL,
        "kube-proxy-mode": PASS, "owners": PASS, "backup": FAIL, "backup-freshness": FAIL,
    }
    assert "could not check: forbidden" in rows["host-port"].message
