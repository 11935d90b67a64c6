"""The report's assembly and rendering import no transport: only ``client`` and ``fetch`` talk
HTTP (an import-linter contract of its own, checked with the installed ``lint-imports``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = ("assemble", "timeline", "cohorts", "verdicts", "model", "data", "fmt", "queries",
        "timeparse", "render_html", "render_md", "charts", "evidence", "html_verdicts",
        "html_parts")

CONTRACT = """\
[importlinter]
root_package = exporter
include_external_packages = True

[importlinter:contract:report-pure]
name = Report assembly and rendering do no I/O
type = forbidden
source_modules =
{sources}
forbidden_modules =
    aiohttp
    exporter.report.client
    exporter.report.fetch
"""


def test_report_assembly_and_rendering_are_pure(tmp_path: Path) -> None:
    config = tmp_path / "report.importlinter"
    config.write_text(CONTRACT.format(sources="\n".join(f"    exporter.report.{m}" for m in PURE)))
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(config), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout
