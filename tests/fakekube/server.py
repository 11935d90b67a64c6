"""A fake Kubernetes API server for tests (an aiohttp app on 127.0.0.1).

This is a FAKE, not a real API server. It keeps objects in memory and honours the
semantics this project relies on, so the real ``kubernetes`` client can talk to it:

* objects keyed by (group, version, resource, namespace, name); every write takes the
  next value of one global ``resourceVersion`` counter;
* 404 for missing objects (and ``404 page not found`` for unknown group/versions),
  409 ``AlreadyExists`` on create of an existing object, 409 ``Conflict`` when an
  update, patch or delete carries a stale ``metadata.resourceVersion``;
* 403 from a deny list of (verb, resource, namespace), with a ``Status`` body worded
  like the real RBAC authorizer's;
* patches: what the product sends (``tests/fakekube/patches.py``): JSON merge patch, and
  strategic merge of maps and scalars for built-in kinds (415 for custom resources, like
  the real server); 415 for what the fake does not implement (JSON patch, strategic merge
  of lists or with ``$`` directives) rather than a different answer than a real server's;
* list with ``labelSelector`` and ``fieldSelector`` (``metadata.name``,
  ``metadata.namespace``, ``spec.nodeName``);
* watch (``?watch=1``) from a ``resourceVersion`` with ADDED/MODIFIED/DELETED events
  (selector transitions become ADDED/DELETED as on a real server), and an ERROR event
  carrying a 410 ``Expired`` Status for a compacted resourceVersion;
* ``/version``, ``/api``, ``/apis`` and per group/version discovery documents;
* eviction (``POST .../pods/{name}/eviction``, a policy/v1 ``Eviction``): the pod is
  deleted unless the one PodDisruptionBudget selecting it allows no disruption now
  (``status.disruptionsAllowed``), which answers 429 ``TooManyRequests`` with a
  ``DisruptionBudget`` cause; an allowed eviction spends one disruption, as the real
  server does. Terminal and pending pods are evicted whatever the budget; two budgets over
  one pod answer 500. ``budget()`` seeds a budget; tests play the disruption controller
  by seeding it again.

Deliberate simplifications: no admission, no defaulting or validation beyond
names, namespaces need not exist, no garbage collection or controllers (a
DaemonSet creates no pods: tests add pods themselves), deletion is immediate,
server-side apply is refused with 415. Writes through the main resource keep the
stored ``status`` of kinds that have a status subresource, as the real server does.

The server runs its own event loop in a background thread (``FakeKube.start``), so
blocking clients and asyncio tests can both use it; helpers are thread-safe.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import itertools
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.fakekube.patches import UnsupportedPatch, merge_patch, strategic_merge
from tests.fakekube.selectors import (
    SelectorError,
    matches,
    parse_field_selector,
    parse_label_selector,
)

# --- resource types --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource: where it lives and what it is called."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False
    builtin: bool = True  # strategic-merge patch is only accepted for built-in kinds

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


DEFAULT_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "configmaps", "ConfigMap"),
    ResourceType("", "v1", "pods", "Pod", status_subresource=True),
    ResourceType("", "v1", "nodes", "Node", namespaced=False, status_subresource=True),
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False),
    ResourceType("", "v1", "services", "Service", status_subresource=True),
    ResourceType("", "v1", "events", "Event"),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
                 namespaced=False),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", status_subresource=True),
    ResourceType("apps", "v1", "deployments", "Deployment", status_subresource=True),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget",
                 status_subresource=True),
    ResourceType("helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease", builtin=False),
    ResourceType("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization",
                 builtin=False),
    ResourceType("argoproj.io", "v1alpha1", "applications", "Application", builtin=False),
    ResourceType("cilium.io", "v2", "ciliumnodeconfigs", "CiliumNodeConfig", builtin=False),
    ResourceType("cilium.io", "v2alpha1", "ciliumnodeconfigs", "CiliumNodeConfig", builtin=False),
)

_BODY = web.RequestKey("parsed_body", object)

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")



class ApiError(Exception):
    """An error answer, rendered as a Kubernetes ``Status``."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        body = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class _PageNotFound(Exception):
    """Unknown group/version: the real server answers in plain text."""


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    content_type: str
    headers: dict[str, str]


@dataclass(slots=True)
class _Fault:
    verb: str
    plural: str
    namespace: str | None
    status: int
    remaining: int
    message: str


