"""``kpr-exporter demo --with-prometheus --report``: the regression story on the real stack.

The demo starts the real Prometheus (rules of the ``fast`` profile) and Alertmanager next to
its simulator and exporter. The canary regression must fire a real rollback alert, which
Alertmanager delivers to the exporter's webhook (a dry-run rollback is planned) without the
demo's stand-in alert, and at the end the report is written from the demo's Prometheus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import cli
from exporter.cilium import MIGRATION_LABEL
from tests.realstack.harness import ALERTMANAGER, PROMETHEUS, require_binary

# The fast profile fires about 80 s after the switch (10 s in at --speed 30); Alertmanager's
# group_wait and one re-delivery follow. The demo ends after this many seconds.
DURATION = "135"


@pytest.mark.realstack
def test_demo_with_prometheus_delivers_the_real_alert_and_writes_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_binary(PROMETHEUS)
    require_binary(ALERTMANAGER)
    report = tmp_path / "report"
    code = cli.main(["demo", "--scenario", "canary-regression", "--with-prometheus",
                     "--report", str(report), "--speed", "30", "--duration", DURATION,
                     "--interval", "5", "--web.listen-address", "127.0.0.1:0",
                     "--log.level", "error"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "prometheus     http://127.0.0.1:" in out
    assert "alertmanager   http://127.0.0.1:" in out
    assert "not available" not in out and "stand-in" not in out
    # The real rules fire, Alertmanager delivers, the exporter plans the dry-run rollback.
    assert "FIRING  KprHandshakeLatencyRegression" in out, out[-4000:]
    assert ">> Alertmanager delivered a firing rollback alert; the webhook accepted it" in out, out[-4000:]
    assert "planned: dry-run: would run" in out
    assert f"remove label {MIGRATION_LABEL} from node node-b" in out
    assert ">> alert " not in out  # the stand-in stayed quiet
    # The report from the demo's Prometheus.
    assert (report / "report.html").stat().st_size > 0
    summary = (report / "summary.md").read_text(encoding="utf-8")
    assert "node-b" in summary and "rollback planned (dry-run)" in summary
    assert f"report written to {report}" in out
    assert out.rstrip().endswith("demo stopped")
