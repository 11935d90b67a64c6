"""Preflight tests share the rollback tests' fake API, client and virtual time."""

from __future__ import annotations

from tests.fakekube.fixtures import fake_kube, kube  # noqa: F401  (re-exported fixtures)
from tests.rollback.conftest import controller, vtime  # noqa: F401  (re-exported fixtures)
