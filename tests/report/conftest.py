"""Fixtures for the report tests: run ``cmd_report`` and read what it wrote."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter.report.report_cmd import cmd_report
from tests.report import scenario
from tests.report.promfixture import FixturePrometheus


@dataclass
class ReportRun:
    code: int
    out: str
    directory: Path

    @property
    def html(self) -> str:
        return (self.directory / "report.html").read_text(encoding="utf-8")

    @property
    def markdown(self) -> str:
        return (self.directory / "summary.md").read_text(encoding="utf-8")


RunReport = Callable[..., Awaitable[ReportRun]]


async def report_once(url: str, directory: Path, time_from: str = "-2h", time_to: str = "now",
                      **kwargs: object) -> ReportRun:
    out = io.StringIO()
    code = await cmd_report(url, time_from, time_to, str(directory), out=out,
                            now=lambda: scenario.END, **kwargs)
    return ReportRun(code, out.getvalue(), directory)


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> ReportRun:
    """One report from the recorded responses, shared by the tests that read it."""

    async def run() -> ReportRun:
        async with FixturePrometheus() as prometheus:
            result = await report_once(prometheus.url, tmp_path_factory.mktemp("recorded"))
        assert prometheus.unknown == []
        return result

    return asyncio.run(run())


@pytest.fixture
def run_report(tmp_path: Path) -> RunReport:
    """``await run_report(url, time_from="-2h", time_to="now", **kwargs)`` at the scenario's end."""

    async def run(url: str, time_from: str = "-2h", time_to: str = "now", *,
                  output: Path | None = None, **kwargs: object) -> ReportRun:
        return await report_once(url, output or tmp_path / "report", time_from, time_to,
                                 **kwargs)

    return run
