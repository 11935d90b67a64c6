"""Request handlers of the simulated API: get, list, create, update, patch, delete and the
pod eviction subresource (with PodDisruptionBudgets), over the store."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from exporter.simulator.kubeapi.kinds import (
    ApiError, ResourceType, Route, check_type, conflict, not_found, now_stamp, object_body,
    qualified,
)
from exporter.simulator.kubeapi.patches import UnsupportedPatch, merge_patch, strategic_merge
from exporter.simulator.kubeapi.selectors import (
    SelectorError, matches, parse_field_selector, parse_label_selector,
)
from exporter.simulator.kubeapi.store import Store


class Handlers(Store):
    """The verbs on stored objects; every method raises ``ApiError`` for its error answer."""

    def _get_or_404(self, route: Route) -> dict:
        ns = route.namespace or ""
        with self._lock:
            obj = self._objects.get(self._key(route.rtype, ns, route.name or ""))
            if obj is None:
                raise not_found(route.rtype, route.name or "")
            return copy.deepcopy(obj)

    def _list(self, route: Route, query: Any) -> dict:
        labels = parsed_selector(parse_label_selector, query.get("labelSelector", ""))
        fields = parsed_selector(parse_field_selector, query.get("fieldSelector", ""),
                           route.rtype.plural)
        with self._lock:
            items = [copy.deepcopy(o) for o in self._iter(route.rtype, route.namespace)
                     if matches(o, labels, fields)]
            rv = str(self._rv)
        return {"kind": f"{route.rtype.kind}List", "apiVersion": route.rtype.api_version,
                "metadata": {"resourceVersion": rv}, "items": items}

    def _create(self, route: Route, body: Any) -> dict:
        rtype = route.rtype
        obj = object_body(body)
        ns = route.namespace or ""
        body_ns = (obj.get("metadata") or {}).get("namespace")
        if rtype.namespaced and body_ns and body_ns != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        check_type(rtype, obj)
        with self._lock:
            name = (obj.get("metadata") or {}).get("name", "")
            if name and self._key(rtype, ns, name) in self._objects:
                raise ApiError(409, "AlreadyExists",
                               f'{qualified(rtype)} "{name}" already exists',
                               {"name": name, "group": rtype.group, "kind": rtype.plural})
            obj.setdefault("metadata", {}).pop("resourceVersion", None)
            stored = self._prepare_new(rtype, ns, obj, None)
            if self._key(rtype, ns, stored["metadata"]["name"]) in self._objects:
                raise ApiError(409, "AlreadyExists", f'{qualified(rtype)} '
                               f'"{stored["metadata"]["name"]}" already exists')
            return copy.deepcopy(self._write(rtype, ns, None, stored))

    def _update(self, route: Route, body: Any) -> dict:
        obj = object_body(body)
        check_type(route.rtype, obj)
        meta = obj.get("metadata") or {}
        if meta.get("name") != route.name:
            raise ApiError(400, "BadRequest", "the name of the object "
                           f"({meta.get('name')}) does not match the name on the URL "
                           f"({route.name})")
        return self._replace(route, obj, meta.get("resourceVersion"))

    def _replace(self, route: Route, obj: dict, precondition: str | None) -> dict:
        rtype, ns, name = route.rtype, route.namespace or "", route.name or ""
        with self._lock:
            old = self._objects.get(self._key(rtype, ns, name))
            if old is None:
                raise not_found(rtype, name)
            if precondition and precondition != old["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            if rtype.status_subresource:
                if route.subresource == "status":
                    status = obj.get("status")
                    obj = copy.deepcopy(old)
                    if status is None:
                        obj.pop("status", None)
                    else:
                        obj["status"] = status
                elif "status" in old:
                    obj["status"] = copy.deepcopy(old["status"])
                else:
                    obj.pop("status", None)
            stored = self._prepare_new(rtype, ns, obj, old)
            return copy.deepcopy(self._write(rtype, ns, old, stored))

    def _patch(self, route: Route, body: Any, content_type: str) -> dict:
        media = content_type.split(";")[0].strip().lower()
        rtype, ns, name = route.rtype, route.namespace or "", route.name or ""
        if media == "application/strategic-merge-patch+json" and not rtype.builtin:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                           "unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json")
        if media not in ("application/strategic-merge-patch+json",
                         "application/merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType",
                           f"the fake API server does not accept patches of type {media!r}")
        with self._lock:
            old = self._objects.get(self._key(rtype, ns, name))
            if old is None:
                raise not_found(rtype, name)
            current = copy.deepcopy(old)
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            merge = strategic_merge if media.startswith("application/strategic") else \
                merge_patch
            patched = apply_patch(merge, current, body)
            if not isinstance(patched, dict):
                raise ApiError(422, "Invalid", "the patch did not produce an object")
            precondition = (patched.get("metadata") or {}).get("resourceVersion")
            if precondition != old["metadata"]["resourceVersion"]:
                if precondition is not None:
                    raise conflict(rtype, name)
            if (patched.get("metadata") or {}).get("name") != name:
                raise ApiError(422, "Invalid", "metadata.name: the name is immutable")
            check_type(rtype, patched)
            return self._replace(route, patched, None)

    def _delete_request(self, route: Route, body: Any) -> dict:
        rtype, ns, name = route.rtype, route.namespace or "", route.name or ""
        preconditions = (body or {}).get("preconditions") if isinstance(body, dict) else None
        with self._lock:
            old = self._objects.get(self._key(rtype, ns, name))
            if old is None:
                raise not_found(rtype, name)
            if preconditions:
                want_rv = preconditions.get("resourceVersion")
                want_uid = preconditions.get("uid")
                if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                    raise conflict(rtype, name)
                if want_uid and want_uid != old["metadata"]["uid"]:
                    raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: "
                                   f"{want_uid}, UID in object meta: {old['metadata']['uid']}")
            final = self._delete(rtype, ns, old)
        if rtype.plural == "pods":
            return copy.deepcopy(final)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": rtype.group, "kind": rtype.plural,
                            "uid": final["metadata"]["uid"]}}

    def _evict(self, route: Route, body: Any) -> dict:
        """``POST pods/{name}/eviction``: delete the pod unless its budget forbids."""
        eviction = object_body(body)
        if eviction.get("kind") not in (None, "Eviction") or eviction.get("apiVersion") not in (
                None, "policy/v1", "policy/v1beta1"):  # absent: the endpoint's own, as upstream
            raise ApiError(400, "BadRequest", "the body of an eviction must be a policy/v1 Eviction")
        if (eviction.get("metadata") or {}).get("name") != route.name:
            raise ApiError(400, "BadRequest", "name in URL does not match name in Eviction object")
        pods, ns, name = route.rtype, route.namespace or "", route.name or ""
        budgets = next((t for t in self.types if t.plural == "poddisruptionbudgets"), None)
        preconditions = (eviction.get("deleteOptions") or {}).get("preconditions") or {}
        with self._lock:
            pod = self._objects.get(self._key(pods, ns, name))
            if pod is None:
                raise not_found(pods, name)
            if preconditions.get("uid") and preconditions["uid"] != pod["metadata"]["uid"]:
                raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: "
                               f"{preconditions['uid']}, UID in object meta: {pod['metadata']['uid']}")
            if budgets is not None and (pod.get("status") or {}).get("phase") not in (
                    "Succeeded", "Failed", "Pending"):
                covering = [b for b in self._iter(budgets, ns)
                            if selects((b.get("spec") or {}).get("selector"), pod)]
                if len(covering) > 1:
                    raise ApiError(500, "InternalError", "This pod has more than one "
                                   "PodDisruptionBudget, which the eviction subresource does not support.")
                if covering:
                    self._spend(budgets, ns, covering[0], name)
            self._delete(pods, ns, pod)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}

    def _spend(self, rtype: ResourceType, ns: str, budget: dict, pod: str) -> None:
        """One disruption of ``budget`` for ``pod``, or 429; caller holds the lock."""
        status = budget.get("status") or {}
        if int(status.get("disruptionsAllowed", 0)) <= 0:
            name = budget["metadata"]["name"]
            raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the "
                           "pod's disruption budget.", {"causes": [{
                               "reason": "DisruptionBudget",
                               "message": f"The disruption budget {name} needs "
                                          f"{status.get('desiredHealthy', 0)} healthy pods and has "
                                          f"{status.get('currentHealthy', 0)} currently"}]})
        spent = copy.deepcopy(budget)
        spent["status"]["disruptionsAllowed"] = int(status["disruptionsAllowed"]) - 1
        spent["status"].setdefault("disruptedPods", {})[pod] = now_stamp()
        self._write(rtype, ns, budget, self._prepare_new(rtype, ns, spent, budget))




_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def selects(selector: Any, obj: dict) -> bool:
    """A LabelSelector object (a budget's ``spec.selector``) over ``obj``'s labels: nil
    selects nothing, ``{}`` everything (policy/v1)."""
    if not isinstance(selector, dict):
        return False
    reqs = [("=", k, frozenset({v})) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or ():
        reqs.append((_OPERATORS[expr["operator"]], expr["key"], frozenset(expr.get("values") or ())))
    return matches(obj, reqs, [])


def parsed_selector(parse: Callable, *args: Any) -> list:
    try:
        return parse(*args)
    except SelectorError as err:
        raise ApiError(400, "BadRequest", str(err)) from None


def apply_patch(patcher: Callable, current: dict, body: Any) -> Any:
    try:
        return patcher(current, body)
    except UnsupportedPatch as err:
        raise ApiError(415, "UnsupportedMediaType", str(err)) from None

