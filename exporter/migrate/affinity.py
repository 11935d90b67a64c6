"""The kube-proxy DaemonSet's exclusion of migrated nodes, as the official per-node
procedure writes it: a required node-affinity expression ``<label> NotIn [<value>]`` in every
node-selector term (terms are ORed, so one term without it would still admit the node).
Pure.
"""

from __future__ import annotations

import copy
from typing import Any

from exporter.rollback.model import required_node_terms, without_excluded_values


def excludes(ds: dict[str, Any], key: str, value: str) -> bool:
    """Whether every required node-affinity term keeps the DaemonSet off ``key=value``."""
    terms = required_node_terms(ds) or []
    return bool(terms) and all(
        any(e.get("key") == key and e.get("operator") == "NotIn" and value in (e.get("values") or ())
            for e in t.get("matchExpressions") or ()) for t in terms)


def with_exclusion(ds: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """A copy of ``ds`` whose every required term carries ``key NotIn [value]`` (the
    official procedure's affinity)."""
    out = copy.deepcopy(ds)
    pod = out.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
    affinity = pod.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or [{}]
    for term in terms:
        exprs = term.setdefault("matchExpressions", [])
        mine = next((e for e in exprs if e.get("key") == key and e.get("operator") == "NotIn"), None)
        if mine is None:
            exprs.append({"key": key, "operator": "NotIn", "values": [value]})
        elif value not in mine.get("values", []):
            mine["values"] = [*mine.get("values", []), value]
    required["nodeSelectorTerms"] = terms
    return out


def without_exclusion(ds: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """``ds`` without ``key NotIn [value]``; an affinity left empty is removed."""
    out = without_excluded_values(ds, key, [value])
    pod = out.get("spec", {}).get("template", {}).get("spec", {})
    affinity = pod.get("affinity")
    if isinstance(affinity, dict):
        if affinity.get("nodeAffinity") == {}:
            affinity.pop("nodeAffinity")
        if not affinity:
            pod.pop("affinity")
    return out


def affinity_of(ds: dict[str, Any]) -> dict[str, Any] | None:
    return (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("affinity")


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: dict[str, Any] = {k: None for k in old if k not in new}
    out.update({k: merge_patch(old.get(k), v) if k in old else v
                for k, v in new.items() if old.get(k) != v or k not in old})
    return out


def affinity_patch(ds: dict[str, Any], want: dict[str, Any] | None) -> dict[str, Any]:
    """A merge patch setting the pod affinity to ``want``, conditional on ``ds``'s
    resourceVersion (a stale one is a 409, as for an update)."""
    current = affinity_of(ds)
    value = merge_patch(current, want) if current is not None and want is not None else want
    return {"metadata": {"resourceVersion": ds["metadata"]["resourceVersion"]},
            "spec": {"template": {"spec": {"affinity": value}}}}
