"""The vocabulary of a Kubernetes API request: patch content types, the field manager,
watch event types, the list and watch answers, the retry backoff, and how a request's
failure is worded as a :class:`~exporter.kube.errors.KubeError`.

No I/O here: :mod:`exporter.kube.client` sends the requests, :mod:`exporter.kube.watch_stream`
reads the watches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import urllib3
from kubernetes.client.exceptions import OpenApiException

from exporter.kube.errors import KubeError, Unavailable, error_for_status
from exporter.kube.resources import Resource

#: The patch types this product sends; every ``KubeClient.patch`` names one. JSON merge
#: patch (RFC 7386) for everything the product changes, strategic merge where a built-in
#: kind's lists must merge by key (today only the backup's ConfigMap, whose data is a map).
STRATEGIC_MERGE: Final = "application/strategic-merge-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
PATCH_TYPES: Final = (STRATEGIC_MERGE, MERGE_PATCH)
#: The field manager of every write, so the fields this product set can be told apart in
#: ``managedFields`` (and handed back after a change is persisted through the owner).
FIELD_MANAGER: Final = "kpr-exporter"
MANAGED: Final = (("fieldManager", FIELD_MANAGER),)

# Watch event types; SYNC is ours: a complete listing that replaces what came before.
ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
SYNC: Final = "SYNC"

#: What the ``kubernetes``/``urllib3`` stack raises for a failed transport.
LIBRARY_ERRORS = (urllib3.exceptions.HTTPError, OSError, OpenApiException, ValueError)


@dataclass(frozen=True, slots=True)
class ObjectList:
    """A list answer: the objects and the resourceVersion to watch from."""

    items: list[dict]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """``ADDED``/``MODIFIED``/``DELETED`` with ``object``, or ``SYNC`` with ``objects``
    (every current object: replace local state, things not in it are gone)."""

    type: str
    object: dict | None = None
    objects: tuple[dict, ...] = ()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: ``minimum`` doubling up to ``maximum`` seconds."""

    minimum: float = 1.0
    maximum: float = 30.0

    def delays(self) -> Callable[[], float]:
        state = {"next": self.minimum}

        def step() -> float:
            delay = state["next"]
            state["next"] = min(self.maximum, delay * 2)
            return delay

        return step


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a request asked for, to word its errors."""

    verb: str
    resource: Resource
    namespace: str
    name: str

    def describe(self) -> str:
        what = self.resource.qualified + (f' "{self.name}"' if self.name else "")
        return what + (f" in namespace {self.namespace}" if self.namespace else "")

    def error(self, status: int, data: bytes | str | None) -> KubeError:
        reason, message = status_fields(data)
        return error_for_status(status, verb=self.verb, resource=self.resource.qualified,
                                namespace=self.namespace, name=self.name, reason=reason,
                                server_message=message)

    def unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(f"{self.verb} {self.describe()}: API unreachable: "
                           f"{type(exc).__name__}: {exc}", verb=self.verb,
                           resource=self.resource.qualified, namespace=self.namespace,
                           name=self.name)


def selectors(label_selector: str, field_selector: str) -> list[tuple[str, str]]:
    """The query parameters of a label and a field selector (empty ones left out)."""
    query = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


def with_type(resource: Resource, body: Mapping[str, Any]) -> dict:
    """``body`` with ``apiVersion`` and ``kind`` filled in from ``resource``."""
    typed = dict(body)
    typed.setdefault("apiVersion", resource.api_version)
    typed.setdefault("kind", resource.kind)
    return typed


def resource_version(obj: Any) -> str:
    """``metadata.resourceVersion`` of an object ("" when absent)."""
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return ""


def status_fields(data: bytes | str | None) -> tuple[str, str]:
    """(reason, message) of a Status body; plain-text bodies become the message."""
    if not data:
        return "", ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    try:
        status = json.loads(text)
    except ValueError:
        return "", text.strip()[:500]
    if not isinstance(status, dict):
        return "", text.strip()[:500]
    return str(status.get("reason") or ""), str(status.get("message") or "")
