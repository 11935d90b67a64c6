"""Label and field selectors of the fake API server, parsed as the real server parses them.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``.
Field selectors: ``metadata.name``, ``metadata.namespace`` and (pods only) ``spec.nodeName``,
with ``=``, ``==`` or ``!=``; any other field is refused as the real server refuses it.
"""

from __future__ import annotations

import re


class SelectorError(ValueError):
    """The selector does not parse (the server answers 400)."""


_REQ = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|"
                  r"\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def parse_label_selector(text: str) -> list[tuple[str, str, frozenset[str]]]:
    """Requirements as (op, key, values); op is one of = != in notin exists !exists."""
    reqs: list[tuple[str, str, frozenset[str]]] = []
    for part in _split_selector(text):
        m = _REQ.match(part)
        if m is None:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        bang, key, eq_op, eq_val, set_op, set_vals = m.groups()
        if bang:
            if eq_op or set_op:
                raise SelectorError(f"unable to parse requirement: {part!r}")
            reqs.append(("!exists", key, frozenset()))
        elif eq_op:
            reqs.append(("!=" if eq_op == "!=" else "=", key, frozenset({eq_val})))
        elif set_op:
            values = frozenset(v.strip() for v in set_vals.split(",") if v.strip())
            reqs.append((set_op, key, values))
        else:
            reqs.append(("exists", key, frozenset()))
    return reqs


FIELDS = {
    "metadata.name": lambda o: (o.get("metadata") or {}).get("name", ""),
    "metadata.namespace": lambda o: (o.get("metadata") or {}).get("namespace", ""),
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
}


def parse_field_selector(text: str, plural: str) -> list[tuple[str, str, str]]:
    """Field requirements as (field, op, value) for a list of ``plural``."""
    reqs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.match(r"^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$", part)
        if m is None:
            raise SelectorError(f"invalid field selector: {part!r}")
        key, op, value = m.groups()
        if key not in FIELDS or (key == "spec.nodeName" and plural != "pods"):
            raise SelectorError(f'field label not supported: {key}')
        reqs.append((key, "!=" if op == "!=" else "=", value))
    return reqs


def matches(obj: dict, labels: list, fields: list) -> bool:
    """Does ``obj`` satisfy every label and field requirement?"""
    have = (obj.get("metadata") or {}).get("labels") or {}
    for op, key, values in labels:
        present = key in have
        if op == "=" and (not present or have[key] not in values):
            return False
        if op == "!=" and present and have[key] in values:
            return False
        if op == "in" and (not present or have[key] not in values):
            return False
        if op == "notin" and present and have[key] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    for key, op, value in fields:
        actual = FIELDS[key](obj)
        if (actual == value) != (op == "="):
            return False
    return True
