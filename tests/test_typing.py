"""mypy's configuration follows the layering contract.

``make lint`` runs mypy with ``[tool.mypy]`` of ``pyproject.toml``: strict for the pure core
and the settings tree. The pure core is the first import-linter contract's module list, so
a module added there without its strict override (or the other way round) fails here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: The strict flags (``mypy --strict`` spelt out: the per-module form of it).
STRICT = ("disallow_untyped_defs", "disallow_incomplete_defs", "disallow_untyped_calls",
          "disallow_any_generics", "disallow_subclassing_any", "disallow_untyped_decorators",
          "check_untyped_defs", "no_implicit_reexport", "warn_return_any", "strict_equality",
          "warn_unused_ignores", "extra_checks")
SETTINGS = {"exporter.config", "exporter.config_checks", "exporter.config_values",
            "exporter.config_constraints"}


def _config() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def test_the_pure_core_and_the_settings_are_checked_strictly() -> None:
    config = _config()
    pure = config["tool"]["importlinter"]["contracts"][0]["source_modules"]
    assert pure, "the first contract lists the pure core"
    strict = [o for o in config["tool"]["mypy"]["overrides"]
              if all(o.get(flag) is True for flag in STRICT)]
    assert len(strict) == 1, strict
    modules = set(strict[0]["module"])
    expected = {m for name in pure for m in (name, name + ".*")} | SETTINGS
    assert expected - modules == set(), "pure-core modules mypy does not check strictly"
    assert {m.removesuffix(".*") for m in modules} - {m.removesuffix(".*") for m in expected} \
        == set(), "strict modules outside the pure core and the settings"


def test_lint_runs_import_linter_and_mypy_and_the_ci_target_runs_lint() -> None:
    root = PYPROJECT.parent
    makefile = (root / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "lint-imports" in lint and "-m mypy" in lint
    test = makefile.split("\ntest:", 1)[1].split("\n", 1)[0]
    assert "lint" in test.split()
    assert "make test" in (root / ".ci" / "run").read_text()
    assert _config()["tool"]["mypy"]["files"] == ["exporter"]
