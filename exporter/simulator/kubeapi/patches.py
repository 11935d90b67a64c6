"""Patch types of the fake API server: what the product sends, and nothing more.

The product sends JSON merge patches (RFC 7386) and, for built-in kinds, strategic merge
patches of maps and scalars only (``exporter.kube.wire.PATCH_TYPES``). For such a patch
strategic merge and merge patch give the same object, so the fake applies both with
``merge_patch``. A strategic merge patch with a list or a ``$`` directive needs Kubernetes'
merge keys, which the fake does not implement: it refuses the patch (415) instead of
answering with a different object than a real server would. JSON patch (RFC 6902) is
refused the same way.
"""

from __future__ import annotations

import copy
from typing import Any


class UnsupportedPatch(ValueError):
    """A patch the fake does not implement (the server answers 415)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    """A strategic merge patch of maps and scalars (the same object as a merge patch);
    raises ``UnsupportedPatch`` for lists and ``$`` directives."""
    _refuse_lists_and_directives(patch, "")
    return merge_patch(target, patch)


def _refuse_lists_and_directives(node: Any, path: str) -> None:
    if isinstance(node, list):
        raise UnsupportedPatch(
            f"the fake API server applies strategic merge patches of maps only; {path or '/'} "
            "is a list (send a merge patch, or extend exporter/simulator/kubeapi/patches.py)")
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).startswith("$"):
                raise UnsupportedPatch(
                    f"the fake API server does not implement the strategic merge directive "
                    f"{key!r} at {path or '/'}")
            _refuse_lists_and_directives(value, f"{path}/{key}")
