"""A small Prometheus API stand-in on 127.0.0.1 that answers from recorded response files.

``tests/data/prometheus/index.json`` maps each request (endpoint plus its query parameters,
exactly as the report client sends them) to a response file recorded from a real
Prometheus 2.42 (``record.py``). ``FixturePrometheus`` serves them; a request without a
recording gets a Prometheus-style ``bad_data`` error naming it, so a changed query cannot go
unnoticed. Modes: ``replay`` (the recordings), ``empty`` (every query matches nothing),
``html`` (answers like a web server that is not Prometheus) and ``hang`` (never answers
until the server stops). ``overrides`` map a query string to another response file.

``RecordingProxy`` forwards to a real Prometheus and writes the files and the index.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

DATA = Path(__file__).resolve().parent.parent / "data" / "prometheus"
INDEX = "index.json"


def request_key(endpoint: str, params: Mapping[str, str]) -> str:
    return json.dumps({"endpoint": endpoint, **{k: params[k] for k in sorted(params)}},
                      sort_keys=True)


def load_index(directory: Path = DATA) -> dict[str, str]:
    entries = json.loads((directory / INDEX).read_text(encoding="utf-8"))
    return {request_key(e["endpoint"], e["params"]): e["file"] for e in entries}


class FixturePrometheus:
    """Serves recorded API responses; see the module docstring for the modes."""

    def __init__(self, mode: str = "replay", *, directory: Path = DATA,
                 overrides: Mapping[str, str] | None = None) -> None:
        self.mode = mode
        self.directory = directory
        self.index = load_index(directory) if mode == "replay" else {}
        self.overrides = dict(overrides or {})
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.unknown: list[str] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FixturePrometheus:
        app = web.Application()
        app.router.add_get("/api/v1/{endpoint}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        params = dict(request.query)
        self.requests.append((endpoint, params))
        if self.mode == "hang":
            await self._release.wait()
            return web.Response(status=503)
        if self.mode == "html":
            return web.Response(status=404, text="<html><body>404 page not found</body></html>",
                                content_type="text/html")
        override = self.overrides.get(params.get("query", ""))
        if override is not None:
            return self._file(override)
        if self.mode == "empty":
            kind = "matrix" if endpoint == "query_range" else "vector"
            return web.json_response({"status": "success", "data": {"resultType": kind, "result": []}})
        name = self.index.get(request_key(endpoint, params))
        if name is None:
            self.unknown.append(request_key(endpoint, params))
            return web.json_response({"status": "error", "errorType": "bad_data",
                                      "error": f"no recording for {request_key(endpoint, params)}"},
                                     status=400)
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        body = json.loads((self.directory / name).read_text(encoding="utf-8"))
        status = 200 if body.get("status") == "success" else 400
        return web.json_response(body, status=status)


class RecordingProxy:
    """Forwards API requests to ``upstream`` and records each answer into ``directory``."""

    def __init__(self, upstream: str, directory: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.directory = directory
        self.entries: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> RecordingProxy:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_get("/api/v1/{endpoint}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        assert self._session is not None
        endpoint = request.match_info["endpoint"]
        params = dict(request.query)
        async with self._session.get(f"{self.upstream}/api/v1/{endpoint}", params=params) as up:
            status = up.status
            body = await up.json(content_type=None)
        self.save(endpoint, params, body)
        return web.json_response(body, status=status)

    def save(self, endpoint: str, params: Mapping[str, str], body: Any, name: str = "") -> str:
        digest = hashlib.sha1(request_key(endpoint, params).encode()).hexdigest()[:8]
        name = name or f"{endpoint}_{_slug(params.get('query', ''))}_{digest}.json"
        (self.directory / name).write_text(json.dumps(body, indent=1, sort_keys=True) + "\n",
                                           encoding="utf-8")
        self.entries.append({"endpoint": endpoint, "params": dict(params), "file": name})
        return name

    def write_index(self) -> None:
        entries = sorted(self.entries, key=lambda e: e["file"])
        (self.directory / INDEX).write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")


def _slug(query: str) -> str:
    names = re.findall(r"kpr_[a-z_]+", query)
    return (names[0] if names else "query").removeprefix("kpr_")[:40]
