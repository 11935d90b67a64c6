"""A real Prometheus 2.42 holding the scenario's history (``promtool tsdb create-blocks-from``).

``backfilled_prometheus(workdir)`` writes ``scenario.openmetrics()`` to a file, backfills it
into a fresh TSDB with promtool, and starts Debian's prometheus on that TSDB (nothing to
scrape, retention long enough to keep the fixed 2025 timestamps). Used by the recording
script and by the real-stack report test.
"""

from __future__ import annotations

from pathlib import Path

from tests.realstack.harness import PROMTOOL, HarnessError, Prometheus, promtool, require_binary
from tests.report import scenario


class BackfilledPrometheus(Prometheus):
    """The harness's Prometheus, keeping old blocks (the data is from a fixed past day)."""

    def _argv(self) -> list[str]:
        return [arg if not arg.startswith("--storage.tsdb.retention.time=")
                else "--storage.tsdb.retention.time=36500d" for arg in super()._argv()]


def backfilled_prometheus(workdir: Path) -> BackfilledPrometheus:
    """Backfill the scenario into ``workdir/tsdb`` and return the (unstarted) server."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "scenario.om"
    source.write_text(scenario.openmetrics(), encoding="utf-8")
    result = promtool("tsdb", "create-blocks-from", "openmetrics", str(source),
                      str(workdir / "tsdb"), binary=require_binary(PROMTOOL))
    if result.returncode != 0:
        raise HarnessError(f"promtool backfill failed:\n{result.stdout}\n{result.stderr}")
    return BackfilledPrometheus(workdir)
