"""Fixtures for the baseline tests: a settable clock, and the fake Kubernetes API with a client."""

from __future__ import annotations

import pytest



class Clock:
    """Wall clock the test sets by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
