"""Preflight tests share the rollback tests' fake API, client and virtual time."""

from __future__ import annotations

from tests.rollback.conftest import controller, vtime  # noqa: F401  (re-exported fixtures)
