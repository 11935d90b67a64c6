"""Errors of the Kubernetes access layer.

Every failure of ``exporter.kube`` surfaces as a ``KubeError``; the ``kubernetes`` and
``urllib3`` exceptions behind it are kept as ``__cause__`` and never escape. Each error
carries what was asked (verb, resource, namespace, name) and what the server said.
"""

from __future__ import annotations


class KubeError(Exception):
    """A Kubernetes API request failed."""

    def __init__(self, message: str, *, verb: str = "", resource: str = "", namespace: str = "",
                 name: str = "", status: int = 0, reason: str = "",
                 server_message: str = "") -> None:
        super().__init__(message)
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.status = status
        self.reason = reason
        self.server_message = server_message

    @property
    def target(self) -> str:
        """``configmaps "cilium-config" in namespace kube-system``-style description."""
        what = self.resource + (f' "{self.name}"' if self.name else "")
        return what + (f" in namespace {self.namespace}" if self.namespace else "")


class NotFound(KubeError):
    """404: the object, or the resource type (CRD version not served), does not exist."""


class Conflict(KubeError):
    """409: stale resourceVersion on a write, or the object already exists (``reason``
    tells which: ``Conflict`` or ``AlreadyExists``)."""

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


class Forbidden(KubeError):
    """403 (RBAC) or 401: the credentials may not do ``verb`` on ``resource``."""


class Gone(KubeError):
    """410: the resourceVersion a watch asked for is too old; relist."""


class Invalid(KubeError):
    """400, 415 or 422: the request itself is wrong (bad selector, patch or object)."""


class Unavailable(KubeError):
    """The API could not be reached or answered 429/5xx: worth retrying later."""


class EvictionRefused(Unavailable):
    """429 on an eviction: a PodDisruptionBudget allows no disruption of the pod now;
    worth retrying once the budget's controller counts the evicted pods back."""


class KubeConfigError(KubeError):
    """No usable kubeconfig or in-cluster service account."""


def error_for_status(status: int, *, verb: str, resource: str, namespace: str = "",
                     name: str = "", reason: str = "", server_message: str = "") -> KubeError:
    """The ``KubeError`` subclass for an HTTP status, with a readable message."""
    kind: type[KubeError]
    if status == 404:
        kind, what = NotFound, "not found"
    elif status == 409:
        kind, what = Conflict, "already exists" if reason == "AlreadyExists" else "conflict"
    elif status in (401, 403):
        kind, what = Forbidden, "forbidden"
    elif status == 410:
        kind, what = Gone, "gone (resourceVersion too old)"
    elif status in (400, 415, 422):
        kind, what = Invalid, "invalid request"
    elif status == 429 or status >= 500:
        kind, what = Unavailable, "unavailable"
    else:
        kind, what = KubeError, f"unexpected status {status}"
    error = kind("", verb=verb, resource=resource, namespace=namespace, name=name,
                 status=status, reason=reason, server_message=server_message)
    detail = f": {server_message}" if server_message else ""
    if kind is Forbidden:
        message = f"{what}: not allowed to {verb} {error.target} (HTTP {status}){detail}"
    else:
        message = f"{verb} {error.target}: {what} (HTTP {status}){detail}"
    error.args = (message,)
    return error
