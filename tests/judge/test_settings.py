"""JudgeSettings validation: defaults are valid, every bad value is reported at once."""

from __future__ import annotations

from exporter.config_constraints import problems as check
from exporter.judge.settings import JudgeSettings


def test_defaults_are_valid():
    assert check(JudgeSettings(), "judge") == []


def test_every_problem_is_reported():
    settings = JudgeSettings(short_window_seconds=600.0, long_window_seconds=300.0, alpha=0.0,
                             min_events=0, drop_ratio_floor=-1.0,
                             stale_after_seconds=float("nan"))
    problems = check(settings, "judge")
    assert len(problems) == 5
    assert any("long_window_seconds" in p for p in problems)
    assert any("alpha" in p for p in problems)
    assert any("min_events" in p for p in problems)
    assert any("drop_ratio_floor" in p for p in problems)
    assert any("stale_after_seconds" in p for p in problems)
