"""Fixtures for the rule tests: the promtool binary and the default profile's rule file."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts.ruledata import RULES_DIR, load_yaml
from tests.realstack.harness import PROMTOOL, require_binary


@pytest.fixture(scope="session")
def promtool_bin() -> str:
    return require_binary(PROMTOOL)


@pytest.fixture(scope="session")
def default_rules() -> dict[str, Any]:
    return load_yaml(RULES_DIR / "default.yaml")
