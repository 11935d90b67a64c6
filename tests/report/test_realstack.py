"""The report against a real Prometheus 2.42 holding the scenario's history.

The history is backfilled with promtool (``backfill.py``), so every query the report sends
is parsed and evaluated by the real engine. The Markdown it produces must equal the one
produced from the recorded responses in ``tests/data/prometheus`` (apart from the
Prometheus URL): when a query changes, this test says the recordings are stale
(re-record with ``python -m tests.report.record``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.realstack.harness import PROMETHEUS, PROMTOOL, require_binary
from tests.report.backfill import backfilled_prometheus
from tests.report.conftest import ReportRun, RunReport

pytestmark = pytest.mark.realstack


def _without_url(markdown: str) -> str:
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("- Prometheus: "))


async def test_real_prometheus_gives_the_recorded_report(run_report: RunReport, tmp_path: Path,
                                                         recorded_run: ReportRun) -> None:
    require_binary(PROMETHEUS)
    require_binary(PROMTOOL)
    async with backfilled_prometheus(tmp_path / "prometheus") as prometheus:
        run = await run_report(prometheus.url, "2025-11-24T16:00:00Z", "2025-11-24T18:00:00Z")
    assert run.code == 0, run.out
    assert "phase canary, 4 services, 7 worse / 3 inconclusive" in run.out
    assert _without_url(run.markdown) == _without_url(recorded_run.markdown)
    assert run.html.count("data:image/png;base64,") == recorded_run.html.count("data:image/png;base64,")
