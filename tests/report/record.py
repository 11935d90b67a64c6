"""Re-record ``tests/data/prometheus`` from a real Prometheus holding the scenario's history.

Run from the repository root when the report's queries change::

    .venv/bin/python -m tests.report.record

It backfills ``scenario.py`` into a temporary TSDB, starts Debian's prometheus 2.42 on it,
runs ``cmd_report`` through ``RecordingProxy`` (range 2025-11-24 16:00-18:00 UTC) and
writes one file per request plus ``index.json``; ``error_bad_data.json`` is Prometheus'
answer to a query it cannot parse. Not a test module.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import aiohttp

from exporter.report.report_cmd import cmd_report
from tests.report import scenario
from tests.report.backfill import backfilled_prometheus
from tests.report.promfixture import DATA, INDEX, RecordingProxy

FROM = "2025-11-24T16:00:00Z"
TO = "2025-11-24T18:00:00Z"
NOW = scenario.END
ERROR_FILE = "error_bad_data.json"
BAD_QUERY = "sum by (namespace (kpr_verdict)"


async def record(directory: Path = DATA) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="kpr-record-") as tmp:
        async with backfilled_prometheus(Path(tmp) / "prometheus") as prometheus:
            async with RecordingProxy(prometheus.url, directory) as proxy:
                code = await cmd_report(proxy.url, FROM, TO, str(Path(tmp) / "report"),
                                        out=sys.stdout, now=lambda: NOW)
            proxy.write_index()
            async with aiohttp.ClientSession() as session:
                params = {"query": BAD_QUERY, "time": f"{NOW:.3f}"}
                async with session.get(f"{prometheus.url}/api/v1/query", params=params) as response:
                    body = await response.json(content_type=None)
            (directory / ERROR_FILE).write_text(json.dumps(body, indent=1, sort_keys=True) + "\n",
                                                encoding="utf-8")
    print(f"recorded {len(proxy.entries)} responses into {directory} ({INDEX}), report exit {code}")
    return code


if __name__ == "__main__":
    raise SystemExit(asyncio.run(record()))
