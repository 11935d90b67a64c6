"""k8sServiceHost must not pin the agents to one of several control-plane nodes."""

from __future__ import annotations

import pytest

from exporter.preflight import FAIL, PASS
from tests.preflight.helpers import GOOD_ENV, cilium_ds, good_facts, kernel_nodes, row, said

PLANE = {"node-role.kubernetes.io/control-plane": ""}


def env(host: str) -> list[dict]:
    return [{"name": "KUBERNETES_SERVICE_HOST", "value": host}, GOOD_ENV[1]]


@pytest.mark.parametrize("host, planes, status, text", [
    ("10.0.0.11", ["cp-1", "cp-2", "cp-3"], FAIL, "control-plane node cp-1's own address"),
    ("cp-2", ["cp-1", "cp-2"], FAIL, "cp-2"),
    ("10.0.0.11", ["cp-1"], PASS, "1 control-plane node(s)"),
    ("api.example.internal", ["cp-1", "cp-2", "cp-3"], PASS, "3 control-plane node(s)"),
])
def test_single_node_service_host(host: str, planes: list[str], status: str, text: str) -> None:
    addresses = {f"cp-{i}": f"10.0.0.1{i}" for i in range(1, 4)}
    nodes = kernel_nodes({n: "6.1.0" for n in [*planes, "worker"]},
                         labels={n: PLANE for n in planes}, addresses=addresses)
    r = row(good_facts(cilium_daemonset=cilium_ds(env(host)), nodes=nodes), "k8s-service-host-ha")
    assert r.status == status and text in said(r), r
    if status == FAIL:
        assert "failure class 16" in r.why and "load-balanced" in r.todo


def test_unreadable_nodes_fail_with_the_reason() -> None:
    r = row(good_facts(nodes=None, errors={"nodes": "forbidden: list nodes"}), "k8s-service-host-ha")
    assert r.status == FAIL and "forbidden" in r.message