class Hold:
    """Parks matching requests until released (see ``FakeKube.hold``)."""

    def __init__(self, verb: str, plural: str, namespace: str | None,
                 token: str | None = None) -> None:
        self.verb, self.plural, self.namespace = verb, plural, namespace
        self.token = token
        self._released = threading.Event()
        self._cond = threading.Condition()
        self.arrived = 0

    def matches(self, verb: str, plural: str, namespace: str | None, token: str = "") -> bool:
        return (not self._released.is_set() and self.verb in (verb, "*")
                and self.plural in (plural, "*") and self.namespace in (None, namespace)
                and self.token in (None, token))

    def wait_arrived(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests are parked here."""
        with self._cond:
            return self._cond.wait_for(lambda: self.arrived >= count, timeout)

    def release(self) -> None:
        self._released.set()

    def _park(self, timeout: float) -> None:
        with self._cond:
            self.arrived += 1
            self._cond.notify_all()
        self._released.wait(timeout)


@dataclass(slots=True, eq=False)
class _Watcher:
    rtype: ResourceType
    namespace: str | None
    labels: list
    fields: list
    queue: asyncio.Queue
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class _Change:
    rv: int
    rtype: ResourceType
    namespace: str
    old: dict | None
    new: dict | None  # None for deletions; the deleted object is ``final``
    final: dict | None = None


@dataclass(slots=True)
class _Route:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


@dataclass
class FakeKube:
    """The in-memory API server and its aiohttp app; see the module docstring."""

    user: str = "system:serviceaccount:kube-system:kpr-exporter"
    history_limit: int = 10_000
    types: list[ResourceType] = field(default_factory=lambda: list(DEFAULT_TYPES))

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._objects: dict[tuple[str, str, str, str, str], dict] = {}
        self._rv = 0
        self._floor = 0  # watches from below this resourceVersion get 410 Expired
        self._history: deque[_Change] = deque()
        self._watchers: list[_Watcher] = []
        self._denied: list[tuple[str, str, str | None]] = []
        self._faults: list[_Fault] = []
        self._holds: list[Hold] = []
        self._requests: list[LoggedRequest] = []
        self._unserved: set[tuple[str, str]] = set()
        self._names = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.url = ""
        self.kubeconfig = ""  # set by the pytest fixture

    # --- lifecycle ----------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> str:
        """Serve in a background thread; returns the base URL once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(host, port, ready))
            except BaseException as exc:  # surfaced to start()
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-kube-api", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            raise RuntimeError(f"fake Kubernetes API did not start: {failure!r}")
        return self.url

    async def _serve(self, host: str, port: int, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        # handler_cancellation: a client hanging up ends its watch handler at once.
        self._runner = web.AppRunner(self.app(), handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"
        ready.set()
        await self._stopping.wait()
        with self._lock:
            self._end_watches()
        await self._runner.cleanup()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
        self._thread = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # --- test controls (thread-safe) ---------------------------------------------------

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer 403 to ``verb`` on ``resource`` (plural, e.g. ``configmaps`` or
        ``pods/status``) in ``namespace`` (None: everywhere)."""
        if verb not in VERBS and verb != "*":
            raise ValueError(f"unknown verb {verb!r}")
        with self._lock:
            self._denied.append((verb, resource, namespace))

    def allow_all(self) -> None:
        """Clear the deny list."""
        with self._lock:
            self._denied.clear()

    def fail(self, verb: str, resource: str, *, status: int = 500, times: int = 1,
             namespace: str | None = None, message: str = "injected fault") -> None:
        """Answer the next ``times`` matching requests with ``status`` (a Status body)."""
        with self._lock:
            self._faults.append(_Fault(verb, resource, namespace, status, times, message))

    def hold(self, verb: str, resource: str, namespace: str | None = None, *,
             token: str | None = None) -> Hold:
        """Park matching requests (after authorization, before they act) until
        ``release()``: lets a test change the store while a request is in flight.
        ``"*"`` matches every verb or resource; ``token`` limits the hold to the client
        presenting that bearer token (one stalled or partitioned client among several)."""
        hold = Hold(verb, resource, namespace, token)
        with self._lock:
            self._holds.append(hold)
        return hold

    def budget(self, name: str, namespace: str, match_labels: dict[str, str], *,
               allowed: int, healthy: int = 1) -> dict:
        """Seed a PodDisruptionBudget over the pods carrying ``match_labels`` whose status
        (what the disruption controller computes) allows ``allowed`` more disruptions now."""
        return self.seed({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": dict(match_labels)}, "minAvailable": healthy},
            "status": {"disruptionsAllowed": allowed, "desiredHealthy": healthy,
                       "currentHealthy": healthy + max(allowed, 0), "expectedPods": healthy + 1},
        })

    def unserve(self, group: str, version: str) -> None:
        """Stop serving a group/version (as if its CRD version were not installed)."""
        with self._lock:
            self._unserved.add((group, version))

    def serve_again(self, group: str, version: str) -> None:
        with self._lock:
            self._unserved.discard((group, version))

    def compact(self) -> int:
        """Forget the event history: watches from any older resourceVersion get 410."""
        with self._lock:
            self._history.clear()
            self._floor = self._rv
            return self._rv

    def drop_watches(self) -> None:
        """End every open watch stream (clients must re-watch)."""
        with self._lock:
            self._end_watches()

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    @property
    def open_watches(self) -> int:
        with self._lock:
            return len(self._watchers)

    # request log

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` holds (re-checked after every request and write)."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_request(self, match: Callable[[LoggedRequest], bool],
                         timeout: float = 5.0) -> LoggedRequest | None:
        """The first logged request matching ``match``, waiting up to ``timeout``."""
        found: list[LoggedRequest] = []

        def seen() -> bool:
            for req in self._requests:
                if match(req):
                    found.append(req)
                    return True
            return False

        with self._cond:
            self._cond.wait_for(seen, timeout)
        return found[0] if found else None

    # direct object access (no HTTP, no deny list, no log)

    def seed(self, obj: dict) -> dict:
        """Store ``obj`` as-is (create or overwrite) and notify watchers; returns the copy."""
        rtype = self._type_for(obj)
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace", "") if rtype.namespaced else ""
        if rtype.namespaced and not ns:
            raise ValueError(f"{rtype.kind} needs metadata.namespace")
        with self._lock:
            old = self._objects.get(self._key(rtype, ns, meta.get("name", "")))
            stored = self._prepare_new(rtype, ns, copy.deepcopy(obj), old)
            return copy.deepcopy(self._write(rtype, ns, old, stored))

    def get(self, resource: str, name: str, namespace: str = "", *,
            api_version: str | None = None) -> dict | None:
        """A copy of the stored object, or None."""
        rtype = self._type_by_plural(resource, api_version)
        with self._lock:
            obj = self._objects.get(self._key(rtype, namespace if rtype.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, resource: str, namespace: str | None = None, *,
                api_version: str | None = None) -> list[dict]:
        """Copies of every stored object of ``resource`` (in ``namespace`` if given)."""
        rtype = self._type_by_plural(resource, api_version)
        with self._lock:
            return [copy.deepcopy(o) for o in self._iter(rtype, namespace)]

    def remove(self, resource: str, name: str, namespace: str = "", *,
               api_version: str | None = None) -> bool:
        """Delete directly (watchers see DELETED); False when absent."""
        rtype = self._type_by_plural(resource, api_version)
        ns = namespace if rtype.namespaced else ""
        with self._lock:
            old = self._objects.get(self._key(rtype, ns, name))
            if old is None:
                return False
            self._delete(rtype, ns, old)
            return True

    # --- internals: store ---------------------------------------------------------

    @staticmethod
    def _key(rtype: ResourceType, ns: str, name: str) -> tuple[str, str, str, str, str]:
        return (rtype.group, rtype.version, rtype.plural, ns, name)

    def _type_for(self, obj: dict) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        for rtype in self.types:
            if rtype.api_version == api_version and rtype.kind == kind:
                return rtype
        raise ValueError(f"the fake does not serve {api_version} {kind}")

    def _type_by_plural(self, plural: str, api_version: str | None) -> ResourceType:
        for rtype in self.types:
            if rtype.plural == plural and (api_version is None or rtype.api_version == api_version):
                return rtype
        raise ValueError(f"the fake does not serve {plural!r} ({api_version or 'any version'})")

    def _iter(self, rtype: ResourceType, namespace: str | None) -> Iterator[dict]:
        for (g, v, p, ns, _), obj in sorted(self._objects.items()):
            if (g, v, p) == (rtype.group, rtype.version, rtype.plural) and (
                namespace is None or ns == namespace
            ):
                yield obj

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _prepare_new(self, rtype: ResourceType, ns: str, obj: dict, old: dict | None) -> dict:
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(422, "Invalid", f"{rtype.kind}.{rtype.group or 'core'} "
                               f"is invalid: metadata.name: Required value: name or "
                               f"generateName is required")
            meta["name"] = f"{prefix}{next(self._names):05d}"
        if old is not None:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            generation = old["metadata"].get("generation", 1)
            if obj.get("spec") != old.get("spec"):
                generation += 1
            meta["generation"] = generation
        else:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            meta["generation"] = 1
        return obj

    def _write(self, rtype: ResourceType, ns: str, old: dict | None, new: dict) -> dict:
        """Store ``new`` with the next resourceVersion; caller holds the lock."""
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[self._key(rtype, ns, new["metadata"]["name"])] = new
        self._record(_Change(self._rv, rtype, ns, old, new))
        return new

    def _delete(self, rtype: ResourceType, ns: str, old: dict) -> dict:
        final = copy.deepcopy(old)
        final["metadata"]["resourceVersion"] = self._next_rv()
        del self._objects[self._key(rtype, ns, old["metadata"]["name"])]
        self._record(_Change(self._rv, rtype, ns, old, None, final))
        return final

    def _record(self, change: _Change) -> None:
        self._history.append(change)
        while len(self._history) > self.history_limit:
            self._floor = self._history.popleft().rv
        for watcher in self._watchers:
            event = _event_for(watcher.rtype, watcher.namespace, watcher.labels,
                               watcher.fields, change)
            if event is not None:
                watcher.loop.call_soon_threadsafe(watcher.queue.put_nowait, event)
        self._cond.notify_all()

    def _end_watches(self) -> None:
        for watcher in self._watchers:
            watcher.loop.call_soon_threadsafe(watcher.queue.put_nowait, None)
        self._watchers.clear()

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
        request[_BODY] = body
        try:
            return await handler(request)
        except ApiError as err:
            return web.json_response(err.status(), status=err.code)
        except _PageNotFound:
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
            group = self._group(parts[1])
            if group is None:
                raise _PageNotFound()
            return web.json_response(group)
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _PageNotFound()
        with self._lock:
            served = [t for t in self.types if (t.group, t.version) == (group, version)
                      and (group, version) not in self._unserved]
        if not served:
            raise _PageNotFound()
        if not rest:
            return web.json_response(self._resource_list(group, version, served))
        route = _route(served, rest)
        if route is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self._handle(request, route)

    async def _handle(self, request: web.Request, route: _Route) -> web.StreamResponse:
        method, query = request.method, request.query
        if route.subresource == "eviction":
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            self._authorize("create", route)
            await self._wait_holds("create", route, _bearer(request))
            return web.json_response(self._evict(route, request[_BODY]), status=201)
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
                           f"the server does not allow this method on the requested resource")
        self._authorize(verb, route)
        await self._wait_holds(verb, route, _bearer(request))
        body = request[_BODY]
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

    def _authorize(self, verb: str, route: _Route) -> None:
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

    async def _wait_holds(self, verb: str, route: _Route, token: str) -> None:
        resource = route.rtype.plural + (f"/{route.subresource}" if route.subresource else "")
        with self._lock:
            holds = [h for h in self._holds if h.matches(verb, resource, route.namespace, token)]
        for hold in holds:
            await asyncio.to_thread(hold._park, 30.0)

    def _get_or_404(self, route: _Route) -> dict:
        ns = route.namespace or ""
        with self._lock:
            obj = self._objects.get(self._key(route.rtype, ns, route.name or ""))
            if obj is None:
                raise _not_found(route.rtype, route.name or "")
            return copy.deepcopy(obj)

    def _list(self, route: _Route, query: Any) -> dict:
        labels = _selector(parse_label_selector, query.get("labelSelector", ""))
        fields = _selector(parse_field_selector, query.get("fieldSelector", ""),
                           route.rtype.plural)
        with self._lock:
            items = [copy.deepcopy(o) for o in self._iter(route.rtype, route.namespace)
                     if matches(o, labels, fields)]
            rv = str(self._rv)
        return {"kind": f"{route.rtype.kind}List", "apiVersion": route.rtype.api_version,
                "metadata": {"resourceVersion": rv}, "items": items}

    def _create(self, route: _Route, body: Any) -> dict:
        rtype = route.rtype
        obj = _object_body(body)
        ns = route.namespace or ""
        body_ns = (obj.get("metadata") or {}).get("namespace")
        if rtype.namespaced and body_ns and body_ns != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        _check_type(rtype, obj)
        with self._lock:
            name = (obj.get("metadata") or {}).get("name", "")
            if name and self._key(rtype, ns, name) in self._objects:
                raise ApiError(409, "AlreadyExists",
                               f'{_qualified(rtype)} "{name}" already exists',
                               {"name": name, "group": rtype.group, "kind": rtype.plural})
            obj.setdefault("metadata", {}).pop("resourceVersion", None)
            stored = self._prepare_new(rtype, ns, obj, None)
            if self._key(rtype, ns, stored["metadata"]["name"]) in self._objects:
                raise ApiError(409, "AlreadyExists", f'{_qualified(rtype)} '
                               f'"{stored["metadata"]["name"]}" already exists')
            return copy.deepcopy(self._write(rtype, ns, None, stored))

    def _update(self, route: _Route, body: Any) -> dict:
        obj = _object_body(body)
        _check_type(route.rtype, obj)
        meta = obj.get("metadata") or {}
        if meta.get("name") != route.name:
            raise ApiError(400, "BadRequest", "the name of the object "
                           f"({meta.get('name')}) does not match the name on the URL "
                           f"({route.name})")
        return self._replace(route, obj, meta.get("resourceVersion"))

    def _replace(self, route: _Route, obj: dict, precondition: str | None) -> dict:
        rtype, ns, name = route.rtype, route.namespace or "", route.name or ""
        with self._lock:
            old = self._objects.get(self._key(rtype, ns, name))
            if old is None:
                raise _not_found(rtype, name)
            if precondition and precondition != old["metadata"]["resourceVersion"]:
                raise _conflict(rtype, name)
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

    def _patch(self, route: _Route, body: Any, content_type: str) -> dict:
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
                raise _not_found(rtype, name)
            current = copy.deepcopy(old)
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            merge = strategic_merge if media.startswith("application/strategic") else \
                merge_patch
            patched = _apply(merge, current, body)
            if not isinstance(patched, dict):
                raise ApiError(422, "Invalid", "the patch did not produce an object")
            precondition = (patched.get("metadata") or {}).get("resourceVersion")
            if precondition != old["metadata"]["resourceVersion"]:
                if precondition is not None:
                    raise _conflict(rtype, name)
            if (patched.get("metadata") or {}).get("name") != name:
                raise ApiError(422, "Invalid", "metadata.name: the name is immutable")
            _check_type(rtype, patched)
            return self._replace(route, patched, None)

    def _delete_request(self, route: _Route, body: Any) -> dict:
        rtype, ns, name = route.rtype, route.namespace or "", route.name or ""
        preconditions = (body or {}).get("preconditions") if isinstance(body, dict) else None
        with self._lock:
            old = self._objects.get(self._key(rtype, ns, name))
            if old is None:
                raise _not_found(rtype, name)
            if preconditions:
                want_rv = preconditions.get("resourceVersion")
                want_uid = preconditions.get("uid")
                if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                    raise _conflict(rtype, name)
                if want_uid and want_uid != old["metadata"]["uid"]:
                    raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: "
                                   f"{want_uid}, UID in object meta: {old['metadata']['uid']}")
            final = self._delete(rtype, ns, old)
        if rtype.plural == "pods":
            return copy.deepcopy(final)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": rtype.group, "kind": rtype.plural,
                            "uid": final["metadata"]["uid"]}}

    def _evict(self, route: _Route, body: Any) -> dict:
        """``POST pods/{name}/eviction``: delete the pod unless its budget forbids."""
        eviction = _object_body(body)
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
                raise _not_found(pods, name)
            if preconditions.get("uid") and preconditions["uid"] != pod["metadata"]["uid"]:
                raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: "
                               f"{preconditions['uid']}, UID in object meta: {pod['metadata']['uid']}")
            if budgets is not None and (pod.get("status") or {}).get("phase") not in (
                    "Succeeded", "Failed", "Pending"):
                covering = [b for b in self._iter(budgets, ns)
                            if _selects((b.get("spec") or {}).get("selector"), pod)]
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
        spent["status"].setdefault("disruptedPods", {})[pod] = _now()
        self._write(rtype, ns, budget, self._prepare_new(rtype, ns, spent, budget))

    async def _watch(self, request: web.Request, route: _Route) -> web.StreamResponse:
        query = request.query
        labels = _selector(parse_label_selector, query.get("labelSelector", ""))
        fields = _selector(parse_field_selector, query.get("fieldSelector", ""),
                           route.rtype.plural)
        timeout = float(query.get("timeoutSeconds", "0") or 0)
        since = query.get("resourceVersion", "")
        queue: asyncio.Queue = asyncio.Queue()
        watcher = _Watcher(route.rtype, route.namespace, labels, fields, queue,
                           asyncio.get_running_loop())
        initial: list[dict] = []
        with self._lock:
            if since in ("", "0"):
                initial = [{"type": "ADDED", "object": copy.deepcopy(o)}
                           for o in self._iter(route.rtype, route.namespace)
                           if matches(o, labels, fields)]
            else:
                if not since.isdigit():
                    raise ApiError(400, "BadRequest", f"invalid resource version {since!r}")
                start = int(since)
                if start < self._floor:
                    initial = [{"type": "ERROR", "object": ApiError(
                        410, "Expired",
                        f"too old resource version: {start} ({self._floor})").status()}]
                    watcher = None  # type: ignore[assignment]
                else:
                    for change in self._history:
                        if change.rv > start:
                            event = _event_for(route.rtype, route.namespace, labels, fields,
                                               change)
                            if event is not None:
                                initial.append(event)
            if watcher is not None:
                self._watchers.append(watcher)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for event in initial:
                await response.write(_line(event))
            if watcher is None:
                return response
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout > 0 else None
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                await response.write(_line(event))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)
                self._cond.notify_all()
        return response

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


def _route(served: list[ResourceType], rest: list[str]) -> _Route | None:
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
    return _Route(rtype, namespace, name, sub)


def _event_for(rtype: ResourceType, namespace: str | None, labels: list, fields: list,
               change: _Change) -> dict | None:
    """The event a watch on (rtype, namespace, selectors) sees for ``change``, if any."""
    if change.rtype != rtype or (namespace is not None and change.namespace != namespace):
        return None
    was = change.old is not None and matches(change.old, labels, fields)
    if change.new is None:
        return {"type": "DELETED", "object": copy.deepcopy(change.final)} if was else None
    now = matches(change.new, labels, fields)
    if now:
        return {"type": "MODIFIED" if was else "ADDED", "object": copy.deepcopy(change.new)}
    if was:  # left the selection: watchers see it go away
        return {"type": "DELETED", "object": copy.deepcopy(change.new)}
    return None


# --- small helpers ---------------------------------------------------------------------


_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def _selects(selector: Any, obj: dict) -> bool:
    """A LabelSelector object (a budget's ``spec.selector``) over ``obj``'s labels: nil
    selects nothing, ``{}`` everything (policy/v1)."""
    if not isinstance(selector, dict):
        return False
    reqs = [("=", k, frozenset({v})) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or ():
        reqs.append((_OPERATORS[expr["operator"]], expr["key"], frozenset(expr.get("values") or ())))
    return matches(obj, reqs, [])


def _selector(parse: Callable, *args: Any) -> list:
    try:
        return parse(*args)
    except SelectorError as err:
        raise ApiError(400, "BadRequest", str(err)) from None


def _apply(patcher: Callable, current: dict, body: Any) -> Any:
    try:
        return patcher(current, body)
    except UnsupportedPatch as err:
        raise ApiError(415, "UnsupportedMediaType", str(err)) from None


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(event: dict) -> bytes:
    return (json.dumps(event, separators=(",", ":")) + "\n").encode()


def _qualified(rtype: ResourceType) -> str:
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


def _not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(rtype)} "{name}" not found',
                    {"name": name, "group": rtype.group, "kind": rtype.plural})


def _conflict(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {_qualified(rtype)} '
                    f'"{name}": the object has been modified; please apply your changes to '
                    f'the latest version and try again',
                    {"name": name, "group": rtype.group, "kind": rtype.plural})


def _object_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON object")
    return copy.deepcopy(body)


def _check_type(rtype: ResourceType, obj: dict) -> None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version not in (None, rtype.api_version) or kind not in (None, rtype.kind):
        raise ApiError(400, "BadRequest", f"the API version in the data ({api_version}) and "
                       f"kind ({kind}) do not match {rtype.api_version} {rtype.kind}")

