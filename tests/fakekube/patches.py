"""Patch types of the fake API server: JSON merge patch (RFC 7386), JSON patch
(RFC 6902) and the subset of Kubernetes' strategic merge patch this project uses."""

from __future__ import annotations

import copy
from typing import Any

# Strategic-merge list keys by field name (the subset of Kubernetes' patchMergeKey tags
# this project's objects use). "ports" depends on the element (container vs Service).
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name",
    "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey", "volumeDevices": "devicePath",
}
_MERGE_PRIMITIVES = frozenset({"finalizers"})


class PatchError(ValueError):
    """The patch cannot be applied (the server answers 422)."""



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


def strategic_merge(target: Any, patch: Any, field_name: str = "") -> Any:
    """The subset of Kubernetes' strategic merge patch the project uses: merge keys for
    well-known lists, ``$patch: replace|delete``, ``$deleteFromPrimitiveList/<field>``;
    ``$setElementOrder`` and ``$retainKeys`` directives are accepted and ignored."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, key)
        elif isinstance(value, dict):
            result[key] = strategic_merge(result.get(key), value, key)
        else:
            result[key] = value
    return result


def _merge_list(current: Any, patch: list, name: str) -> list:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    current = list(current) if isinstance(current, list) else []
    if name in _MERGE_PRIMITIVES:
        return current + [v for v in patch if v not in current]
    key = _MERGE_KEYS.get(name)
    if name == "ports":
        sample = next((i for i in patch + current if isinstance(i, dict)), {})
        key = "containerPort" if "containerPort" in sample else "port"
    if key is None or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    merged = [copy.deepcopy(i) for i in current]
    for item in patch:
        ident = item.get(key)
        index = next((n for n, cur in enumerate(merged)
                      if isinstance(cur, dict) and cur.get(key) == ident), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            merged[index] = strategic_merge(merged[index], item, name)
    return merged


def json_patch(doc: Any, operations: list) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _pointer_set(doc, path, copy.deepcopy(op.get("value")), insert=True)
        elif kind == "remove":
            doc, _ = _pointer_remove(doc, path)
        elif kind == "replace":
            _pointer_get(doc, path)
            doc = _pointer_set(doc, path, copy.deepcopy(op.get("value")), insert=False)
        elif kind == "move":
            doc, value = _pointer_remove(doc, op.get("from", ""))
            doc = _pointer_set(doc, path, value, insert=True)
        elif kind == "copy":
            doc = _pointer_set(doc, path, copy.deepcopy(_pointer_get(doc, op.get("from", ""))),
                               insert=True)
        elif kind == "test":
            if _pointer_get(doc, path) != op.get("value"):
                raise PatchError(f"the JSON patch test at {path!r} failed")
        else:
            raise PatchError(f"unknown JSON patch op {kind!r}")
    return doc


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _pointer_get(doc: Any, path: str) -> Any:
    node = doc
    for token in _tokens(path):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchError(f"JSON pointer {path!r} does not exist")
    return node


def _pointer_set(doc: Any, path: str, value: Any, *, insert: bool) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return value
    parent = _pointer_get(doc, "/" + "/".join(
        t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])) if tokens[:-1] else doc
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (0 if insert else 1):
            if insert:
                parent.insert(int(last), value)
            else:
                parent[int(last)] = value
        else:
            raise PatchError(f"JSON pointer {path!r} is out of range")
    else:
        raise PatchError(f"JSON pointer {path!r} has no container")
    return doc


def _pointer_remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _tokens(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent_path = "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])
    parent = _pointer_get(doc, parent_path) if tokens[:-1] else doc
    value = _pointer_get(doc, path)
    if isinstance(parent, dict):
        del parent[tokens[-1]]
    else:
        del parent[int(tokens[-1])]
    return doc, value
