"""Preflight: pure check tables, then good and bad clusters through the fake API.

Matrix: service host via env value / valueFrom / k8s-api-server-urls / missing; kernel
versions (5.15 pass, 5.4 and 4.19.57 warn, 4.19.10, 5.0 and 5.1.3 fail, unparseable
warn); kpr value true/false pass, strict fail (ConfigMap and CiliumNodeConfig),
partial warn; ETP Local and ClientIP affinity warn; hostPort warn, hostPort in the
NodePort range or on loopback fail; backup present / without kube-proxy / missing;
unreadable facts fail with the reason; table rendering and exit codes.
"""

from __future__ import annotations

import pytest

from exporter.rollback.backup import ConfigMapBackupStore, take_backup
from exporter.rollback.model import Backup, NodeConfig
from exporter.rollback.preflight import (
    FAIL, PASS, WARN, Facts, Row, evaluate, exit_code, gather, kernel_version, render_table,
)
from tests.fakekube.fixtures import configmap, daemonset, node, service

from .cluster import CILIUM_LABELS, settings

S = settings()


def cilium_ds(env=None):
    ds = daemonset("cilium", "kube-system", CILIUM_LABELS)
    if env is not None:
        ds["spec"]["template"]["spec"]["containers"][0]["env"] = env
    return ds


GOOD_ENV = [{"name": "KUBERNETES_SERVICE_HOST", "value": "api.example.internal"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"}]
BACKUP = Backup("2026-11-20T10:00:00Z", {}, {"kind": "DaemonSet"}, {}, (), {"revision": 7})


def good_facts(**overrides) -> Facts:
    base = dict(cilium_daemonset=cilium_ds(GOOD_ENV), cilium_config={"kube-proxy-replacement": "false"},
                kernels={"node-a": "6.1.0-18-amd64", "node-b": "5.15.0-1052-azure"},
                services=[], pods=[], backup=BACKUP)
    base.update(overrides)
    return Facts(**base)


def row(facts: Facts, check: str) -> Row:
    (found,) = [r for r in evaluate(facts, S) if r.check == check]
    return found


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
    assert r.status == status and text in r.message


@pytest.mark.parametrize("kernels, status, text", [
    ({"a": "6.8.0-1-cloud", "b": "5.8.0"}, PASS, "2 node(s)"),
    ({"a": "5.4.0-150-generic"}, WARN, "a (5.4.0-150-generic)"),
    ({"a": "4.19.57-1"}, WARN, "getpeername"),
    ({"a": "4.19.10", "b": "6.1.0"}, FAIL, "a (4.19.10)"),
    ({"a": "5.0.21"}, FAIL, "5.0.21"),
    ({"a": "5.1.3"}, FAIL, "5.1.3"),
    ({"a": "5.1.16"}, WARN, "5.1.16"),
    ({"a": "weird"}, WARN, "unreadable kernel version on a (weird)"),
    ({}, FAIL, "no nodes"),
])
def test_kernel(kernels, status, text):
    r = row(good_facts(kernels=kernels), "kernel")
    assert r.status == status and text in r.message


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
    assert r.status == status and text in r.message


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
    assert r.status == status and text in r.message


@pytest.mark.parametrize("backup, errors, status, text", [
    (BACKUP, {}, PASS, "Helm revision 7"),
    (Backup("2026-11-21T00:00:00Z"), {}, WARN, "holds no kube-proxy DaemonSet"),
    (None, {}, FAIL, "kpr-exporter backup"),
    (None, {"backup": "ConfigMap kpr/kpr-exporter-backup: not valid JSON"}, FAIL, "not valid JSON"),
])
def test_backup(backup, errors, status, text):
    r = row(good_facts(backup=backup, errors=errors), "backup")
    assert r.status == status and text in r.message


def test_table_and_exit_code():
    rows = evaluate(good_facts(), S)
    assert exit_code(rows) == 0 and {r.status for r in rows} == {PASS}
    text = render_table(rows)
    assert text.splitlines()[0].split() == ["CHECK", "STATUS", "MESSAGE"]
    assert "k8s-service-host         PASS" in text
    assert text.endswith("7 checks: 0 failed, 0 warnings")
    bad = evaluate(good_facts(backup=None), S)
    assert exit_code(bad) == 1 and "1 failed" in render_table(bad)


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


async def test_good_cluster_through_the_api(fake_kube, kube, vtime):
    seed_cluster(fake_kube, good=True)
    store = ConfigMapBackupStore(kube, S.namespace, S.backup_configmap)
    await store.save((await take_backup(kube, S, clock=vtime)).backup)
    rows = evaluate(await gather(kube, S, store), S)
    assert [(r.check, r.status) for r in rows if r.status != PASS] == [], render_table(rows)


async def test_bad_cluster_through_the_api(fake_kube, kube):
    seed_cluster(fake_kube, good=False)
    fake_kube.deny("list", "pods")
    store = ConfigMapBackupStore(kube, S.namespace, S.backup_configmap)
    rows = {r.check: r for r in evaluate(await gather(kube, S, store), S)}
    assert {k: r.status for k, r in rows.items()} == {
        "k8s-service-host": FAIL, "kernel": FAIL, "kpr-value": FAIL, "external-traffic-policy": WARN,
        "session-affinity": PASS, "host-port": FAIL, "backup": FAIL,
    }
    assert "could not check: forbidden" in rows["host-port"].message
