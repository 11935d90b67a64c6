"""Fixtures for the rollback tests: the fake API, a client, a DaemonSet controller, virtual time."""

from __future__ import annotations

import pytest

from exporter.kube.client import KubeClient
from tests.fakekube.fixtures import fake_kube  # noqa: F401  (re-exported fixture)
from tests.rollback.cluster import (
    Controller, VirtualTime,
)


@pytest.fixture
async def kube(fake_kube):  # noqa: F811
    client = KubeClient.connect(fake_kube.kubeconfig, request_timeout=5.0)
    yield client
    await client.close()


@pytest.fixture
def controller(fake_kube) -> Controller:  # noqa: F811
    return Controller(fake_kube)


@pytest.fixture
def vtime(controller) -> VirtualTime:
    return VirtualTime(controller)
