"""Constraints on single settings: declared once in field metadata, checked in one place.

A section declares what a value must satisfy next to its default and help::

    interval_seconds: float = field(default=15.0, metadata={
        "help": "Seconds between two scrapes.", "check": positive()})

``problems(node, prefix)`` walks a settings (sub)tree, checks every field's constraints (and
its ``choices``) and
then asks each section for the rules that span several of its fields (its own
``problems()`` method, when it has one). ``exporter.config.load`` runs it once over the
whole tree; tests run it over one section. Pure module.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.config_values import parse_listen

#: The metadata key of a field's constraints (one ``Constraint`` or a sequence of them).
CHECK = "check"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Constraint:
    """A rule one value must satisfy, and how a violation reads.

    ``message`` is formatted with ``key`` (the dotted setting name) and ``value``.
    """

    ok: Callable[[Any], bool]
    message: str

    def problem(self, key: str, value: Any) -> str | None:
        """The problem text when ``value`` breaks the rule, else None."""
        if self.ok(value):
            return None
        return self.message.format(key=key, value=value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""


def positive(hint: str = "") -> Constraint:
    """A finite number above 0."""
    return Constraint(lambda v: _number(v) and v > 0,
                      "{key} must be positive, got {value}" + _hint(hint))


def non_negative(hint: str = "") -> Constraint:
    """A finite number of 0 or more."""
    return Constraint(lambda v: _number(v) and v >= 0,
                      "{key} must not be negative, got {value}" + _hint(hint))


def at_least(minimum: int, hint: str = "") -> Constraint:
    """A number of ``minimum`` or more."""
    return Constraint(lambda v: _number(v) and v >= minimum,
                      f"{{key}} must be at least {minimum}, got {{value}}" + _hint(hint))


def between(low: float, high: float, *, exclusive: bool = False) -> Constraint:
    """A number from ``low`` to ``high`` (both excluded with ``exclusive``)."""
    if exclusive:
        return Constraint(lambda v: _number(v) and low < v < high,
                          f"{{key}} must be between {low} and {high} (exclusive), got {{value}}")
    return Constraint(lambda v: _number(v) and low <= v <= high,
                      f"{{key}} must be between {low} and {high}, got {{value}}")


def capped(cap: float, *, zero: bool = False) -> Constraint:
    """A number above 0 (or 0 with ``zero``) and at most its hard ``cap`` (a measurement's
    safety limit: the message says it is a cap, not a range)."""
    low = "at least 0" if zero else "above 0"
    shown = str(int(cap)) if float(cap).is_integer() else f"{cap:g}"
    return Constraint(lambda v: _number(v) and (v >= 0 if zero else v > 0) and v <= cap,
                      f"{{key}} must be {low} and at most its cap {shown}, got {{value}}")


def port() -> Constraint:
    """A TCP port number (1-65535)."""
    return Constraint(lambda v: _number(v) and 0 < v < 65536,
                      "{key} must be a TCP port (1-65535), got {value}")


def not_empty(hint: str = "") -> Constraint:
    """Text that is not empty or blank."""
    return Constraint(lambda v: bool(str(v).strip()), "{key} must not be empty" + _hint(hint))


def listen_address(*, optional: bool = False) -> Constraint:
    """``[host]:port`` as the listeners take it (``exporter.config_values.parse_listen``);
    ``optional`` also accepts the empty text (no listener of its own)."""
    if optional:
        return Constraint(lambda v: v == "" or _listens(v),
                          "{key} {value!r} is not [host]:port (or empty)")
    return Constraint(_listens, "{key} {value!r} is not [host]:port")


def http_path() -> Constraint:
    """An HTTP path (starts with ``/``)."""
    return Constraint(lambda v: str(v).startswith("/"), "{key} {value!r} must start with '/'")


def dns_label() -> Constraint:
    """A Kubernetes namespace name (an RFC 1123 label)."""
    return Constraint(lambda v: bool(_DNS_LABEL.match(str(v))),
                      "{key} {value!r} is not a namespace name")


def _listens(value: Any) -> bool:
    try:
        parse_listen(str(value))
    except ValueError:
        return False
    return True


def constraints_of(f: dataclasses.Field[Any]) -> tuple[Constraint, ...]:
    """The constraints a field declares (none, one or several)."""
    declared = f.metadata.get(CHECK)
    if declared is None:
        return ()
    if isinstance(declared, Constraint):
        return (declared,)
    assert isinstance(declared, Sequence)
    return tuple(declared)


def problems(node: Any, prefix: str) -> list[str]:
    """Every problem of the settings ``node`` (a section) whose dotted name is ``prefix``:
    its fields' choices and constraints, its subsections', then the section's own
    cross-field rules."""
    found: list[str] = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found.extend(problems(value, key))
            continue
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            found.append(f"{key}: {value!r} is not one of {', '.join(choices)}")
            continue
        for constraint in constraints_of(f):
            if (problem := constraint.problem(key, value)) is not None:
                found.append(problem)
    rules = getattr(node, "problems", None)
    if callable(rules):
        found.extend(rules())
    return found
