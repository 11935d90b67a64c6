"""Paths and small readers shared by the rule tests (the rule files, the promtool unit tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RULES_DIR = ALERTS / "rules"
TESTS_DIR = Path(__file__).resolve().parent
UNIT_TESTS = sorted(TESTS_DIR.glob("*_test.yaml"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules_of(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Every rule of a rule file that is an ``alert`` or a ``record``."""
    return [r for g in doc["groups"] for r in g["rules"] if kind in r]
