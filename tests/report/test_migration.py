"""The migration in the report's timeline: events from ``kpr_migration_step`` and
``kpr_migration_batch``, read from a real Prometheus holding a recorded migration (two
batches, the second aborted), and from hand-made series for the edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.migrate import model as m
from exporter.report.client import PrometheusClient, session
from exporter.report.assemble import build_report
from exporter.report.data import RawData, Series, Window
from exporter.report.migration import (
    BATCH_KIND, RANGE_QUERIES, STEP_KIND, batch_events, migration_events, step_events,
)
from exporter.report.render_md import render_markdown
from tests.realstack.harness import PROMTOOL, HarnessError, Prometheus, PrometheusOptions
from tests.realstack.harness import promtool, require_binary

T0, STEP = 1_764_000_000.0, 30.0
#: (minute the step starts, step, batch number)
STORY = [(0, m.STEP_PENDING, 0), (2, m.STEP_PREFLIGHT, 0), (3, m.STEP_EXCLUDE, 0),
         (4, m.STEP_NODE_CONFIG, 0), (5, m.STEP_LABEL, 1), (6, m.STEP_GATES, 1),
         (10, m.STEP_LABEL, 2), (11, m.STEP_GATES, 2), (14, m.STEP_ABORTING, 2),
         (15, m.STEP_ABORTED, 2)]
END_MINUTE = 20


def openmetrics() -> str:
    lines = ["# TYPE kpr_migration_step gauge"]
    batch = []
    for second in range(0, END_MINUTE * 60 + 1, int(STEP)):
        t = T0 + second
        current = [s for s in STORY if s[0] * 60 <= second][-1]
        for name in m.STEPS:
            lines.append(f'kpr_migration_step{{step="{name}",instance="c:9977"}} '
                         f"{1 if name == current[1] else 0} {t:.0f}")
        batch.append(f'kpr_migration_batch{{instance="c:9977"}} {current[2]} {t:.0f}')
    return "\n".join([*lines, "# TYPE kpr_migration_batch gauge", *batch, "# EOF"]) + "\n"


@pytest.mark.realstack
async def test_events_from_a_recorded_migration(tmp_path: Path) -> None:
    source = tmp_path / "migration.om"
    source.write_text(openmetrics(), encoding="utf-8")
    result = promtool("tsdb", "create-blocks-from", "openmetrics", str(source),
                      str(tmp_path / "tsdb"), binary=require_binary(PROMTOOL))
    if result.returncode != 0:
        raise HarnessError(result.stdout + result.stderr)
    async with Prometheus(tmp_path, PrometheusOptions(retention="36500d")) as prom:
        async with session() as http:
            client = PrometheusClient(prom.url, http)
            got = {name: await client.query_range(q, T0 + 60, T0 + END_MINUTE * 60, STEP)
                   for name, q in RANGE_QUERIES.items()}
    events = migration_events(got["migration_step"], got["migration_batch"])
    assert [(e.at - T0, e.kind, e.text) for e in events] == [
        (120.0, STEP_KIND, f"migration: preflight ({m.STEP_TITLES[m.STEP_PREFLIGHT]})"),
        (180.0, STEP_KIND, f"migration: exclude-kube-proxy ({m.STEP_TITLES[m.STEP_EXCLUDE]})"),
        (240.0, STEP_KIND, f"migration: node-config ({m.STEP_TITLES[m.STEP_NODE_CONFIG]})"),
        (300.0, BATCH_KIND, "migration batch 1 started"),
        (600.0, BATCH_KIND, "migration batch 2 started"),
        (840.0, STEP_KIND, f"migration: aborting ({m.STEP_TITLES[m.STEP_ABORTING]})"),
        (900.0, STEP_KIND, f"migration: aborted ({m.STEP_TITLES[m.STEP_ABORTED]})"),
    ]


def test_the_state_at_the_start_and_gaps_are_no_events() -> None:
    steps = [Series({"step": "gates"}, ((0.0, 1.0), (30.0, 1.0), (60.0, 0.0))),
             Series({"step": "completed"}, ((0.0, 0.0), (30.0, 0.0), (60.0, 1.0)))]
    assert [(e.at, e.text.split(" (")[0]) for e in step_events(steps)] == [
        (60.0, "migration: completed")]
    batches = [Series({}, ((0.0, 2.0), (30.0, float("nan")), (60.0, 2.0), (90.0, 3.0)))]
    assert [(e.at, e.text) for e in batch_events(batches)] == [(90.0, "migration batch 3 started")]
    assert step_events([]) == [] and batch_events([]) == []


def test_the_report_timeline_lists_the_migration() -> None:
    grid = [T0 + i * STEP for i in range(41)]
    steps = tuple(Series({"step": name}, tuple((t, 1.0 if (name == m.STEP_GATES) == (t < T0 + 600)
                                                 else 0.0) for t in grid))
                  for name in (m.STEP_GATES, m.STEP_COMPLETED))
    batch = (Series({}, tuple((t, 1.0 if t < T0 + 300 else 2.0) for t in grid)),)
    raw = RawData(start=T0, end=grid[-1], step=STEP, rate_window=120.0,
                  windows=(Window("range", T0, grid[-1]),),
                  series={"migration_step": steps, "migration_batch": batch})
    report = build_report(raw, prometheus="http://prometheus", generated_at=grid[-1])
    assert [(e.at - T0, e.kind) for e in report.events] == [(300.0, BATCH_KIND),
                                                           (600.0, STEP_KIND)]
    assert report.has_data  # the migration's own series are kpr-exporter data
    assert not any("returned no kpr-exporter series" in note for note in report.notes)
    text = render_markdown(report)
    assert "### Switches, rollbacks and migration steps" in text
    assert "| migration batch 2 started |" in text
    assert f"| migration: completed ({m.STEP_TITLES[m.STEP_COMPLETED]}) |" in text
