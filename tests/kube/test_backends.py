"""BackendMap (pure feeding) and BackendWatcher (against the fake API server).

Matrix:
- backends from EndpointSlices: add, update (address gone), delete, several slices of
  one Service, the same backend in two Services is ambiguous (None), headless Services
  own no backends (also when the Service arrives after its slices), null ports skipped
- frontends from Services: ClusterIPs (dual stack), external IPs, load-balancer IPs
- SYNC replaces everything; the entry cap counts what did not fit; exported gauges
- the watcher follows the API and clears the map when it loses access
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import CollectorRegistry

from exporter.kube.backends import BackendMap, BackendWatcher
from exporter.kube.client import SYNC, WatchEvent
from exporter.kube.settings import KubeSettings
from exporter.model import ServiceRef
from exporter.roles import ServiceDirectory
from tests.fakekube.fixtures import endpoint_slice, service

CART = ServiceRef("shop", "cart")
CART_ALT = ServiceRef("shop", "cart-alt")


@pytest.fixture
def backends():
    return BackendMap(max_entries=100)


def test_backends_follow_endpoint_slices(backends):
    assert isinstance(backends, ServiceDirectory)
    backends.apply_slice(endpoint_slice("cart-a", "shop", "cart", ["10.0.1.5", "10.0.2.7"], [8080]))
    backends.apply_slice(endpoint_slice("cart-b", "shop", "cart", ["10.0.3.9"], [8080]))
    assert backends.service_for_backend("10.0.1.5", 8080) == CART
    assert backends.service_for_backend("10.0.3.9", 8080) == CART
    assert backends.service_for_backend("10.0.1.5", 9090) is None
    assert backends.service_for_backend("10.9.9.9", 8080) is None

    backends.apply_slice(endpoint_slice("cart-a", "shop", "cart", ["10.0.2.7"], [8080]))
    assert backends.service_for_backend("10.0.1.5", 8080) is None
    assert backends.service_for_backend("10.0.2.7", 8080) == CART
    backends.apply_slice(endpoint_slice("cart-b", "shop", "cart", [], [8080]), deleted=True)
    assert backends.service_for_backend("10.0.3.9", 8080) is None
    assert backends.entries == 1


def test_a_backend_of_two_services_is_ambiguous_until_one_lets_go(backends):
    backends.apply_slice(endpoint_slice("cart-a", "shop", "cart", ["10.0.1.5"], [8080]))
    backends.apply_slice(endpoint_slice("alt-a", "shop", "cart-alt", ["10.0.1.5"], [8080]))
    assert backends.service_for_backend("10.0.1.5", 8080) is None
    backends.apply_slice(endpoint_slice("alt-a", "shop", "cart-alt", [], [8080]), deleted=True)
    assert backends.service_for_backend("10.0.1.5", 8080) == CART


def test_headless_services_own_no_backends(backends):
    # StatefulSet pattern: a headless and a ClusterIP Service over the same pods
    backends.apply_slice(endpoint_slice("cart-a", "shop", "cart", ["10.0.1.5"], [8080]))
    backends.apply_slice(endpoint_slice("peers-a", "shop", "cart-peers", ["10.0.1.5"], [8080]))
    assert backends.service_for_backend("10.0.1.5", 8080) is None
    backends.apply_service(service("cart-peers", "shop", "None", [8080]))
    assert backends.service_for_backend("10.0.1.5", 8080) == CART
    backends.apply_service(service("cart-peers", "shop", "None", [8080]), deleted=True)
    assert backends.service_for_backend("10.0.1.5", 8080) is None


def test_slices_without_service_label_or_port_are_skipped(backends):
    unlabelled = endpoint_slice("x", "shop", "cart", ["10.0.1.5"], [8080])
    del unlabelled["metadata"]["labels"]
    backends.apply_slice(unlabelled)
    backends.apply_slice(endpoint_slice("y", "shop", "cart", ["10.0.1.6"], [{"name": "all"}]))
    assert backends.entries == 0


def test_frontends_from_cluster_external_and_load_balancer_ips(backends):
    svc = service("cart", "shop", "10.96.0.10", [80, 443], external_ips=["192.0.2.10"],
                  load_balancer_ips=["198.51.100.7"])
    svc["spec"]["clusterIPs"] = ["10.96.0.10", "fd00::10"]
    backends.apply_service(svc)
    for ip in ("10.96.0.10", "fd00::10", "192.0.2.10", "198.51.100.7"):
        assert backends.service_for_frontend(ip, 443) == CART
    assert backends.service_for_frontend("10.96.0.10", 8080) is None
    assert backends.service_for_backend("10.96.0.10", 80) is None
    backends.apply_service(service("cart", "shop", "10.96.0.11", [80]))
    assert backends.service_for_frontend("10.96.0.10", 80) is None
    assert backends.service_for_frontend("10.96.0.11", 80) == CART
    backends.apply_service(service("cart", "shop", "10.96.0.11", [80]), deleted=True)
    assert backends.entries == 0


def test_sync_replaces_everything(backends):
    backends.apply_slice(endpoint_slice("old", "shop", "cart", ["10.0.1.5"], [8080]))
    backends.slice_event(WatchEvent(SYNC, objects=(
        endpoint_slice("new", "shop", "cart-alt", ["10.0.9.9"], [8080]),)))
    assert backends.service_for_backend("10.0.1.5", 8080) is None
    assert backends.service_for_backend("10.0.9.9", 8080) == CART_ALT


def test_the_cap_counts_what_does_not_fit():
    backends = BackendMap(max_entries=3)
    registry = CollectorRegistry()
    registry.register(backends)
    backends.apply_slice(endpoint_slice("a", "shop", "cart",
                                        ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"], [80]))
    backends.apply_service(service("cart", "shop", "10.96.0.10", [80]))
    assert backends.entries == 3
    assert registry.get_sample_value("kpr_backend_map_entries", {"map": "backend"}) == 3
    assert registry.get_sample_value("kpr_backend_map_entries", {"map": "frontend"}) == 0
    assert registry.get_sample_value("kpr_backend_map_overflow_total") == 2
    backends.apply_slice(endpoint_slice("a", "shop", "cart", [], [80]), deleted=True)
    backends.apply_service(service("cart", "shop", "10.96.0.10", [80]))
    assert registry.get_sample_value("kpr_backend_map_entries", {"map": "frontend"}) == 1


async def wait_for(mirror, predicate, timeout=5.0):
    """Re-check ``predicate`` after each change the mirror hands on."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await mirror.changed()


