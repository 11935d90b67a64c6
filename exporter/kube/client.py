"""A thin asynchronous wrapper around the official ``kubernetes`` client.

Objects are plain JSON dicts, requests go through ``ApiClient``'s REST layer (one
generic code path for built-in kinds and CiliumNodeConfigs alike), blocking calls run
in worker threads so the event loop never waits on the network, and every failure is
a :class:`~exporter.kube.errors.KubeError`.

Watches list first, then follow the watch stream from the list's resourceVersion; they
relist on 410 Gone and every ``resync_seconds``, and retry an unavailable API with a
bounded backoff. Each watch stream reads in its own daemon thread
(:mod:`exporter.kube.watch_stream`). The request vocabulary (patch types, event types,
answers, error wording) is :mod:`exporter.kube.wire`; where the configuration comes from
is :mod:`exporter.kube.connect`. Both are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from exporter.kube.connect import load_api_client
from exporter.kube.errors import EvictionRefused, Gone, KubeConfigError, KubeError, Unavailable
from exporter.kube.resources import PODS, Resource
from exporter.kube.settings import KubeSettings
from exporter.kube.watch_stream import WatchStream
from exporter.kube.wire import resource_version as _version_of
from exporter.kube.wire import (
    ADDED,
    DELETED,
    FIELD_MANAGER,
    LIBRARY_ERRORS,
    MANAGED,
    MERGE_PATCH,
    MODIFIED,
    PATCH_TYPES,
    STRATEGIC_MERGE,
    SYNC,
    Backoff,
    ObjectList,
    RequestContext,
    WatchEvent,
    selectors,
    with_type,
)

__all__ = [
    "ADDED", "DELETED", "FIELD_MANAGER", "MERGE_PATCH", "MODIFIED",
    "PATCH_TYPES", "STRATEGIC_MERGE", "SYNC", "Backoff", "KubeClient", "ObjectList",
    "WatchEvent", "client_from_settings", "load_api_client",
]

log = logging.getLogger(__name__)

_VERSION: Final = Resource("", "v1", "version", "Version", namespaced=False)  # /version, for errors


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
        context = RequestContext("get", _VERSION, "", "")
        answer = await asyncio.to_thread(self._request, context, "GET", "/version", (), None,
                                         "application/json")
        return str(answer.get("gitVersion", ""))

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "") -> ObjectList:
        """Objects of ``resource`` (``namespace=None``: all namespaces)."""
        query = selectors(label_selector, field_selector)
        answer = await self._call("list", resource, "GET", namespace, None, query=query,
                                  collection=True)
        meta = answer.get("metadata") or {}
        return ObjectList(list(answer.get("items") or []), str(meta.get("resourceVersion", "")))

    async def create(self, resource: Resource, body: Mapping[str, Any],
                     namespace: str | None = None) -> dict:
        """Create ``body``; ``Conflict`` (``already_exists``) when the name is taken."""
        if resource.namespaced and not namespace:
            namespace = (body.get("metadata") or {}).get("namespace")
        return await self._call("create", resource, "POST", namespace, None, query=MANAGED,
                                body=with_type(resource, body), collection=True)

    async def replace(self, resource: Resource, body: Mapping[str, Any],
                      namespace: str | None = None, *, subresource: str | None = None) -> dict:
        """PUT ``body``; a ``metadata.resourceVersion`` in it makes this a compare-and-swap
        (``Conflict`` when stale)."""
        meta = body.get("metadata") or {}
        if resource.namespaced and not namespace:
            namespace = meta.get("namespace")
        return await self._call("update", resource, "PUT", namespace, meta.get("name", ""),
                                query=MANAGED, body=with_type(resource, body),
                                subresource=subresource)

    async def patch(self, resource: Resource, name: str, patch: dict[str, Any],
                    namespace: str | None = None, *, patch_type: str,
                    subresource: str | None = None) -> dict:
        """Patch an object with ``patch_type`` (``MERGE_PATCH`` or ``STRATEGIC_MERGE``; every
        caller names it: the server's answer to the same body differs by type)."""
        if patch_type not in PATCH_TYPES:
            raise ValueError(f"unknown patch type {patch_type!r}")
        return await self._call("patch", resource, "PATCH", namespace, name, body=patch,
                                query=MANAGED, content_type=patch_type, subresource=subresource)

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

    async def evict(self, name: str, namespace: str, *, uid: str | None = None) -> None:
        """Evict a pod: a policy/v1 ``Eviction`` POSTed to its ``pods/eviction``
        subresource, so the API server deletes it only if its PodDisruptionBudget allows.
        ``EvictionRefused`` (429) when the budget allows no disruption now, ``NotFound`` when
        the pod is gone, ``Conflict`` when ``uid`` is no longer the pod's (a new pod of the
        same name, which is not evicted)."""
        body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                "metadata": {"name": name, "namespace": namespace}}
        if uid:
            body["deleteOptions"] = {"kind": "DeleteOptions", "apiVersion": "v1",
                                     "preconditions": {"uid": uid}}
        try:
            await self._call("evict", PODS, "POST", namespace, name, body=body,
                             subresource="eviction")
        except Unavailable as exc:
            if exc.status != 429:
                raise
            refused = EvictionRefused(
                f"evict {exc.target}: refused, its PodDisruptionBudget allows no disruption now "
                f"(HTTP 429){': ' + exc.server_message if exc.server_message else ''}",
                verb="evict", resource=PODS.qualified, namespace=namespace, name=name,
                status=429, reason=exc.reason, server_message=exc.server_message)
            raise refused from exc

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
        query = selectors(label_selector, field_selector)
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
                stream = WatchStream(self._send, self._timeout, resource, namespace, [
                    *query, ("watch", "1"), ("resourceVersion", resource_version),
                    ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(remaining)),
                ])
                delivered = False
                async with contextlib.aclosing(stream.events()) as events:
                    async for kind, obj in events:
                        resource_version = _version_of(obj) or resource_version
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
        context = RequestContext(verb, resource, namespace or "", name or "")
        return await asyncio.to_thread(self._request, context, method, path, query, body,
                                       content_type)

    def _request(self, context: RequestContext, method: str, path: str,
                 query: Sequence[tuple[str, str]], body: Any, content_type: str) -> dict:
        response = self._send(context, method, path, query, body, content_type,
                              timeout=self._timeout)
        try:
            data = response.read()
        except LIBRARY_ERRORS as exc:
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

    def _send(self, context: RequestContext, method: str, path: str,
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
        except LIBRARY_ERRORS as exc:
            raise context.unavailable(exc) from exc
