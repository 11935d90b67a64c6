"""The test layer over the demo's local stack: real Prometheus and Alertmanager for tests.

Not tests themselves. The process handling, readiness polling, configuration and API calls
live in ``exporter.demo`` (``processes``, ``servers``, ``prometheus``, ``alertmanager``; the
demo uses them too) and are re-exported here, so tests import everything from one place.
What this module adds is test-specific:

- ``require_binary`` decides what a missing binary means: a skip with the reason, or a
  failure when ``KPR_REQUIRE_REAL_COMPONENTS=1`` (as ``make test`` and CI set it).
  ``Prometheus`` and ``Alertmanager`` find their binaries through it.
- ``Prometheus`` adds the waits tests need (targets up, every rule evaluated, an alert in a
  state), ``query_value`` and ``reload``.
- ``promtool`` and ``check_alertmanager_config`` run the command-line checkers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from exporter.demo import alertmanager, prometheus
from exporter.demo.alertmanager import AlertmanagerOptions, WebhookReceiver
from exporter.demo.processes import (
    ALERTMANAGER, AMTOOL, PROMETHEUS, PROMTOOL, LocalStackError, find_binary, free_port,
    wait_until,
)
from exporter.demo.prometheus import PrometheusOptions, ScrapeJob
from exporter.demo.servers import LocalServer

__all__ = [
    "ALERTMANAGER", "AMTOOL", "PROMETHEUS", "PROMTOOL", "REQUIRE_ENV", "Alertmanager",
    "AlertmanagerOptions", "HarnessError", "Prometheus", "PrometheusOptions", "ScrapeJob",
    "WebhookReceiver", "check_alertmanager_config", "components_required", "find_binary",
    "free_port", "promtool", "require_binary", "wait_until",
]

REQUIRE_ENV = "KPR_REQUIRE_REAL_COMPONENTS"

HarnessError = LocalStackError  # the tests' name for a component that failed or answered an error


def components_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


def require_binary(name: str) -> str:
    """The binary's path; skips the test when missing, or fails it when components are required."""
    path = find_binary(name)
    if path is not None:
        return path
    reason = (f"{name} is not installed (Debian packages prometheus / prometheus-alertmanager; "
              "`make system-deps` installs them)")
    if components_required():
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires the real components")
    pytest.skip(reason)
    raise AssertionError("unreachable")  # pragma: no cover


class _RequiredBinary(LocalServer):
    """Finds the server's binary with ``require_binary`` (skip or fail) instead of raising."""

    @classmethod
    def locate(cls) -> str:
        return require_binary(cls.binary_name)


class Prometheus(_RequiredBinary, prometheus.Prometheus):
    """The local Prometheus with the waits and shortcuts the tests use."""

    async def query_value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when the result is empty."""
        result = await self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise HarnessError(f"{expr} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    async def reload(self) -> None:
        """Write the current options' configuration and ask Prometheus to load it."""
        self.write_config()
        await self.post_json("/-/reload", None)

    async def wait_for_targets_up(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Until every configured target has been scraped successfully."""
        expected = sum(len(j.targets) for j in self.options.jobs)

        async def check() -> list[dict[str, Any]] | None:
            targets = await self.targets()
            up = [t for t in targets if t.get("health") == "up"]
            return targets if expected and len(up) == expected else None

        return await wait_until(check, timeout=timeout, what="every scrape target up")

    async def wait_for_rules_evaluated(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Until every rule has been evaluated at least once; fails on any rule error."""

        async def check() -> list[dict[str, Any]] | None:
            groups = await self.rule_groups()
            rules = [r for g in groups for r in g["rules"]]
            broken = [r for r in rules if r.get("health") == "err" or r.get("lastError")]
            if broken:
                details = "; ".join(f"{r['name']}: {r.get('lastError')}" for r in broken)
                raise AssertionError(f"rules failed to evaluate: {details}")
            done = rules and all(r.get("health") == "ok" for r in rules)
            return groups if done else None

        return await wait_until(check, timeout=timeout, what="every rule evaluated")

    async def wait_for_alert(self, name: str, state: str = "firing", timeout: float = 60.0,
                             labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Until alert ``name`` is in ``state`` with ``labels`` (a subset); returns it."""

        async def check() -> dict[str, Any] | None:
            for alert in await self.alerts():
                lab = alert.get("labels", {})
                if lab.get("alertname") == name and alert.get("state") == state and all(
                        lab.get(k) == v for k, v in (labels or {}).items()):
                    return alert
            return None

        return await wait_until(check, timeout=timeout, what=f"alert {name} {state}", interval=0.2)


class Alertmanager(_RequiredBinary, alertmanager.Alertmanager):
    """The local Alertmanager, its binary found with ``require_binary``."""


def check_alertmanager_config(path: Path, *, amtool: str | None = None) -> subprocess.CompletedProcess[str]:
    """``amtool check-config`` on a written configuration (never raises; read ``returncode``)."""
    binary = amtool or require_binary(AMTOOL)
    return subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True,
                          timeout=30, check=False)


def promtool(*args: str, binary: str | None = None, cwd: Path | None = None,
             timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run promtool (never raises; read ``returncode``, ``stdout``, ``stderr``)."""
    path = binary or require_binary(PROMTOOL)
    return subprocess.run([path, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False)