async def test_watcher_follows_the_api_and_clears_on_lost_access(fake_kube, kube):
    fake_kube.seed(service("cart", "shop", "10.96.0.10", [80]))
    fake_kube.seed(endpoint_slice("cart-a", "shop", "cart", ["10.0.1.5"], [8080]))
    backends = BackendMap()
    settings = KubeSettings(retry_min_seconds=0.01, retry_max_seconds=0.05)
    watcher = BackendWatcher(kube, settings, backends)
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(5):
            await watcher.wait_synced()
        assert backends.service_for_backend("10.0.1.5", 8080) == CART
        assert backends.service_for_frontend("10.96.0.10", 80) == CART

        fake_kube.seed(endpoint_slice("cart-a", "shop", "cart", ["10.0.1.6"], [8080]))
        await wait_for(watcher.slices,
                       lambda: backends.service_for_backend("10.0.1.6", 8080) == CART)
        assert backends.service_for_backend("10.0.1.5", 8080) is None

        fake_kube.deny("watch", "endpointslices")
        fake_kube.drop_watches()  # the next watch is refused
        await wait_for(watcher.slices,
                       lambda: backends.service_for_backend("10.0.1.6", 8080) is None)
        assert not watcher.slices.available
        assert backends.service_for_frontend("10.96.0.10", 80) == CART
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
