"""Fixtures for the Kubernetes access tests: the shared client on a clock moved by hand."""

from __future__ import annotations

from typing import Any

import pytest


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
def kube_options(monotonic: ManualClock) -> dict[str, Any]:
    """The shared ``kube`` client runs on the clock the test moves by hand."""
    return {"monotonic": monotonic}
