"""Watches of the simulated API: replay from a resourceVersion (410 ``Expired`` below the
compacted history), then stream changes as they are written."""

from __future__ import annotations

import asyncio
import copy

from aiohttp import web

from exporter.simulator.kubeapi.handlers import parsed_selector
from exporter.simulator.kubeapi.kinds import ApiError, Route, Watcher, event_line
from exporter.simulator.kubeapi.selectors import (
    matches, parse_field_selector, parse_label_selector,
)
from exporter.simulator.kubeapi.store import Store, event_for


class Watches(Store):
    """``?watch=1`` on a list route."""

    async def _watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        query = request.query
        labels = parsed_selector(parse_label_selector, query.get("labelSelector", ""))
        fields = parsed_selector(parse_field_selector, query.get("fieldSelector", ""),
                           route.rtype.plural)
        timeout = float(query.get("timeoutSeconds", "0") or 0)
        since = query.get("resourceVersion", "")
        queue: asyncio.Queue = asyncio.Queue()
        watcher = Watcher(route.rtype, route.namespace, labels, fields, queue,
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
                            event = event_for(route.rtype, route.namespace, labels, fields,
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
                await response.write(event_line(event))
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
                await response.write(event_line(event))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)
                self._cond.notify_all()
        return response

