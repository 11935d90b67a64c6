"""The user's own Services as ClusterIP targets (``--probe.extra-service-selector``), listed
through the product's Kubernetes client from the fake API on 127.0.0.1, dialled for real on
loopback: exactly the matching Services are checked, a reachable one passes and a closed
one fails, headless and ExternalName ones are skipped with one log line each, a refused
listing is counted and the last good list kept, and a listing that never worked adds none."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.verify import results as r
from exporter.verify.echo import EchoServer, Identity
from exporter.verify.extra import ServiceLister, convert
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.verify.net import Dialer
from exporter.verify.serve import ProbeSettingsError, build
from exporter.verify.service import ProbeLoop
from exporter.verify.settings import ProbeSettings
from exporter.verify.targets import NodeTarget, Targets
from tests.fakekube.fixtures import FakeKube, service
from tests.verify.conftest import LIMITS

LOOP = "127.0.0.1"
SELECTOR = "kpr-exporter.io/probe=true"
CHECKS = (r.CLUSTERIP_POD, r.CLUSTERIP_HOST)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections are refused."""
    with socket.socket() as s:
        s.bind((LOOP, 0))
        return int(s.getsockname()[1])


def labelled(svc: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    svc["metadata"]["labels"] = labels
    return svc


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer(Identity("echo-0", "node-a"), LOOP)
    await server.start()
    yield server
    await server.stop()


def targets(echo: EchoServer) -> Targets:
    end = (LOOP, echo.port)
    return Targets(cluster_ip=end, node_port=1, loadbalancer=None, etp_local_node_port=2,
                   health_check_node_port=3, affinity=end, no_endpoints=end, apiserver=end,
                   hostport=4, nodes={"node-a": NodeTarget("node-a", "ebpf", (LOOP,))})


def make_loop(echo: EchoServer, lister: ServiceLister) -> ProbeLoop:
    registry = CollectorRegistry()
    fixed = targets(echo)
    return ProbeLoop(node="node-a", host=Dialer(LOOP), pod=Dialer(LOOP), load=lambda: fixed,
                     metrics=ProbeMetrics(registry), status=ProbeStatus("node-a", registry),
                     k=1, checks=CHECKS, limits=LIMITS, clock=lambda: 1000.0, extra=lister)


def seed(fake: FakeKube, echo: EchoServer, closed: int) -> None:
    mine = {"kpr-exporter.io/probe": "true"}
    fake.seed(labelled(service("web", "shop", LOOP, [echo.port]), mine))
    fake.seed(labelled(service("db", "shop", LOOP, [closed]), mine))
    fake.seed(labelled(service("other", "shop", LOOP, [echo.port]), {"app": "other"}))
    fake.seed(labelled(service("peers", "shop", "None", [echo.port]), mine))
    external = labelled(service("ext", "shop", "", [80]), mine)
    external["spec"] = {"type": "ExternalName", "externalName": "example.invalid"}
    fake.seed(external)


async def test_exactly_the_matching_services_are_checked_from_pod_and_host(
        fake_kube: FakeKube, kube: Any, echo: EchoServer,
        caplog: pytest.LogCaptureFixture) -> None:
    closed = closed_port()
    seed(fake_kube, echo, closed)
    loop = make_loop(echo, ServiceLister(kube, SELECTOR))
    with caplog.at_level(logging.WARNING, logger="exporter.verify.extra"):
        found = await loop.round()
        again = await loop.round()
    extra = {(x.check, x.address): x.result for x in found if "(Service " in x.address}
    assert extra == {
        (r.CLUSTERIP_POD, f"{LOOP}:{echo.port} (Service shop/web)"): r.PASS,
        (r.CLUSTERIP_POD, f"{LOOP}:{closed} (Service shop/db)"): r.FAIL,
        (r.CLUSTERIP_HOST, f"{LOOP}:{echo.port} (Service shop/web)"): r.PASS,
        (r.CLUSTERIP_HOST, f"{LOOP}:{closed} (Service shop/db)"): r.FAIL,
    }
    # the echo's own ClusterIP is still checked, once per check, first
    assert [(x.check, x.result) for x in found if "(Service " not in x.address] == [
        (r.CLUSTERIP_POD, r.PASS), (r.CLUSTERIP_HOST, r.PASS)]
    failed = [x for x in found if x.failed]
    assert failed and all("refused" in x.observed for x in failed)
    assert [(x.check, x.address, x.result) for x in again] == [
        (x.check, x.address, x.result) for x in found]
    skipped = [m.getMessage() for m in caplog.records if "is not probed" in m.getMessage()]
    assert sorted(skipped) == [  # logged once each, though two rounds listed them
        f"Service shop/ext matches {SELECTOR!r} but is not probed: an ExternalName Service "
        "has no ClusterIP",
        f"Service shop/peers matches {SELECTOR!r} but is not probed: a headless Service "
        "has no ClusterIP"]
    lists = [q for q in fake_kube.requests if q.method == "GET" and "services" in q.path]
    assert len(lists) == 2 and all("/namespaces/" not in q.path for q in lists)
    assert loop.status.target_errors == 0


async def test_a_namespace_restricts_the_listing(
        fake_kube: FakeKube, kube: Any, echo: EchoServer) -> None:
    seed(fake_kube, echo, closed_port())
    fake_kube.seed(labelled(service("api", "team", LOOP, [echo.port]),
                            {"kpr-exporter.io/probe": "true"}))
    loop = make_loop(echo, ServiceLister(kube, SELECTOR, namespace="team"))
    found = await loop.round()
    assert [x.address for x in found if "(Service " in x.address] == [
        f"{LOOP}:{echo.port} (Service team/api)"] * 2
    assert all(x.result == r.PASS for x in found)


async def test_a_refused_listing_keeps_the_last_good_list_and_is_counted(
        fake_kube: FakeKube, kube: Any, echo: EchoServer,
        caplog: pytest.LogCaptureFixture) -> None:
    closed = closed_port()
    seed(fake_kube, echo, closed)
    loop = make_loop(echo, ServiceLister(kube, SELECTOR))
    first = await loop.round()
    fake_kube.deny("list", "services")
    with caplog.at_level(logging.ERROR, logger="exporter.verify.service"):
        second = await loop.round()
    assert loop.status.target_errors == 1
    assert [(x.address, x.result) for x in second] == [(x.address, x.result) for x in first]
    assert len([x for x in second if "(Service " in x.address]) == 4
    (line,) = [m.getMessage() for m in caplog.records if "keeping the last good" in
               m.getMessage()]
    assert "forbidden" in line and "keeping the last good 2 target(s)" in line
    fake_kube.allow_all()
    fake_kube.remove("services", "db", "shop")
    third = await loop.round()
    assert [x.address for x in third if "(Service " in x.address] == [
        f"{LOOP}:{echo.port} (Service shop/web)"] * 2
    assert loop.status.target_errors == 1


async def test_a_listing_that_never_worked_adds_nothing_and_the_round_runs(
        fake_kube: FakeKube, kube: Any, echo: EchoServer) -> None:
    seed(fake_kube, echo, closed_port())
    fake_kube.deny("list", "services")
    loop = make_loop(echo, ServiceLister(kube, SELECTOR))
    found = await loop.round()
    assert [(x.check, x.result) for x in found] == [(c, r.PASS) for c in CHECKS]
    assert (loop.status.target_errors, loop.status.rounds) == (1, 1)


def test_each_cluster_ip_family_and_tcp_port_is_a_target() -> None:
    dual = service("dual", "ns", "10.96.0.20", [{"name": "http", "port": 80, "protocol": "TCP"},
                                                {"name": "dns", "port": 53, "protocol": "UDP"},
                                                {"name": "grpc", "port": 9090}])
    dual["spec"]["clusterIPs"] = ["10.96.0.20", "fd00::20"]
    udp = service("udp", "ns", "10.96.0.21", [{"name": "dns", "port": 53, "protocol": "UDP"}])
    found, skipped = convert([dual, udp])
    assert [(x.name, x.describe()) for x in found] == [
        ("ns/dual", "10.96.0.20:80 (Service ns/dual)"),
        ("ns/dual", "10.96.0.20:9090 (Service ns/dual)"),
        ("ns/dual", "[fd00::20]:80 (Service ns/dual)"),
        ("ns/dual", "[fd00::20]:9090 (Service ns/dual)")]
    assert skipped == {"ns/udp": "no TCP port"}


def test_the_selector_is_checked_and_the_namespace_needs_one(tmp_path: Path) -> None:
    assert ProbeSettings(extra_service_selector="app in (a,b),tier!=db").problems() == []
    assert ProbeSettings(extra_service_selector="a=b=c", extra_service_namespace="").problems() \
        == ["probe.extra_service_selector 'a=b=c' is not a label selector"]
    assert ProbeSettings(extra_service_namespace="team").problems() == [
        "probe.extra_service_namespace needs probe.extra_service_selector"]
    with pytest.raises(ProbeSettingsError, match="is not a label selector"):
        build(ProbeSettings(node_name="n", targets_file="t", extra_service_selector="a=b=c"))
    with pytest.raises(ProbeSettingsError, match="--probe.extra-service-selector: no usable"):
        build(ProbeSettings(node_name="n", targets_file="t", extra_service_selector="a=b",
                            kubeconfig=str(tmp_path / "missing")))


async def test_build_lists_through_the_kubeconfig_it_is_given(
        fake_kube: FakeKube, echo: EchoServer) -> None:
    seed(fake_kube, echo, closed_port())
    cfg = ProbeSettings(node_name="node-a", targets_file="unused", listen_address="127.0.0.1:0",
                        extra_service_selector=SELECTOR, extra_service_namespace="shop",
                        kubeconfig=fake_kube.kubeconfig)
    loop, _server = build(cfg)
    assert isinstance(loop.extra, ServiceLister)
    assert loop.extra.namespace == "shop" and loop.extra.selector == SELECTOR
    listed = await loop.extra()
    await loop.extra.close()
    assert sorted(x.name for x in listed) == ["shop/db", "shop/web"]
