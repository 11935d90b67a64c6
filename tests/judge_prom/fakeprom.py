"""A stand-in for Prometheus' HTTP API on 127.0.0.1, answering the judge's own queries.

``FakePrometheus`` holds, per window length, the cohorts Prometheus should report summed
over the fleet, and renders them the way Prometheus answers the judge's PromQL (cumulative
``le`` buckets, attempts by result, flows, drops by reason). Health queries answer one
exporter with a live Hubble stream and a fresh sample unless told otherwise. Modes:
``ok``, ``hang`` (never answers until the server stops), ``error`` (a Prometheus error
body), ``warnings`` (success with a warning). ``drop`` removes samples (partial data);
``raw_result`` answers every query with a given result list.
Every request's ``Authorization`` header is recorded.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from exporter.judge.history import Cohort
from exporter.judge.settings import JudgeSettings
from exporter.judge_prom import queries
from exporter.snapshot import SliKey

Labels = dict[str, str]
INSTANCE = {"job": "kpr-exporter", "instance": "node-a:9977"}


def series(cohorts: Mapping[SliKey, Cohort], bounds: tuple[float, ...]) -> dict[str, list]:
    """``{part: [(labels, value)]}`` as the judge's window queries return them."""
    out: dict[str, list] = {"buckets": [], "attempts": [], "flows": [], "drops": []}
    for key, c in cohorts.items():
        base = {"namespace": key.namespace, "service": key.service, "datapath": key.datapath}
        running = 0
        for le, n in zip((*bounds, math.inf), c.connect_counts):
            running += n
            out["buckets"].append(({**base, "le": "+Inf" if le == math.inf else f"{le:g}"},
                                   running))
        out["attempts"].append(({**base, "result": "established"}, c.established))
        if c.attempts > c.established:
            out["attempts"].append(({**base, "result": "refused"}, c.attempts - c.established))
        out["flows"].append((base, c.flows))
        if c.drops:
            out["drops"].append(({**base, "reason": "SERVICE_BACKEND_NOT_FOUND"}, c.kpr_drops))
            if c.drops > c.kpr_drops:
                out["drops"].append(({**base, "reason": "POLICY_DENIED"}, c.drops - c.kpr_drops))
    return out


class FakePrometheus:
    """``async with FakePrometheus(settings, now) as prom``: ``prom.url`` answers queries."""

    def __init__(self, settings: JudgeSettings, now: float, bounds: tuple[float, ...], *,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.now = now
        self.ssl_context = ssl_context
        self.bounds = bounds
        self.mode = "ok"
        self.windows: dict[float, dict[SliKey, Cohort]] = {
            settings.short_window_seconds: {}, settings.long_window_seconds: {}}
        #: The probes' pseudo-services (namespace kpr-probe) per window, as the probe
        #: queries return them after relabelling.
        self.probe_windows: dict[float, dict[SliKey, Cohort]] = {
            settings.short_window_seconds: {}, settings.long_window_seconds: {}}
        self.up: list[tuple[Labels, float]] = [(dict(INSTANCE), 1.0)]
        self.newest: list[tuple[Labels, float]] = [(dict(INSTANCE), now)]
        self.vanished: list[tuple[Labels, float]] = []
        self.late: list[tuple[Labels, float]] = []
        self.drop: Callable[[str, Labels], bool] = lambda expr, labels: False
        self.authorization: list[str | None] = []
        self.raw_result: list[Any] | None = None  # answered to every query when set
        #: Per window: per-node Hubble events by part (flows, lost, agent_lost) as the loss
        #: queries return them, and the cohorts of window queries narrowed to leave out
        #: instances (``narrowed``; the matchers seen are kept in ``left_out``).
        self.losses: dict[float, dict[str, list[tuple[Labels, float]]]] = {
            settings.short_window_seconds: {}, settings.long_window_seconds: {}}
        self.narrowed: dict[float, dict[SliKey, Cohort]] = {
            settings.short_window_seconds: {}, settings.long_window_seconds: {}}
        self.left_out: list[str] = []
        self._exprs = self._health_exprs(settings)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def set_window(self, seconds: float, cohorts: Mapping[SliKey, Cohort]) -> None:
        self.windows[seconds] = dict(cohorts)

    @staticmethod
    def _health_exprs(settings: JudgeSettings) -> dict[str, str]:
        exprs = {queries.up(): "up", queries.newest_sample(): "newest",
                 queries.vanished(settings.short_window_seconds): "vanished"}
        for seconds in (settings.short_window_seconds, settings.long_window_seconds):
            exprs[queries.late_starters(seconds)] = "late"
            for part, expr in queries.window_queries(seconds).items():
                exprs[expr] = f"{seconds}:{part}"
            for part, expr in queries.probe_queries(seconds).items():
                exprs[expr] = f"{seconds}:probe:{part}"
            for part, expr in queries.loss_queries(seconds).items():
                exprs[expr] = f"{seconds}:loss:{part}"
        return exprs

    def answer(self, expr: str) -> list[tuple[Labels, float]]:
        what = self._exprs.get(expr)
        narrowed = _NARROWED.search(expr)
        if what is None and narrowed:
            what = self._exprs.get(_NARROWED.sub("[", expr))
            if what is None:
                raise KeyError(expr)
            self.left_out.append(narrowed.group(1))
            seconds, part = what.split(":")
            found = series(self.narrowed[float(seconds)], self.bounds)[part]
        elif what is None:
            raise KeyError(expr)
        elif ":loss:" in what:
            seconds, _, part = what.split(":")
            found = self.losses[float(seconds)].get(part, [])
        elif ":probe:" in what:
            seconds, _, part = what.split(":")
            found = series(self.probe_windows[float(seconds)], self.bounds)[part]
        elif ":" in what:
            seconds, part = what.split(":")
            found = series(self.windows[float(seconds)], self.bounds)[part]
        else:
            found = getattr(self, what)
        return [(labels, value) for labels, value in found if not self.drop(expr, labels)]

    async def __aenter__(self) -> FakePrometheus:
        app = web.Application()
        app.router.add_get("/api/v1/query", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context).start()
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop answering (the port is closed: connections are refused from now on)."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.authorization.append(request.headers.get("Authorization"))
        if self.mode == "hang":
            await self._release.wait()
            return web.Response(status=503)
        if self.mode == "error":
            return web.json_response({"status": "error", "errorType": "execution",
                                      "error": "query timed out in expression evaluation"},
                                     status=503)
        expr = request.query["query"]
        try:
            found = self.answer(expr)
        except KeyError:
            return web.json_response({"status": "error", "errorType": "bad_data",
                                      "error": f"unexpected query {expr}"}, status=400)
        at = float(request.query["time"])
        result = self.raw_result if self.raw_result is not None else [
            {"metric": labels, "value": [at, _text(value)]} for labels, value in found]
        body: dict[str, Any] = {"status": "success",
                                "data": {"resultType": "vector", "result": result}}
        if self.mode == "warnings":
            body["warnings"] = ["partial response: store gateway eu-1 did not answer"]
        return web.json_response(body)


_NARROWED = re.compile(r'\{instance!~"((?:[^"\\]|\\.)*)"\}\[')


def _text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))
