"""Number and time formatting shared by the report's assembly and renderers.

Every function takes ``None`` for "no data" and returns ``NO_DATA`` for it, so a missing
value can never be shown as a zero. Times are shown in UTC. Output is plain text (no
markup); the renderers escape it. Pure module.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Final

NO_DATA: Final = "no data"


def seconds(value: float | None) -> str:
    """A duration: ``25 µs``, ``0.42 ms``, ``1.50 s``."""
    if value is None or math.isnan(value):
        return NO_DATA
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    magnitude = abs(value)
    if magnitude >= 1:
        return f"{value:.2f} s"
    if magnitude >= 0.001:
        return f"{_significant(value * 1e3)} ms"
    return f"{_significant(value * 1e6)} µs"


def ratio(value: float | None) -> str:
    """A share as a percentage with three significant digits: ``0.0131 %``, ``2.50 %``."""
    if value is None or math.isnan(value):
        return NO_DATA
    if value == 0:
        return "0 %"
    return f"{_significant(value * 100)} %"


def count(value: float | None) -> str:
    """An event count (``increase()`` results are estimates, so rounded): ``12,345``."""
    if value is None or math.isnan(value):
        return NO_DATA
    return f"{round(value):,}"


def relative(value: float | None) -> str:
    """A relative change: ``+28 %``, ``-12 %``; ``from 0`` when there was nothing before
    (``None``, or the infinite ratio of something over nothing)."""
    if value is None or value == math.inf:
        return "from 0"
    if math.isnan(value):
        return NO_DATA
    if value == -math.inf:
        return "-Inf %"
    return f"{value * 100:+.0f} %" if abs(value) >= 0.01 else f"{value * 100:+.1f} %"


def value(amount: float | None, unit: str) -> str:
    """``seconds`` or ``ratio`` by unit name."""
    return seconds(amount) if unit == "s" else ratio(amount)


def timestamp(when: float | None) -> str:
    """``2025-11-24 16:40:00 UTC``."""
    if when is None or not math.isfinite(when):
        return NO_DATA
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(when: float) -> str:
    """``16:40`` (UTC), for compact spans."""
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%H:%M")


def span(start: float, end: float) -> str:
    """``16:00-17:40 UTC``, with dates when the span crosses days."""
    first = datetime.fromtimestamp(start, tz=timezone.utc)
    last = datetime.fromtimestamp(end, tz=timezone.utc)
    if first.date() == last.date():
        return f"{first:%H:%M}-{last:%H:%M} UTC"
    return f"{first:%Y-%m-%d %H:%M}-{last:%Y-%m-%d %H:%M} UTC"


def length(total_seconds: float) -> str:
    """``1h40m``, ``45m``, ``30s``."""
    total = int(round(total_seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def _significant(number: float) -> str:
    """Three significant digits without an exponent."""
    if number == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(number)))))
    return f"{number:.{digits}f}"
