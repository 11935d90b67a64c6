"""Constraints declared in field metadata and checked in one place.

Matrix: each constraint accepts its edge values and refuses the first value past them (NaN,
infinity and booleans are no numbers); the walker reports choices, constraints of nested
sections with their dotted keys, then the section's own cross-field rules, all at once;
the whole tree's defaults are valid and every field that declares a constraint is a leaf.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pytest

from exporter import config
from exporter.config_constraints import (
    Constraint,
    at_least,
    between,
    constraints_of,
    dns_label,
    http_path,
    listen_address,
    non_negative,
    not_empty,
    port,
    positive,
    problems,
)


@pytest.mark.parametrize(("constraint", "good", "bad"), [
    (positive(), [1e-9, 1, 3600.0], [0, -1, math.nan, math.inf, True]),
    (non_negative(), [0, 0.0, 5], [-0.001, math.nan, -math.inf]),
    (at_least(5), [5, 6], [4, 4.999, math.nan]),
    (between(0, 1), [0, 0.5, 1], [-0.1, 1.1, math.nan]),
    (between(0, 0.5, exclusive=True), [0.0001, 0.4999], [0, 0.5]),
    (port(), [1, 65535], [0, 65536, -1]),
    (not_empty(), ["x"], ["", "  "]),
    (listen_address(), [":9977", "127.0.0.1:0", "[::1]:80"], ["9977", "host:", "h:65536", ""]),
    (listen_address(optional=True), ["", ":1"], ["x"]),
    (http_path(), ["/", "/metrics"], ["metrics", ""]),
    (dns_label(), ["kube-system", "a"], ["Kube_System", "-a", ""]),
])
def test_each_constraint_has_edges(constraint: Constraint, good: list, bad: list) -> None:
    assert [constraint.problem("k", v) for v in good] == [None] * len(good)
    for value in bad:
        text = constraint.problem("s.k", value)
        assert text is not None and text.startswith("s.k"), (value, text)


@dataclass(frozen=True)
class Inner:
    port: int = field(default=80, metadata={"check": port()})


@dataclass(frozen=True)
class Section:
    mode: str = field(default="a", metadata={"choices": ("a", "b")})
    low: float = field(default=1.0, metadata={"check": positive()})
    high: float = field(default=2.0, metadata={"check": (positive(), at_least(2))})
    inner: Inner = field(default_factory=Inner)

    def problems(self) -> list[str]:
        return ["section: low must stay below high"] if self.low >= self.high else []


def test_the_walker_reports_every_problem_with_its_key_in_order() -> None:
    assert problems(Section(), "section") == []
    found = problems(Section(mode="c", low=0.0, high=-1.0, inner=Inner(port=0)), "section")
    assert found == [
        "section.mode: 'c' is not one of a, b",
        "section.low must be positive, got 0.0",
        "section.high must be positive, got -1.0",
        "section.high must be at least 2, got -1.0",
        "section.inner.port must be a TCP port (1-65535), got 0",
        "section: low must stay below high",
    ]


def test_the_tree_defaults_are_valid_and_constraints_sit_on_leaves() -> None:
    settings = config.Settings()
    assert problems(settings, "") == []
    declared = 0
    for section in dataclasses.fields(config.Settings):
        node = getattr(settings, section.name)
        for f in dataclasses.fields(node):
            if constraints_of(f):
                declared += 1
                assert not dataclasses.is_dataclass(getattr(node, f.name)), f.name
    assert declared > 50, "the sections declare their constraints in field metadata"


def test_load_reports_constraints_of_every_section_at_once() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(flags={"--web.listen-address": "nowhere", "--sli.idle-seconds": "0",
                           "--rollback.max-per-window": "0", "--judge.alpha": "0.5",
                           "--webhook.listen-address": "x"})
    assert err.value.problems == [
        "web.listen_address 'nowhere' is not [host]:port",
        "sli.idle_seconds must be positive, got 0.0",
        "judge.alpha must be between 0 and 0.5 (exclusive), got 0.5",
        "webhook.listen_address 'x' is not [host]:port (or empty)",
        "rollback.max_per_window must be at least 1, got 0 (use kill_switch to stop rollbacks)",
    ]
