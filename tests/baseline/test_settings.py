"""BaselineSettings validation."""

from __future__ import annotations

from exporter.baseline.settings import BaselineConfigMapSettings, BaselineSettings
from exporter.config_constraints import problems as check


def test_defaults_are_valid():
    assert check(BaselineSettings(), "baseline") == []


def test_every_problem_is_reported():
    problems = check(BaselineSettings(window_seconds=0.0, min_connections=0, store="s3"),
                     "baseline")
    assert len(problems) == 3
    assert check(BaselineSettings(store="file", file=""), "baseline") == [
        "baseline.file must name a file when baseline.store is file"]
    assert check(BaselineSettings(store="configmap", file="",
                                  configmap=BaselineConfigMapSettings(namespace="")),
                 "baseline") == ["baseline.configmap.namespace must not be empty"]
