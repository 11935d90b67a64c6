"""Fixtures for the Kubernetes access tests: the fake API server and a client on it."""

from __future__ import annotations

import pytest

from exporter.kube.client import KubeClient
from tests.fakekube.fixtures import fake_kube  # noqa: F401  (re-exported fixture)


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def monotonic() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def kube(fake_kube, monotonic):  # noqa: F811
    client = KubeClient.connect(fake_kube.kubeconfig, request_timeout=5.0, monotonic=monotonic)
    yield client
    await client.close()
