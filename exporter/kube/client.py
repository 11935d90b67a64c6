"""A thin asynchronous wrapper around the official ``kubernetes`` client.

Objects are plain JSON dicts, requests go through ``ApiClient``'s REST layer (one
generic code path for built-in kinds and CiliumNodeConfigs alike), blocking calls run
in worker threads so the event loop never waits on the network, and every failure is
a :class:`~exporter.kube.errors.KubeError`.

Watches list first, then follow the watch stream from the list's resourceVersion; they
relist on 410 Gone and every ``resync_seconds``, and retry an unavailable API with a
bounded backoff. Each watch stream reads in its own daemon thread (not the default
executor, which long-lived streams would starve).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException, OpenApiException
from kubernetes.config.config_exception import ConfigException

from exporter.kube.errors import (
    Gone,
    KubeConfigError,
    KubeError,
    Unavailable,
    error_for_status,
)
from exporter.kube.resources import Resource
from exporter.kube.settings import KubeSettings

log = logging.getLogger(__name__)

STRATEGIC_MERGE: Final = "application/strategic-merge-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
PATCH_TYPES: Final = (STRATEGIC_MERGE, MERGE_PATCH, JSON_PATCH)
#: The field manager of every write, so the fields this product set can be told apart in
#: ``managedFields`` (and handed back after a change is persisted through the owner).
FIELD_MANAGER: Final = "kpr-exporter"
_MANAGED: Final = (("fieldManager", FIELD_MANAGER),)
_VERSION: Final = Resource("", "v1", "version", "Version", namespaced=False)  # /version, for errors

# Watch event types; SYNC is ours: a complete listing that replaces what came before.
ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
SYNC: Final = "SYNC"

_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_LIBRARY_ERRORS = (urllib3.exceptions.HTTPError, OSError, OpenApiException, ValueError)


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


def load_api_client(kubeconfig: str = "", context: str = "", *,
                    environ: Mapping[str, str] | None = None,
                    pool_size: int = 32) -> k8s_client.ApiClient:
    """Build an ``ApiClient``: the explicit ``kubeconfig`` if given, else the in-cluster
    service account when running in a pod, else ``$KUBECONFIG`` or ``~/.kube/config``."""
    env = os.environ if environ is None else environ
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig:
            source = kubeconfig
            k8s_config.load_kube_config(config_file=kubeconfig, context=context or None,
                                        client_configuration=configuration)
        elif env.get("KUBERNETES_SERVICE_HOST") and _SERVICE_ACCOUNT_TOKEN.exists():
            source = "in-cluster service account"
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            source = env.get("KUBECONFIG") or str(Path(env.get("HOME", "~")) / ".kube" / "config")
            k8s_config.load_kube_config(config_file=os.path.expanduser(source),
                                        context=context or None,
                                        client_configuration=configuration)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise KubeConfigError(f"no usable Kubernetes configuration ({source}): {exc}") from exc
    # Every open watch holds a connection; keep them pooled instead of discarded.
    configuration.connection_pool_maxsize = pool_size
    return k8s_client.ApiClient(configuration)


def client_from_settings(settings: KubeSettings, *,
                         environ: Mapping[str, str] | None = None) -> KubeClient | None:
    """The client ``settings`` ask for: None when disabled, or when ``enabled=auto`` and
    no kubeconfig or service account is found; ``KubeConfigError`` when ``enabled=true``
    and none is usable."""
    if settings.enabled == "false":
        return None
    try:
        return KubeClient.connect(settings.kubeconfig, settings.context,
                                  request_timeout=settings.request_timeout_seconds,
                                  environ=environ)
    except KubeConfigError as exc:
        if settings.enabled == "true" or settings.kubeconfig:
            raise
        log.info("no Kubernetes configuration found; running without the Kubernetes API",
                 extra={"kv": {"reason": str(exc)}})
        return None


class KubeClient:
    """Generic get/list/create/replace/patch/delete/watch over plain dict objects."""

    def __init__(self, api: k8s_client.ApiClient, *, request_timeout: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._timeout = request_timeout
        self._monotonic = monotonic

    @classmethod
    def connect(cls, kubeconfig: str = "", context: str = "", *,
                request_timeout: float = 30.0, environ: Mapping[str, str] | None = None,
                monotonic: Callable[[], float] = time.monotonic) -> KubeClient:
        """A client from the usual configuration sources (see ``load_api_client``)."""
        return cls(load_api_client(kubeconfig, context, environ=environ),
                   request_timeout=request_timeout, monotonic=monotonic)

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        await asyncio.to_thread(self._api.close)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- requests -----------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict:
        """The object; ``NotFound`` when it does not exist."""
        return await self._call("get", resource, "GET", namespace, name)

    async def server_version(self) -> str:
        """The API server's ``gitVersion`` (e.g. ``v1.31.2``); "" when it does not say."""
        context = _Context("get", _VERSION, "", "")
        answer = await asyncio.to_thread(self._request, context, "GET", "/version", (), None,
                                         "application/json")
        return str(answer.get("gitVersion", ""))

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "") -> ObjectList:
        """Objects of ``resource`` (``namespace=None``: all namespaces)."""
        query = _selectors(label_selector, field_selector)
        answer = await self._call("list", resource, "GET", namespace, None, query=query,
                                  collection=True)
        meta = answer.get("metadata") or {}
        return ObjectList(list(answer.get("items") or []), str(meta.get("resourceVersion", "")))

    async def create(self, resource: Resource, body: Mapping[str, Any],
                     namespace: str | None = None) -> dict:
        """Create ``body``; ``Conflict`` (``already_exists``) when the name is taken."""
        if resource.namespaced and not namespace:
            namespace = (body.get("metadata") or {}).get("namespace")
        return await self._call("create", resource, "POST", namespace, None, query=_MANAGED,
                                body=_with_type(resource, body), collection=True)

    async def replace(self, resource: Resource, body: Mapping[str, Any],
                      namespace: str | None = None, *, subresource: str | None = None) -> dict:
        """PUT ``body``; a ``metadata.resourceVersion`` in it makes this a compare-and-swap
        (``Conflict`` when stale)."""
        meta = body.get("metadata") or {}
        if resource.namespaced and not namespace:
            namespace = meta.get("namespace")
        return await self._call("update", resource, "PUT", namespace, meta.get("name", ""),
                                query=_MANAGED, body=_with_type(resource, body),
                                subresource=subresource)

    async def patch(self, resource: Resource, name: str, patch: Any,
                    namespace: str | None = None, *, patch_type: str | None = None,
                    subresource: str | None = None) -> dict:
        """Patch an object. ``patch_type`` defaults to strategic merge for built-in kinds
        and JSON merge patch for custom resources; a list means JSON patch."""
        if patch_type is None:
            if isinstance(patch, list):
                patch_type = JSON_PATCH
            else:
                patch_type = STRATEGIC_MERGE if resource.builtin else MERGE_PATCH
        if patch_type not in PATCH_TYPES:
            raise ValueError(f"unknown patch type {patch_type!r}")
        return await self._call("patch", resource, "PATCH", namespace, name, body=patch,
                                query=_MANAGED, content_type=patch_type, subresource=subresource)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     resource_version: str | None = None,
                     propagation: str | None = None) -> dict:
        """Delete an object; ``resource_version`` makes it conditional (``Conflict``)."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        if propagation:
            options["propagationPolicy"] = propagation
        return await self._call("delete", resource, "DELETE", namespace, name, body=options)

    # --- watch --------------------------------------------------------------------

    async def watch(self, resource: Resource, namespace: str | None = None, *,
                    label_selector: str = "", field_selector: str = "",
                    resync_seconds: float = 300.0,
                    backoff: Backoff = Backoff()) -> AsyncIterator[WatchEvent]:
        """Follow ``resource``: a ``SYNC`` event with the full listing first, then changes.

        Relists (a new ``SYNC``) on 410 Gone and every ``resync_seconds``. An unavailable
        API is retried with ``backoff``; any other ``KubeError`` (``Forbidden``,
        ``NotFound`` for an unserved resource, ...) ends the iteration by being raised.
        """
        query = _selectors(label_selector, field_selector)
        resource_version = ""
        listed_at = 0.0
        retry = backoff.delays()
        while True:
            try:
                if not resource_version or self._monotonic() - listed_at >= resync_seconds:
                    listing = await self.list(resource, namespace, label_selector=label_selector,
                                              field_selector=field_selector)
                    listed_at = self._monotonic()
                    resource_version = listing.resource_version
                    retry = backoff.delays()
                    yield WatchEvent(SYNC, objects=tuple(listing.items))
                remaining = max(1, int(resync_seconds - (self._monotonic() - listed_at)))
                stream = _WatchStream(self, resource, namespace, [
                    *query, ("watch", "1"), ("resourceVersion", resource_version),
                    ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(remaining)),
                ])
                delivered = False
                async with contextlib.aclosing(stream.events()) as events:
                    async for kind, obj in events:
                        resource_version = _resource_version(obj) or resource_version
                        if kind == "BOOKMARK":
                            continue
                        delivered = True
                        retry = backoff.delays()
                        yield WatchEvent(kind, object=obj)
                if not delivered:  # an empty stream: do not spin if the server keeps ending it
                    await asyncio.sleep(retry())
            except Gone:
                log.info("watch %s: resourceVersion %s expired, relisting",
                         resource.qualified, resource_version)
                resource_version = ""
            except Unavailable as exc:
                delay = retry()
                log.warning("watch %s: %s; retrying in %.1fs", resource.qualified, exc, delay)
                await asyncio.sleep(delay)

    # --- internals ------------------------------------------------------------------

    async def _call(self, verb: str, resource: Resource, method: str, namespace: str | None,
                    name: str | None, *, query: Sequence[tuple[str, str]] = (),
                    body: Any = None, content_type: str = "application/json",
                    subresource: str | None = None, collection: bool = False) -> dict:
        if resource.namespaced and not namespace and not (collection and verb == "list"):
            raise ValueError(f"{verb} {resource.plural}: a namespace is required")
        if not collection and not name:
            raise ValueError(f"{verb} {resource.plural}: a name is required")
        path = resource.path(namespace if resource.namespaced else None,
                             None if collection else name, subresource)
        context = _Context(verb, resource, namespace or "", name or "")
        return await asyncio.to_thread(self._request, context, method, path, query, body,
                                       content_type)

    def _request(self, context: _Context, method: str, path: str,
                 query: Sequence[tuple[str, str]], body: Any, content_type: str) -> dict:
        response = self._send(context, method, path, query, body, content_type,
                              timeout=self._timeout)
        try:
            data = response.read()
        except _LIBRARY_ERRORS as exc:
            raise context.unavailable(exc) from exc
        if not 200 <= response.status < 300:
            raise context.error(response.status, data)
        if not data:
            return {}
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise KubeError(f"{context.verb} {context.describe()}: the API answered with "
                            f"something that is not JSON") from exc
        if not isinstance(answer, dict):
            raise KubeError(f"{context.verb} {context.describe()}: unexpected answer type")
        return answer

    def _send(self, context: _Context, method: str, path: str,
              query: Sequence[tuple[str, str]], body: Any, content_type: str,
              timeout: float | tuple[float, float]) -> Any:
        try:
            request = self._api.param_serialize(
                method, path, query_params=list(query),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body, auth_settings=["BearerToken"])
            return self._api.call_api(*request, _request_timeout=timeout)
        except ApiException as exc:
            raise context.error(exc.status or 0, exc.body) from exc
        except _LIBRARY_ERRORS as exc:
            raise context.unavailable(exc) from exc


@dataclass(frozen=True, slots=True)
class _Context:
    """What a request asked for, to word its errors."""

    verb: str
    resource: Resource
    namespace: str
    name: str

    def describe(self) -> str:
        what = self.resource.qualified + (f' "{self.name}"' if self.name else "")
        return what + (f" in namespace {self.namespace}" if self.namespace else "")

    def error(self, status: int, data: bytes | str | None) -> KubeError:
        reason, message = _status_fields(data)
        return error_for_status(status, verb=self.verb, resource=self.resource.qualified,
                                namespace=self.namespace, name=self.name, reason=reason,
                                server_message=message)

    def unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(f"{self.verb} {self.describe()}: API unreachable: "
                           f"{type(exc).__name__}: {exc}", verb=self.verb,
                           resource=self.resource.qualified, namespace=self.namespace,
                           name=self.name)


class _WatchStream:
    """One watch request, read line by line in a daemon thread; async-iterates
    ``(type, object)`` pairs and ends when the server ends the stream."""

    def __init__(self, client: KubeClient, resource: Resource, namespace: str | None,
                 query: list[tuple[str, str]]) -> None:
        self._client = client
        self._context = _Context("watch", resource, namespace or "", "")
        self._path = resource.path(namespace if resource.namespaced else None)
        self._query = query
        self._lock = threading.Lock()
        self._response: Any = None
        self._stopped = False

    async def events(self) -> AsyncIterator[tuple[str, dict]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        thread = threading.Thread(target=self._read, args=(loop, queue), daemon=True,
                                  name=f"watch {self._context.describe()}")
        thread.start()
        try:
            while True:
                kind, item = await queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:
            self._stop()

    def _stop(self) -> None:
        with self._lock:
            self._stopped = True
            response = self._response
        if response is not None:
            _interrupt(response)

    def _read(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        def put(kind: str, item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, item))
            except RuntimeError:  # the loop is gone: nobody is listening any more
                pass

        raw = None
        try:
            response = self._client._send(
                self._context, "GET", self._path, self._query, None, "application/json",
                timeout=(self._client._timeout, self._client._timeout + _timeout_of(self._query)))
            raw = response.response
            with self._lock:
                self._response = raw
                stopped = self._stopped
            if stopped:
                return
            if not 200 <= response.status < 300:
                raise self._context.error(response.status, response.read())
            for event in _events(raw):
                if self._stopped:
                    return
                kind = event.get("type", "")
                obj = event.get("object")
                if kind == "ERROR":
                    raise self._context.error(int((obj or {}).get("code") or 500),
                                              json.dumps(obj))
                if kind in (ADDED, MODIFIED, DELETED, "BOOKMARK") and isinstance(obj, dict):
                    put("event", (kind, obj))
            put("end", None)
        except KubeError as exc:
            put("error", exc)
        except _LIBRARY_ERRORS as exc:
            put("end", None) if self._stopped else put("error", self._context.unavailable(exc))
        finally:
            if raw is not None:  # close, never back to the pool: the body may be unread
                with contextlib.suppress(*_LIBRARY_ERRORS, RuntimeError):
                    raw.close()


def _events(response: Any) -> Any:
    """Decoded JSON lines of a watch response body."""
    buffer = b""
    for chunk in response.stream(65536, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise Unavailable(f"watch: undecodable event line: {line[:200]!r}") from exc


def _interrupt(response: Any) -> None:
    """Unblock a read in progress in another thread (the reader then closes)."""
    with contextlib.suppress(*_LIBRARY_ERRORS, RuntimeError, AttributeError):
        response.shutdown()


def _timeout_of(query: list[tuple[str, str]]) -> float:
    return next((float(v) for k, v in query if k == "timeoutSeconds"), 0.0)


def _selectors(label_selector: str, field_selector: str) -> list[tuple[str, str]]:
    query = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


def _with_type(resource: Resource, body: Mapping[str, Any]) -> dict:
    typed = dict(body)
    typed.setdefault("apiVersion", resource.api_version)
    typed.setdefault("kind", resource.kind)
    return typed


def _resource_version(obj: Any) -> str:
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return ""


def _status_fields(data: bytes | str | None) -> tuple[str, str]:
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
