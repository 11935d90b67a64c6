"""The load-balancer mode against routing, and the LB map size against Services x backends."""

from __future__ import annotations

import pytest

from exporter.preflight import FAIL, PASS, WARN
from exporter.preflight.checks.config import estimate_lb_entries
from tests.fakekube.fixtures import endpoint_slice, service
from tests.preflight.helpers import good_facts, row, said


@pytest.mark.parametrize("config, status, text", [
    ({}, PASS, "snat with tunnel routing"),
    ({"bpf-lb-mode": "dsr", "routing-mode": "native"}, WARN, "failure class 13"),
    ({"bpf-lb-mode": "hybrid", "tunnel": "disabled"}, WARN, "native routing"),
    ({"bpf-lb-mode": "dsr", "routing-mode": "tunnel"}, FAIL, "tunnel routing (vxlan)"),
    ({"bpf-lb-mode": "dsr"}, FAIL, "dsr-dispatch opt"),
    ({"bpf-lb-mode": "dsr", "routing-mode": "tunnel", "tunnel-protocol": "geneve",
      "bpf-lb-dsr-dispatch": "geneve"}, WARN, "dispatch geneve"),
])
def test_lb_mode(config: dict, status: str, text: str) -> None:
    r = row(good_facts(cilium_config=config), "lb-mode")
    assert r.status == status and text in said(r), r


def services(count: int, backends: int) -> tuple[list[dict], list[dict]]:
    svcs, slices = [], []
    for i in range(count):
        svcs.append(service(f"s{i}", "shop", f"10.96.{i // 250}.{i % 250}", [80]))
        slices.append(endpoint_slice(f"s{i}-x", "shop", f"s{i}",
                                     [f"10.1.{i % 250}.{j}" for j in range(backends)], [80]))
    return svcs, slices


def test_estimate_counts_frontends_ports_and_backends() -> None:
    svcs, slices = services(2, 3)
    assert estimate_lb_entries(svcs, slices) == 2 * 1 * (3 + 1)
    svcs[0]["spec"]["type"] = "NodePort"
    assert estimate_lb_entries(svcs, slices) == 3 * 4 + 4
    assert estimate_lb_entries([{"spec": {"type": "ExternalName"}}], []) == 0


@pytest.mark.parametrize("limit, status", [("65536", PASS), ("250", WARN), ("200", FAIL),
                                           ("lots", FAIL)])
def test_lb_map_size(limit: str, status: str) -> None:
    svcs, slices = services(40, 4)  # 40 x (4 + 1) = 200 entries
    r = row(good_facts(cilium_config={"bpf-lb-map-max": limit}, services=svcs,
                       endpoint_slices=slices), "lb-map-size")
    assert r.status == status, r
    if status != PASS and limit.isdigit():
        assert "about 200 LB map entries" in r.message and "failure class 12" in r.why
