"""``kpr-exporter report``: query Prometheus, assemble the report, write ``report.html`` and
``summary.md``; exit 0 on success, 2 on a bad argument, 1 when Prometheus cannot be queried
(or the output cannot be written).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from exporter.judge.settings import JudgeSettings
from exporter.report import client as prom
from exporter.report import fmt
from exporter.report.assemble import build_report
from exporter.report.fetch import fetch
from exporter.report.model import Report
from exporter.report.render_html import render_html
from exporter.report.render_md import render_markdown
from exporter.report.timeparse import TimeRangeError, parse_range

HTML_FILE = "report.html"
MARKDOWN_FILE = "summary.md"


async def cmd_report(prometheus_url: str, time_from: str, time_to: str, output: str, *,
                     out: TextIO, now: Callable[[], float] = time.time,
                     timeout: float = prom.DEFAULT_TIMEOUT, title: str = "",
                     change_id: str = "", judge: JudgeSettings | None = None) -> int:
    """Query ``prometheus_url`` over [``time_from``, ``time_to``] and write ``report.html``
    and ``summary.md`` into ``output``; messages go to ``out``. ``title`` and ``change_id``
    (the change ticket) head both documents; ``judge`` is the exporter's judge settings (its
    windows and thresholds; the defaults when None) the evidence re-runs the tests with."""
    judge = judge or JudgeSettings()
    try:
        base_url = prom.check_url(prometheus_url)
        start, end = parse_range(time_from, time_to, now())
    except (ValueError, TimeRangeError) as err:
        print(f"kpr-exporter report: {err}", file=out)
        return 2
    if not output:
        print("kpr-exporter report: --output must name a directory", file=out)
        return 2

    try:
        async with prom.session(timeout) as session:
            raw = await fetch(prom.PrometheusClient(base_url, session), start, end,
                              (judge.short_window_seconds, judge.long_window_seconds))
    except prom.PrometheusQueryError as err:
        print(f"kpr-exporter report: Prometheus query failed: {err}", file=out)
        if err.query:
            print(f"  query: {err.query}", file=out)
        return 1
    except prom.PrometheusError as err:
        print(f"kpr-exporter report: cannot query Prometheus at {base_url}: {err}", file=out)
        return 1

    report = replace(build_report(raw, prometheus=base_url, generated_at=now(), judge=judge),
                     title=" ".join(title.split()), change_id=" ".join(change_id.split()))
    try:
        paths = await asyncio.to_thread(write_report, report, Path(output))
    except OSError as err:
        print(f"kpr-exporter report: cannot write the report into {output}: {err}", file=out)
        return 1
    _print_summary(report, paths, out)
    return 0


def write_report(report: Report, directory: Path) -> tuple[Path, Path]:
    """Render the charts and both documents and write them; returns their paths."""
    from exporter.report.charts import render_charts  # matplotlib: only when a report is made

    directory.mkdir(parents=True, exist_ok=True)
    charts = render_charts(report)
    html_path = directory / HTML_FILE
    md_path = directory / MARKDOWN_FILE
    html_path.write_text(render_html(report, charts), encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return html_path, md_path


def _print_summary(report: Report, paths: tuple[Path, Path], out: TextIO) -> None:
    counts = report.verdict_counts
    print(f"report for {fmt.timestamp(report.start)} to {fmt.timestamp(report.end)}: "
          f"phase {report.phase or fmt.NO_DATA}, {len(report.services)} services, "
          f"{counts.get('worse', 0)} worse / {counts.get('inconclusive', 0)} inconclusive / "
          f"{counts.get('not worse', 0)} not worse / {counts.get('better', 0)} better verdicts",
          file=out)
    for note in report.notes:
        if note.startswith(("Prometheus returned no", "Prometheus warned")):
            print(f"  note: {note}", file=out)
    for path in paths:
        print(f"wrote {path}", file=out)
