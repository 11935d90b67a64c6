"""AgentSettings validation and the URL of discovered agents."""

from __future__ import annotations

import math

import pytest

from exporter.config_constraints import problems as check
from exporter.sources.agents_settings import AgentSettings


def test_defaults_are_valid() -> None:
    settings = AgentSettings()
    assert check(settings, "agents") == []
    assert (settings.port, settings.path, settings.selector, settings.namespace) == (
        9962, "/metrics", "k8s-app=cilium", "kube-system",
    )


def test_static_urls_are_accepted() -> None:
    settings = AgentSettings(static={
        "worker-1": "http://10.0.0.11:9962/metrics",
        "worker-2": "https://[fd00::12]:9962/metrics",
        "worker-3": "http://cilium-agent.local/nodes/worker-3/metrics",
    })
    assert check(settings, "agents") == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"static": {"worker-1": "10.0.0.11:9962"}}, "agents.static: node 'worker-1'"),
        ({"static": {"worker-1": "ftp://10.0.0.11/metrics"}}, "http:// or https://"),
        ({"static": {"worker-1": "http:///metrics"}}, "has no host"),
        ({"static": {"worker-1": "http://10.0.0.11:99999/metrics"}}, "malformed"),
        ({"static": {"worker-1": ""}}, "agents.static: node 'worker-1'"),
        ({"static": {" ": "http://10.0.0.11:9962/metrics"}}, "empty node name"),
        ({"interval_seconds": 0.0}, "agents.interval_seconds"),
        ({"interval_seconds": math.nan}, "agents.interval_seconds"),
        ({"timeout_seconds": -1.0}, "agents.timeout_seconds"),
        ({"max_body_bytes": 0}, "agents.max_body_bytes"),
        ({"max_series": 0}, "agents.max_series"),
        ({"concurrency": 0}, "agents.concurrency"),
        ({"port": 0}, "agents.port"),
        ({"path": "metrics"}, "agents.path"),
        ({"selector": " "}, "agents.selector"),
        ({"namespace": "Kube_System"}, "agents.namespace"),
    ],
)
def test_each_problem_is_reported(overrides: dict, expected: str) -> None:
    problems = check(AgentSettings(**overrides), "agents")
    assert len(problems) == 1 and expected in problems[0], problems


def test_every_problem_is_reported_at_once() -> None:
    settings = AgentSettings(static={"a": "nope"}, interval_seconds=0, timeout_seconds=0)
    assert len(check(settings, "agents")) == 3


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("10.0.0.11", "http://10.0.0.11:9962/metrics"),
        ("fd00::12", "http://[fd00::12]:9962/metrics"),
        ("worker-1.example", "http://worker-1.example:9962/metrics"),
    ],
)
def test_url_for_discovered_agent(host: str, url: str) -> None:
    assert AgentSettings().url_for(host) == url
