"""HTTP side of the simulated API: the request log, routing of ``/api`` and ``/apis``
paths, the deny list and injected faults, holds, and discovery documents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from exporter.simulator.kubeapi.handlers import Handlers
from exporter.simulator.kubeapi.kinds import (
    ApiError, LoggedRequest, PageNotFound, ResourceType, Route,
)
from exporter.simulator.kubeapi.watch import Watches

BODY = web.RequestKey("parsed_body", object)


class Routing(Handlers, Watches):
    """Dispatch of every request to its handler."""

    # --- internals: HTTP ------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        with self._lock:
            self._requests.append(LoggedRequest(
                request.method, request.path, dict(request.query), body,
                request.headers.get("Content-Type", ""), dict(request.headers),
            ))
            self._cond.notify_all()
        request[BODY] = body
        try:
            return await handler(request)
        except ApiError as err:
            return web.json_response(err.status(), status=err.code)
        except PageNotFound:
            return web.Response(status=404, text="404 page not found\n")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({
            "major": "1", "minor": "31", "gitVersion": "v1.31.0-fake", "gitCommit": "fake",
            "gitTreeState": "clean", "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22",
            "compiler": "gc", "platform": "linux/amd64",
        })

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [unquote(p) for p in request.path.strip("/").split("/") if p]
        if parts == ["api"]:
            return web.json_response({"kind": "APIVersions", "versions": ["v1"],
                                      "serverAddressByClientCIDRs": []})
        if parts == ["apis"]:
            return web.json_response(self._group_list())
        if len(parts) == 2 and parts[0] == "apis":
            document = self._group(parts[1])
            if document is None:
                raise PageNotFound()
            return web.json_response(document)
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise PageNotFound()
        with self._lock:
            served = [t for t in self.types if (t.group, t.version) == (group, version)
                      and (group, version) not in self._unserved]
        if not served:
            raise PageNotFound()
        if not rest:
            return web.json_response(self._resource_list(group, version, served))
        route = resolve_route(served, rest)
        if route is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self._handle(request, route)

    async def _handle(self, request: web.Request, route: Route) -> web.StreamResponse:
        method, query = request.method, request.query
        if route.subresource == "eviction":
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            self._authorize("create", route)
            await self._wait_holds("create", route, bearer(request))
            return web.json_response(self._evict(route, request[BODY]), status=201)
        if method == "GET":
            if route.name is None:
                verb = "watch" if query.get("watch") in ("1", "true") else "list"
            else:
                verb = "get"
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete"}.get(method, "")
        if not verb or (verb == "create" and route.name is not None) or (
            verb in ("update", "patch", "delete") and route.name is None
        ):
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        self._authorize(verb, route)
        await self._wait_holds(verb, route, bearer(request))
        body = request[BODY]
        if verb == "get":
            return web.json_response(self._get_or_404(route))
        if verb == "list":
            return web.json_response(self._list(route, query))
        if verb == "watch":
            return await self._watch(request, route)
        if verb == "create":
            return web.json_response(self._create(route, body), status=201)
        if verb == "update":
            return web.json_response(self._update(route, body))
        if verb == "patch":
            return web.json_response(
                self._patch(route, body, request.headers.get("Content-Type", "")))
        return web.json_response(self._delete_request(route, body))

    def _authorize(self, verb: str, route: Route) -> None:
        resource = route.rtype.plural + (f"/{route.subresource}" if route.subresource else "")
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.verb in (verb, "*") and fault.plural == resource \
                        and fault.namespace in (None, route.namespace):
                    fault.remaining -= 1
                    reason = {500: "InternalError", 503: "ServiceUnavailable",
                              429: "TooManyRequests", 504: "Timeout"}.get(fault.status, "Unknown")
                    raise ApiError(fault.status, reason, fault.message)
            for d_verb, d_resource, d_ns in self._denied:
                if d_verb in (verb, "*") and d_resource == resource and d_ns in (
                    None, route.namespace
                ):
                    break
            else:
                return
        group = route.rtype.group
        subject = f'{resource} "{route.name}"' if route.name else resource
        scope = (f'in the namespace "{route.namespace}"' if route.namespace
                 else "at the cluster scope")
        message = (f'{subject} is forbidden: User "{self.user}" cannot {verb} resource '
                   f'"{resource}" in API group "{group}" {scope}')
        details: dict[str, str] = {"kind": resource}
        if route.name:
            details["name"] = route.name
        if group:
            details["group"] = group
        raise ApiError(403, "Forbidden", message, details)

    async def _wait_holds(self, verb: str, route: Route, token: str) -> None:
        resource = route.rtype.plural + (f"/{route.subresource}" if route.subresource else "")
        with self._lock:
            holds = [h for h in self._holds if h.matches(verb, resource, route.namespace, token)]
        for hold in holds:
            await asyncio.to_thread(hold._park, 30.0)


    # --- discovery -------------------------------------------------------------------

    def _served_types(self) -> list[ResourceType]:
        with self._lock:
            return [t for t in self.types if (t.group, t.version) not in self._unserved]

    def _group_list(self) -> dict:
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [g for g in (self._group(name) for name in self._group_names()) if g]}

    def _group_names(self) -> list[str]:
        names: list[str] = []
        for t in self._served_types():
            if t.group and t.group not in names:
                names.append(t.group)
        return names

    def _group(self, name: str) -> dict | None:
        versions: list[str] = []
        for t in self._served_types():
            if t.group == name and t.version not in versions:
                versions.append(t.version)
        if not versions:
            return None
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": entries,
                "preferredVersion": entries[0]}

    @staticmethod
    def _resource_list(group: str, version: str, served: list[ResourceType]) -> dict:
        resources = []
        for t in served:
            resources.append({
                "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })
            if t.status_subresource:
                resources.append({"name": f"{t.plural}/status", "singularName": "",
                                  "namespaced": t.namespaced, "kind": t.kind,
                                  "verbs": ["get", "patch", "update"]})
            if (t.group, t.plural) == ("", "pods"):
                resources.append({"name": "pods/eviction", "singularName": "", "namespaced": True,
                                  "group": "policy", "version": "v1", "kind": "Eviction",
                                  "verbs": ["create"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}


# --- routing ------------------------------------------------------------------------


def resolve_route(served: list[ResourceType], rest: list[str]) -> Route | None:
    """Resolve the path after ``/api/v1`` or ``/apis/<group>/<version>``."""
    by_plural = {t.plural: t for t in served}
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    rtype = by_plural.get(rest[0])
    if rtype is None or len(rest) > 3:
        return None
    if namespace is not None and not rtype.namespaced:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    eviction = sub == "eviction" and (rtype.group, rtype.plural) == ("", "pods")
    if sub is not None and not eviction and (sub != "status" or not rtype.status_subresource):
        return None
    if rtype.namespaced and namespace is None and name is not None:
        return None
    return Route(rtype, namespace, name, sub)



def bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""

