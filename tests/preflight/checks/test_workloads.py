"""hostPort against the configured NodePort range, and socket-LB next to service meshes."""

from __future__ import annotations

import pytest

from exporter.preflight import FAIL, PASS, WARN
from exporter.preflight.checks.workloads import node_port_range
from tests.preflight.helpers import good_facts, row, said


def pod(name: str, namespace: str = "ingress", *, containers=("app",), init=(), ports=()) -> dict:
    spec = {"containers": [{"name": c, "ports": list(ports) if i == 0 else []}
                           for i, c in enumerate(containers)],
            "initContainers": [{"name": c} for c in init]}
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.mark.parametrize("text, expected", [
    ("", (30000, 32767)), ("20000-22767", (20000, 22767)), ("20000,22767", (20000, 22767)),
    ("nonsense", (30000, 32767)),
])
def test_node_port_range_comes_from_cilium_config(text: str, expected: tuple[int, int]) -> None:
    assert node_port_range({"node-port-range": text} if text else {}) == expected


def test_host_port_is_judged_against_the_configured_range() -> None:
    pods = [pod("lb", ports=[{"containerPort": 80, "hostPort": 21000}])]
    default = row(good_facts(pods=pods), "host-port")
    custom = row(good_facts(pods=pods, cilium_config={"node-port-range": "20000-22767"}), "host-port")
    assert default.status == WARN
    assert custom.status == FAIL and "20000-22767" in custom.message and "failure class 1" in custom.why


@pytest.mark.parametrize("pods, namespaces, config, status, text", [
    ([pod("web", "shop")], [], {}, PASS, "no service-mesh"),
    ([pod("web", "shop", containers=("app", "istio-proxy"))], [], {}, FAIL, "namespace shop"),
    ([pod("web", "shop", init=("linkerd-proxy",))], [], {}, FAIL, "failure class 7"),
    ([], [{"metadata": {"name": "pay", "labels": {"istio-injection": "enabled"}}}], {}, FAIL,
     "namespace pay"),
    ([], [{"metadata": {"name": "pay", "labels": {"istio.io/rev": "1-22"}}}], {}, FAIL, "pay"),
    ([], [{"metadata": {"name": "pay", "annotations": {"linkerd.io/inject": "enabled"}}}], {}, FAIL,
     "pay"),
    ([], [{"metadata": {"name": "pay", "labels": {"istio-injection": "disabled"}}}], {}, PASS, "no"),
    ([pod("web", "shop", containers=("app", "istio-proxy"))], [],
     {"bpf-lb-sock-hostns-only": "true"}, PASS, "host-namespace only"),
])
def test_mesh_sidecars_need_host_namespace_only_socket_lb(pods, namespaces, config, status, text):
    r = row(good_facts(pods=pods, namespaces=namespaces, cilium_config=config), "mesh-socket-lb")
    assert r.status == status and text in said(r), r
