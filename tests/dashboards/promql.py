"""A small regex-based reader of PromQL, enough to name the metrics an expression reads.

It is not a parser (promtool checks syntax): it blanks out string literals, label matchers,
range and subquery brackets, label lists (``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right``) and ``offset`` durations, then keeps the identifiers that are
neither a function call, a keyword nor part of a number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

KEYWORDS: Final = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "Inf", "NaN", "atan2", "start", "end",
})
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS: Final = re.compile(r"\{[^{}]*\}")
_BRACKETS: Final = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST: Final = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET: Final = re.compile(r"\boffset\s+-?[0-9a-zA-Z]+")
_IDENT: Final = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES: Final = re.compile(r"^\s*label_values\(\s*(?P<expr>.*?)\s*,\s*(?P<label>\w+)\s*\)\s*$", re.S)


def _blank(expr: str) -> str:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    return _OFFSET.sub(" ", text)


def metric_names(expr: str) -> set[str]:
    """Every metric (or recording rule) name ``expr`` selects."""
    text = _blank(expr)
    names = set()
    for match in _IDENT.finditer(text):
        token, before = match.group(0), text[match.start() - 1] if match.start() else " "
        if token in KEYWORDS or before.isdigit() or before == ".":
            continue
        if re.match(r"\s*\(", text[match.end():]):
            continue  # a function call
        names.add(token)
    return names


def selectors(expr: str, name: str) -> Iterator[str]:
    """The matcher text (``'{...}'`` or ``''``) of each selection of metric ``name`` in ``expr``."""
    pattern = re.compile(rf'(?<![\w:"\'$]){re.escape(name)}(?![\w:(])\s*(\{{(?:[^{{}}"]|"(?:[^"\\]|\\.)*")*\}})?')
    for match in pattern.finditer(expr):
        yield match.group(1) or ""


def wrapped_in(expr: str, name: str) -> Iterator[str]:
    """For each selection of ``name``: the function whose call it is the first argument of."""
    pattern = re.compile(rf'(?<![\w:"]){re.escape(name)}(?![\w:(])')
    for match in pattern.finditer(expr):
        head = re.search(r"([A-Za-z_]+)\(\s*$", expr[:match.start()])
        yield head.group(1) if head else ""


def label_values_query(query: str) -> str | None:
    """The series expression inside a Grafana ``label_values(expr, label)`` query."""
    match = _LABEL_VALUES.match(query)
    return match.group("expr") if match else None


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables so that promtool can parse the expression."""
    text = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", ".+", text)
