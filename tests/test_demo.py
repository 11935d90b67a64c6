"""``kpr-exporter demo``: every scenario starts, summarises and ends cleanly with --duration;
the regression story reaches a dry-run rollback plan."""

import pytest

from exporter import cli
from exporter.simulator.scenarios import SCENARIO_NAMES


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_demo_runs_each_scenario_for_its_duration(scenario, capsys):
    code = cli.main(["demo", "--scenario", scenario, "--duration", "2.5", "--interval", "1",
                     "--speed", "20", "--web.listen-address", "127.0.0.1:0", "--log.level", "error"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"scenario {scenario!r}" in out
    assert "metrics        http://127.0.0.1:" in out
    assert "phase=" in out and "handshake" in out
    assert out.rstrip().endswith("demo stopped")


def test_canary_regression_demo_shows_the_dry_run_rollback(capsys):
    code = cli.main(["demo", "--scenario", "canary-regression", "--duration", "45",
                     "--interval", "3", "--speed", "60", "--web.listen-address", "127.0.0.1:0",
                     "--log.level", "error"])
    out = capsys.readouterr().out
    assert code == 0
    assert "phase=canary" in out
    assert "connect_duration=WORSE" in out
    assert ">> alert KprVerdictWorse firing" in out
    assert "webhook answered 200" in out
    assert "planned: dry-run: would run" in out
    assert "remove label io.cilium.migration/kube-proxy-replacement from node node-b" in out


def test_demo_without_the_binaries_says_so_and_keeps_the_stand_in(monkeypatch, tmp_path, capsys):
    from exporter import localstack

    monkeypatch.setattr(localstack, "find_binary", lambda name: None)
    report = tmp_path / "report"
    code = cli.main(["demo", "--scenario", "baseline", "--duration", "1.5", "--interval", "1",
                     "--speed", "20", "--web.listen-address", "127.0.0.1:0", "--log.level", "error",
                     "--with-prometheus", "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0
    assert "prometheus is not installed (Debian package prometheus" in out
    assert "continuing with the stand-in alert" in out
    assert "alerting       stand-in" in out
    assert "--report needs a Prometheus that scraped the demo" in out
    assert "kpr-exporter report --prometheus URL" in out
    assert "not available" not in out
    assert not report.exists()
    assert out.rstrip().endswith("demo stopped")
