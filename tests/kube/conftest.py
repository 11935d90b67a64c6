"""Fixtures for the Kubernetes access tests: the fake API server and a client on it."""

from __future__ import annotations

import pytest

from tests.fakekube.fixtures import fake_kube, kube_client  # noqa: F401  (re-exported fixture)


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
    """The shared client fixture's client, on the clock the test moves by hand."""
    async with kube_client(fake_kube, monotonic=monotonic) as client:
        yield client
