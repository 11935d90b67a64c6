"""Fixtures for the rollback tests: the fake API, a client, a DaemonSet controller, virtual time."""

from __future__ import annotations

import pytest

from tests.rollback.cluster import (
    Controller, VirtualTime,
)


@pytest.fixture
def controller(fake_kube) -> Controller:
    return Controller(fake_kube)


@pytest.fixture
def vtime(controller) -> VirtualTime:
    return VirtualTime(controller)
