"""One watch request, read line by line in its own daemon thread (not the default
executor, which long-lived streams would starve)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from exporter.kube.errors import KubeError, Unavailable
from exporter.kube.resources import Resource
from exporter.kube.wire import (
    ADDED,
    DELETED,
    LIBRARY_ERRORS,
    MODIFIED,
    RequestContext,
)

#: ``send(context, method, path, query, body, content_type, timeout=...)`` -> a response
#: whose ``.response`` is the raw urllib3 response (``KubeClient._send``).
Send = Callable[..., Any]


class WatchStream:
    """Async-iterates ``(type, object)`` pairs of one watch request and ends when the
    server ends the stream."""

    def __init__(self, send: Send, request_timeout: float, resource: Resource,
                 namespace: str | None, query: Sequence[tuple[str, str]]) -> None:
        self._send = send
        self._timeout = request_timeout
        self._context = RequestContext("watch", resource, namespace or "", "")
        self._path = resource.path(namespace if resource.namespaced else None)
        self._query = list(query)
        self._lock = threading.Lock()
        self._response: Any = None
        self._stopped = False

    async def events(self) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
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
            response = self._send(
                self._context, "GET", self._path, self._query, None, "application/json",
                timeout=(self._timeout, self._timeout + _timeout_of(self._query)))
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
        except LIBRARY_ERRORS as exc:
            put("end", None) if self._stopped else put("error", self._context.unavailable(exc))
        finally:
            if raw is not None:  # close, never back to the pool: the body may be unread
                with contextlib.suppress(*LIBRARY_ERRORS, RuntimeError):
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
    with contextlib.suppress(*LIBRARY_ERRORS, RuntimeError, AttributeError):
        response.shutdown()


def _timeout_of(query: Sequence[tuple[str, str]]) -> float:
    return next((float(v) for k, v in query if k == "timeoutSeconds"), 0.0)
