"""Pytest fixture and object builders for the fake Kubernetes API server.

``tests/conftest.py`` registers the fixtures for every test::

    def test_something(fake_kube):
        fake_kube.seed(configmap("cilium-config", "kube-system", {"debug": "true"}))
        api = api_client(fake_kube)           # a real kubernetes.client.ApiClient
        ...
        fake_kube.deny("patch", "configmaps", "kube-system")   # next patch answers 403
        fake_kube.fail("get", "configmaps", status=503)        # next get answers 503
        assert fake_kube.requests[-1].method == "PATCH"

``fake_kube`` is a :class:`FakeKube` started on 127.0.0.1 (ephemeral port) with
``.url`` and ``.kubeconfig`` (a kubeconfig file in the test's temp dir, context
``fake``, bearer token ``fake-token``). ``kube`` is the product's own client
(``exporter.kube.client.KubeClient``) on that fake, built with ``kube_options`` (override that
fixture in a folder's ``conftest.py`` for other options, e.g. a test clock);
``kube_client(fake, **options)`` builds more clients.
The builders return plain dicts shaped like the real objects; they are data only and send
nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from exporter.kube.client import KubeClient
from exporter.simulator.kubeapi.kinds import LoggedRequest, ResourceType
from exporter.simulator.kubeapi.kubeconfig import write_kubeconfig
from exporter.simulator.kubeapi.objects import (
    cilium_node_config, configmap, daemonset, endpoint_slice, node, pod, service,
)
from exporter.simulator.kubeapi.server import FakeKube

__all__ = [
    "FakeKube", "LoggedRequest", "ResourceType", "fake_kube", "kube", "kube_client",
    "kube_options",
    "write_kubeconfig",
    "api_client", "node", "pod", "configmap", "cilium_node_config", "service",
    "endpoint_slice", "daemonset", "start_fake_kube",
]

def start_fake_kube(directory: Path, **options: Any) -> FakeKube:
    """Start a fake (caller stops it) and write its kubeconfig into ``directory``."""
    fake = FakeKube(**options)
    fake.start()
    fake.kubeconfig = str(write_kubeconfig(directory / "kubeconfig", fake.url))
    return fake


@pytest.fixture
def fake_kube(tmp_path: Path) -> Iterator[FakeKube]:
    """A running fake API server; stopped after the test."""
    fake = start_fake_kube(tmp_path)
    try:
        yield fake
    finally:
        fake.stop()


@asynccontextmanager
async def kube_client(fake: FakeKube, **options: Any) -> AsyncIterator[KubeClient]:
    """The product's client on ``fake`` (5 s request timeout unless given); closed on exit."""
    client = KubeClient.connect(fake.kubeconfig, **{"request_timeout": 5.0, **options})
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def kube_options() -> dict[str, Any]:
    """Options of the ``kube`` client; a folder overrides this fixture for its own (e.g. a
    clock its tests move by hand)."""
    return {}


@pytest.fixture
async def kube(fake_kube: FakeKube, kube_options: dict[str, Any]) -> AsyncIterator[KubeClient]:
    """``KubeClient`` on ``fake_kube`` with ``kube_options``; closed after the test."""
    async with kube_client(fake_kube, **kube_options) as client:
        yield client


def api_client(fake: FakeKube) -> Any:
    """A real ``kubernetes.client.ApiClient`` configured from the fake's kubeconfig."""
    from kubernetes import config

    return config.new_client_from_config(config_file=fake.kubeconfig)
