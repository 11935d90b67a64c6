"""What the simulated API serves and answers: resource types, errors, the request log,
holds, and the small records the store, watches and routes share."""

from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import json
import threading
from dataclasses import dataclass
from typing import Any

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


class PageNotFound(Exception):
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
class Fault:
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
class Watcher:
    rtype: ResourceType
    namespace: str | None
    labels: list
    fields: list
    queue: asyncio.Queue
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class Change:
    rv: int
    rtype: ResourceType
    namespace: str
    old: dict | None
    new: dict | None  # None for deletions; the deleted object is ``final``
    final: dict | None = None


@dataclass(slots=True)
class Route:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def now_stamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_line(event: dict) -> bytes:
    return (json.dumps(event, separators=(",", ":")) + "\n").encode()


def qualified(rtype: ResourceType) -> str:
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(rtype)} "{name}" not found',
                    {"name": name, "group": rtype.group, "kind": rtype.plural})


def conflict(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(rtype)} '
                    f'"{name}": the object has been modified; please apply your changes to '
                    f'the latest version and try again',
                    {"name": name, "group": rtype.group, "kind": rtype.plural})


def object_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON object")
    return copy.deepcopy(body)


def check_type(rtype: ResourceType, obj: dict) -> None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version not in (None, rtype.api_version) or kind not in (None, rtype.kind):
        raise ApiError(400, "BadRequest", f"the API version in the data ({api_version}) and "
                       f"kind ({kind}) do not match {rtype.api_version} {rtype.kind}")

