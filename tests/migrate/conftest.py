"""Fixtures for the migration tests: the fake API with the kubelet played by the test, each
node's endpoints on its own loopback address, and virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakekube.fixtures import fake_kube, kube  # noqa: F401  (re-exported fixtures)
from tests.migrate.cluster import Kubelet, NodeEndpoints
from tests.rollback.cluster import VirtualTime


@pytest.fixture
def kubelet(fake_kube) -> Kubelet:  # noqa: F811
    return Kubelet(fake_kube)


@pytest.fixture
def vtime(kubelet) -> VirtualTime:
    return VirtualTime(kubelet)


@pytest.fixture
async def endpoints(kubelet) -> AsyncIterator[NodeEndpoints]:
    served = NodeEndpoints(kubelet)
    await served.start()
    try:
        yield served
    finally:
        await served.stop()
