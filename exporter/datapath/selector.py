"""Kubernetes ``LabelSelector`` matching (matchLabels and matchExpressions).

Follows ``metav1.LabelSelectorAsSelector``: a missing (nil) selector selects nothing,
an empty one selects everything, and an invalid one (unknown operator, ``In`` without
values, ``Exists`` with values) selects nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Does ``selector`` select an object carrying ``labels``?"""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        if not _expression_matches(expression, labels):
            return False
    return True


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expression.get("key")
    operator = expression.get("operator")
    values = expression.get("values") or ()
    if not key:
        return False
    if operator in ("In", "NotIn"):
        if not values:
            return False
        present = key in labels and labels[key] in values
        return present if operator == "In" else not present
    if operator in ("Exists", "DoesNotExist"):
        if values:
            return False
        return (key in labels) == (operator == "Exists")
    return False
