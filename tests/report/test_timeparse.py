"""``--from`` / ``--to`` parsing: accepted forms, refused forms, range checks."""

from __future__ import annotations

import pytest

from exporter.report.timeparse import TimeRangeError, parse_duration, parse_range, parse_time

NOW = 1764007200.0  # 2025-11-24T18:00:00Z


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW),
    ("NOW", NOW),
    ("-30m", NOW - 1800),
    ("-2h", NOW - 7200),
    ("-1d12h", NOW - 129600),
    ("-90s", NOW - 90),
    ("-500ms", NOW - 0.5),
    ("-1w", NOW - 604800),
    ("now-1h30m", NOW - 5400),
    ("2025-11-24T16:00:00Z", 1764000000.0),
    ("2025-11-24T16:00:00z", 1764000000.0),
    ("2025-11-24T17:00:00.5+01:00", 1764000000.5),
    ("2025-11-24 16:00:00+00:00", 1764000000.0),
    ("1764000000", 1764000000.0),
    ("1764000000.25", 1764000000.25),
])
def test_accepted(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty time"),
    ("yesterday", "is neither an RFC 3339 time"),
    ("-2", "is not a duration"),
    ("-2x", "is not a duration"),
    ("-h", "is not a duration"),
    ("now+1h", "is neither"),
    ("2025-11-24T16:00:00", "has no time zone"),
    ("2025-13-24T16:00:00Z", "is neither"),
    ("42", "is neither"),
])
def test_refused(text: str, message: str) -> None:
    with pytest.raises(TimeRangeError, match=message):
        parse_time(text, NOW)


def test_duration_sums_units() -> None:
    assert parse_duration("1h30m15s") == 5415
    with pytest.raises(TimeRangeError):
        parse_duration("30m1h x")


def test_range_names_the_flag_and_needs_start_before_end() -> None:
    assert parse_range("-2h", "now", NOW) == (NOW - 7200, NOW)
    with pytest.raises(TimeRangeError, match="^--from: "):
        parse_range("soon", "now", NOW)
    with pytest.raises(TimeRangeError, match="^--to: "):
        parse_range("-2h", "later", NOW)
    with pytest.raises(TimeRangeError, match=r"--from \(2025-11-24T18:00:00Z\) must be before --to"):
        parse_range("now", "now", NOW)
    with pytest.raises(TimeRangeError, match="must be before"):
        parse_range("-1h", "-2h", NOW)
