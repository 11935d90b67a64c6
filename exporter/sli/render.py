"""Fast Prometheus text exposition (format 0.0.4) straight from the SLI dicts.

``prometheus_client.generate_latest`` spends several microseconds per sample
(label validation and escaping, one ``Sample`` per bucket), which at 2,000
services x 2 datapaths is most of a second. This renderer writes the same
samples from the plain dicts, caching each series' escaped label set, so a
scrape costs a few hundred nanoseconds per line. Output is the classic text
format; parsed, it holds exactly the samples ``generate_latest`` would produce.
Pure module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from exporter.sli.series import CounterVec, HistogramVec, Vec


def escape_value(value: str) -> str:
    """A label value escaped for the text format."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_value(value: float) -> str:
    """A sample value as the text format spells it."""
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(value)


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{escape_value(str(v))}"' for n, v in zip(names, values))


def _help_type(lines: list[str], name: str, help: str, kind: str) -> None:
    text = help.replace("\\", "\\\\").replace("\n", "\\n")
    lines.append(f"# HELP {name} {text}")
    lines.append(f"# TYPE {name} {kind}")


class TextRenderer:
    """Renders vecs; keeps the escaped label set of every series between scrapes."""

    def __init__(self) -> None:
        self._prefixes: dict[str, dict[tuple[Any, ...], str]] = {}

    def _prefix_cache(self, vec: Vec) -> dict[tuple[Any, ...], str]:
        cache = self._prefixes.get(vec.name)
        if cache is None or len(cache) > 2 * len(vec.values) + 64:
            cache = self._prefixes[vec.name] = {}  # forget series removed since
        return cache

    def render(self, vecs: Iterable[Vec], lines: list[str] | None = None) -> list[str]:
        """Append every vec's lines (without trailing newlines) to ``lines``."""
        out: list[str] = [] if lines is None else lines
        for vec in vecs:
            if isinstance(vec, HistogramVec):
                self._histogram(vec, out)
            else:
                self._counter(vec, out)
        return out

    def _prefix(self, cache: dict[tuple[Any, ...], str], vec: Vec, key: tuple[Any, ...]) -> str:
        prefix = cache.get(key)
        if prefix is None:
            svc = key[0]
            prefix = cache[key] = _labels(vec.labels, (svc.namespace, svc.name, *key[1:]))
        return prefix

    def _counter(self, vec: CounterVec, out: list[str]) -> None:
        name = vec.name
        _help_type(out, name, vec.help, "counter")
        cache = self._prefix_cache(vec)
        prefix = self._prefix
        append = out.append
        for key, value in list(vec.values.items()):
            append(f"{name}{{{prefix(cache, vec, key)}}} {value}")

    def _histogram(self, vec: HistogramVec, out: list[str]) -> None:
        name = vec.name
        _help_type(out, name, vec.help, "histogram")
        cache = self._prefix_cache(vec)
        prefix = self._prefix
        append = out.append
        width = vec.width
        bucket = f"{name}_bucket{{"
        les = [f',le="{le}"}} ' for le in vec._le]
        for key, row in list(vec.values.items()):
            p = prefix(cache, vec, key)
            head = bucket + p
            total: float = 0
            for i in range(width):
                total += row[i]
                append(f"{head}{les[i]}{total}")
            append(f"{name}_sum{{{p}}} {format_value(row[width])}")
            append(f"{name}_count{{{p}}} {total}")


def render_simple(
    out: list[str], name: str, help: str, kind: str, label_names: tuple[str, ...],
    samples: Iterable[tuple[tuple[str, ...], float]],
) -> None:
    """Append a small family (counter or gauge) given as ``(label values, value)`` pairs."""
    _help_type(out, name, help, kind)
    for values, value in samples:
        out.append(f"{name}{{{_labels(label_names, values)}}} {format_value(value)}")
