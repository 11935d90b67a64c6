"""The migration's spec, status and requests in one ConfigMap of the exporter's namespace.

ConfigMap ``<rollback.namespace>/<migrate.state_configmap>``, data keys:

* ``spec.json`` — what ``migrate start`` asked for (``MigrationSpec``);
* ``status.json`` — where it stands (``MigrationStatus``), written only by the controller
  that holds the Lease, after every step;
* ``request.json`` — what a person asked since (pause, resume, promote, abort), written by
  the ``migrate`` commands and read by the controller at every step.

Every write is a compare-and-swap on ``resourceVersion`` (as the rollback's state store).
When the controller's save conflicts, it reads again: if only the requests changed, it
writes again on the new version; if the status changed, another writer took over and
``StoreConflict`` stops this one without overwriting it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from exporter.kube.client import KubeClient
from exporter.kube.errors import Conflict, NotFound
from exporter.kube.resources import CONFIGMAPS
from exporter.migrate.model import MigrationSpec, MigrationStatus

SPEC_KEY: Final = "spec.json"
STATUS_KEY: Final = "status.json"
REQUEST_KEY: Final = "request.json"
_ATTEMPTS: Final = 5


class StoreError(Exception):
    """The stored migration is unreadable."""


class StoreConflict(Exception):
    """Another writer changed the status since this one read it: stop, overwrite nothing."""


@dataclass(frozen=True)
class Request:
    """What people asked for since the migration started."""

    paused: bool = False
    abort: str = ""  # non-empty: abort, with this reason
    promote: int = 0  # bumped by each ``migrate promote``; the controller remembers the last
    resume: int = 0  # bumped by each ``migrate resume`` (also clears a pause the gates made)
    by: str = ""
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"paused": self.paused, "abort": self.abort, "promote": self.promote,
                "resume": self.resume, "by": self.by, "at": self.at}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Request:
        return cls(bool(doc.get("paused", False)), str(doc.get("abort", "")),
                   int(doc.get("promote", 0)), int(doc.get("resume", 0)), str(doc.get("by", "")),
                   float(doc.get("at", 0.0)))


@dataclass(frozen=True)
class Stored:
    spec: MigrationSpec
    status: MigrationStatus
    request: Request


class MigrationStore:
    """Loads and saves the migration ConfigMap (compare-and-swap)."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self._kube, self._namespace, self._name = kube, namespace, name
        self.location = f"ConfigMap {namespace}/{name}"
        self._seen: dict[str, Any] | None = None

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self._kube.get(CONFIGMAPS, self._name, self._namespace)
        except NotFound:
            return None

    async def load(self) -> Stored | None:
        """The stored migration (None: none recorded); later saves are conditional on it."""
        self._seen = await self._read()
        return self._decode(self._seen)

    def _decode(self, cm: dict[str, Any] | None) -> Stored | None:
        data = (cm or {}).get("data") or {}
        if SPEC_KEY not in data:
            return None
        try:
            spec = MigrationSpec.from_dict(json.loads(data[SPEC_KEY]))
            status = MigrationStatus.from_dict(json.loads(data.get(STATUS_KEY) or "{}"))
            request = Request.from_dict(json.loads(data.get(REQUEST_KEY) or "{}"))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.location} is unreadable: {exc}") from exc
        return Stored(spec, status, request)

    async def create(self, spec: MigrationSpec, status: MigrationStatus) -> None:
        """Record a new migration; ``StoreConflict`` when one is recorded and not finished."""
        current = await self.load()
        if current is not None and not current.status.finished:
            raise StoreConflict(f"migration {current.spec.id} is recorded in {self.location} "
                                f"and not finished (step {current.status.step}); abort it first")
        data = {SPEC_KEY: _dump(spec.to_dict()), STATUS_KEY: _dump(status.to_dict()),
                REQUEST_KEY: _dump(Request().to_dict())}
        await self._write(data)

    async def save_status(self, status: MigrationStatus) -> None:
        """Write ``status``; retried over request changes, ``StoreConflict`` over status ones."""
        mine = (self._seen or {}).get("data", {}).get(STATUS_KEY)
        for _ in range(_ATTEMPTS):
            data = dict((self._seen or {}).get("data") or {})
            data[STATUS_KEY] = _dump(status.to_dict())
            try:
                await self._write(data)
                return
            except Conflict:
                fresh = await self._read()
                if fresh is None or (fresh.get("data") or {}).get(STATUS_KEY) != mine:
                    raise StoreConflict(f"{self.location}: the status was changed by another "
                                        "writer; stopped without overwriting it") from None
                self._seen = fresh
        raise StoreConflict(f"{self.location} keeps changing; stopped")

    async def request(self) -> Request:
        """The requests as stored now (a read only)."""
        stored = self._decode(await self._read())
        return stored.request if stored else Request()

    async def update_request(self, change: Callable[[Request], Request]) -> Stored:
        """Read, change the request, write (compare-and-swap, retried); the new state."""
        for _ in range(_ATTEMPTS):
            stored = await self.load()
            if stored is None:
                raise StoreError(f"no migration recorded in {self.location}")
            data = dict(self._seen["data"])  # type: ignore[index]
            request = change(stored.request)
            data[REQUEST_KEY] = _dump(request.to_dict())
            try:
                await self._write(data)
                return Stored(stored.spec, stored.status, request)
            except Conflict:
                continue
        raise StoreConflict(f"{self.location} keeps changing; try again")

    async def _write(self, data: dict[str, str]) -> None:
        if self._seen is None:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": self._name, "namespace": self._namespace,
                                 "labels": {"app.kubernetes.io/name": "kpr-exporter",
                                            "app.kubernetes.io/component": "migration"}},
                    "data": data}
            try:
                self._seen = await self._kube.create(CONFIGMAPS, body, self._namespace)
            except Conflict as exc:
                if not exc.already_exists:
                    raise
                self._seen = await self._read()
                raise
            return
        body = copy.deepcopy(self._seen)
        body["data"] = data  # keeps resourceVersion: compare-and-swap
        try:
            self._seen = await self._kube.replace(CONFIGMAPS, body, self._namespace)
        except NotFound as exc:
            raise Conflict(f"{self.location} was deleted meanwhile", status=409) from exc


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True)
