"""``--from`` / ``--to`` values: RFC 3339 times, ``now``, relative offsets and Unix seconds.

Accepted forms (``now`` is the injected clock's value):

- ``now``; ``-30m``, ``-2h``, ``-1d12h``, ``now-90s`` (units ``ms``, ``s``, ``m``, ``h``,
  ``d``, ``w``, as in Prometheus durations);
- RFC 3339 with a zone: ``2025-11-24T16:00:00Z``, ``2025-11-24T17:00:00.5+01:00``
  (a time without a zone is refused: it would silently mean the machine's zone);
- Unix seconds: ``1764000000`` or ``1764000000.25``.

``parse_range`` also checks that the range is not empty. Every problem raises
``TimeRangeError`` with a message meant for the command line. Pure module.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIX = re.compile(r"\d{9,11}(?:\.\d+)?")


class TimeRangeError(ValueError):
    """A ``--from`` / ``--to`` value that cannot be read, or an empty range."""


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration such as ``90s``, ``1h30m`` or ``2d``."""
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise TimeRangeError(f"{text!r} is not a duration (use e.g. 30m, 2h, 1d12h)")
    return total


def parse_time(value: str, now: float) -> float:
    """Seconds since the epoch for one ``--from`` / ``--to`` value."""
    text = value.strip()
    if not text:
        raise TimeRangeError("empty time")
    lowered = text.lower()
    if lowered == "now":
        return now
    if lowered.startswith("now-"):
        return now - parse_duration(lowered[4:])
    if lowered.startswith("-"):
        return now - parse_duration(lowered[1:])
    if _UNIX.fullmatch(text):
        return float(text)
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise TimeRangeError(
            f"{value!r} is neither an RFC 3339 time (2025-11-24T16:00:00Z), "
            "now, a relative offset (-30m, -2h) nor Unix seconds") from None
    if when.tzinfo is None:
        raise TimeRangeError(f"{value!r} has no time zone: add Z (UTC) or an offset like +01:00")
    return when.timestamp()


def parse_range(time_from: str, time_to: str, now: float) -> tuple[float, float]:
    """``(start, end)`` in seconds since the epoch; the start must be before the end."""
    try:
        start = parse_time(time_from, now)
    except TimeRangeError as err:
        raise TimeRangeError(f"--from: {err}") from None
    try:
        end = parse_time(time_to, now)
    except TimeRangeError as err:
        raise TimeRangeError(f"--to: {err}") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise TimeRangeError("the time range must be finite")
    if start >= end:
        raise TimeRangeError(f"--from ({value_text(start)}) must be before --to ({value_text(end)})")
    return start, end


def value_text(seconds: float) -> str:
    """A time as RFC 3339 in UTC, for messages."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
