"""The simulated API's store: objects, the resourceVersion counter, the event history and
the watchers it feeds, the request log, and direct (no HTTP) access for seeding."""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator

from exporter.simulator.kubeapi.kinds import (
    ApiError, Change, Fault, Hold, LoggedRequest, ResourceType, Watcher, now_stamp,
)
from exporter.simulator.kubeapi.selectors import matches


class Store:
    """State and direct access of ``FakeKube`` (the server composes it)."""

    user: str
    history_limit: int
    types: list[ResourceType]

    def _init_store(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._objects: dict[tuple[str, str, str, str, str], dict] = {}
        self._rv = 0
        self._floor = 0  # watches from below this resourceVersion get 410 Expired
        self._history: deque[Change] = deque()
        self._watchers: list[Watcher] = []
        self._denied: list[tuple[str, str, str | None]] = []
        self._faults: list[Fault] = []
        self._holds: list[Hold] = []
        self._requests: list[LoggedRequest] = []
        self._unserved: set[tuple[str, str]] = set()
        self._names = itertools.count(1)

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
            meta.setdefault("creationTimestamp", now_stamp())
            meta["generation"] = 1
        return obj

    def _write(self, rtype: ResourceType, ns: str, old: dict | None, new: dict) -> dict:
        """Store ``new`` with the next resourceVersion; caller holds the lock."""
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[self._key(rtype, ns, new["metadata"]["name"])] = new
        self._record(Change(self._rv, rtype, ns, old, new))
        return new

    def _delete(self, rtype: ResourceType, ns: str, old: dict) -> dict:
        final = copy.deepcopy(old)
        final["metadata"]["resourceVersion"] = self._next_rv()
        del self._objects[self._key(rtype, ns, old["metadata"]["name"])]
        self._record(Change(self._rv, rtype, ns, old, None, final))
        return final

    def _record(self, change: Change) -> None:
        self._history.append(change)
        while len(self._history) > self.history_limit:
            self._floor = self._history.popleft().rv
        for watcher in self._watchers:
            event = event_for(watcher.rtype, watcher.namespace, watcher.labels,
                               watcher.fields, change)
            if event is not None:
                watcher.loop.call_soon_threadsafe(watcher.queue.put_nowait, event)
        self._cond.notify_all()

    def _end_watches(self) -> None:
        for watcher in self._watchers:
            watcher.loop.call_soon_threadsafe(watcher.queue.put_nowait, None)
        self._watchers.clear()



def event_for(rtype: ResourceType, namespace: str | None, labels: list, fields: list,
               change: Change) -> dict | None:
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

