"""BaselineSettings validation."""

from __future__ import annotations

from exporter.baseline.settings import BaselineConfigMapSettings, BaselineSettings


def test_defaults_are_valid():
    assert BaselineSettings().problems() == []


def test_every_problem_is_reported():
    problems = BaselineSettings(window_seconds=0.0, min_connections=0, store="s3").problems()
    assert len(problems) == 3
    assert BaselineSettings(store="file", file="").problems() == [
        "baseline.file must name a file when baseline.store is file"]
    assert BaselineSettings(store="configmap", file="",
                            configmap=BaselineConfigMapSettings(namespace="")).problems() == [
        "baseline.configmap.namespace must not be empty"]
