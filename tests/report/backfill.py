"""A real Prometheus 2.42 holding the scenario's history (``promtool tsdb create-blocks-from``).

``backfilled_prometheus(workdir)`` writes ``scenario.openmetrics()`` to a file, backfills it
into a fresh TSDB with promtool, and returns Debian's prometheus on that TSDB (nothing to
scrape, retention long enough to keep the fixed 2025 timestamps). Used by the recording
script and by the real-stack report test.
"""

from __future__ import annotations

from pathlib import Path

from tests.realstack.harness import (
    PROMTOOL, HarnessError, Prometheus, PrometheusOptions, promtool, require_binary,
)
from tests.report import scenario

RETENTION = "36500d"  # the data is from a fixed past day: keep every block


def backfilled_prometheus(workdir: Path) -> Prometheus:
    """Backfill the scenario into ``workdir/tsdb`` and return the (unstarted) server."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "scenario.om"
    source.write_text(scenario.openmetrics(), encoding="utf-8")
    result = promtool("tsdb", "create-blocks-from", "openmetrics", str(source),
                      str(workdir / "tsdb"), binary=require_binary(PROMTOOL))
    if result.returncode != 0:
        raise HarnessError(f"promtool backfill failed:\n{result.stdout}\n{result.stderr}")
    return Prometheus(workdir, PrometheusOptions(retention=RETENTION))
