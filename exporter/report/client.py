"""Prometheus HTTP API v1 client (aiohttp): instant and range queries, plain data back.

``PrometheusClient.query`` returns ``Sample``s, ``query_range`` returns ``Series``; values
are floats (``NaN`` / ``+Inf`` kept). Every failure is a ``PrometheusError``:
``PrometheusUnreachable`` (connection refused, DNS, TLS, timeout) or ``PrometheusQueryError``
(Prometheus answered with an error, or with something that is not its API). aiohttp's own
exceptions never leave this module. Response warnings are collected in ``warnings``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from exporter.report.data import Sample, Series

DEFAULT_TIMEOUT = 30.0
_MAX_BODY_SHOWN = 200


class PrometheusError(Exception):
    """Prometheus could not be queried."""


class PrometheusUnreachable(PrometheusError):
    """No answer: connection refused, name not resolved, TLS failure or timeout."""


class PrometheusQueryError(PrometheusError):
    """Prometheus (or whatever answered) refused the query or sent no API response."""

    def __init__(self, message: str, query: str = "") -> None:
        super().__init__(message)
        self.query = query


def check_url(url: str) -> str:
    """The base URL without a trailing slash; ``ValueError`` when it is not http(s)://host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: give the base URL without ?query or #fragment")
    return url.rstrip("/")


class PrometheusClient:
    """Queries one Prometheus (base URL, optionally with a path prefix) over a session."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = check_url(base_url)
        self._session = session
        self.warnings: list[str] = []

    async def query(self, expr: str, at: float) -> list[Sample]:
        """``/api/v1/query`` at ``at``: an instant vector (a scalar becomes one sample)."""
        data = await self._get("query", {"query": expr, "time": _ts(at)}, expr)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector" and isinstance(result, list):
            return [Sample(_labels(item), _value(item.get("value"), expr)) for item in result]
        if kind == "scalar":
            return [Sample({}, _value(result, expr))]
        raise PrometheusQueryError(f"unexpected {kind!r} result for an instant query", expr)

    async def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """``/api/v1/query_range``: a matrix."""
        params = {"query": expr, "start": _ts(start), "end": _ts(end), "step": _ts(step)}
        data = await self._get("query_range", params, expr)
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PrometheusQueryError(f"unexpected {data.get('resultType')!r} result for a range "
                                       "query", expr)
        return [Series(_labels(item), tuple((float(t), _value((t, v), expr))
                                            for t, v in item.get("values", ())))
                for item in data["result"]]

    async def _get(self, endpoint: str, params: Mapping[str, str], expr: str) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1/{endpoint}"
        try:
            async with self._session.get(url, params=params) as response:
                status = response.status
                text = await response.text()
        except asyncio.TimeoutError:
            raise PrometheusUnreachable(f"{self.base_url} did not answer in time") from None
        except aiohttp.ClientConnectorError as err:
            raise PrometheusUnreachable(f"cannot connect to {self.base_url}: "
                                        f"{err.os_error or err}") from err
        except aiohttp.ClientError as err:
            raise PrometheusUnreachable(f"{self.base_url}: {type(err).__name__}: {err}") from err
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusQueryError(
                f"{url} answered HTTP {status} without a Prometheus API response "
                f"(is this a Prometheus base URL?): {_short(text)}", expr)
        if body.get("status") != "success":
            kind = body.get("errorType") or f"HTTP {status}"
            raise PrometheusQueryError(f"Prometheus refused the query ({kind}): "
                                       f"{body.get('error') or _short(text)}", expr)
        for warning in body.get("warnings") or ():
            if warning not in self.warnings:
                self.warnings.append(str(warning))
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusQueryError("Prometheus answered without data", expr)
        return data


def session(timeout: float = DEFAULT_TIMEOUT) -> aiohttp.ClientSession:
    """A client session whose every request gives up after ``timeout`` seconds."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout,
                                                               connect=min(timeout, 10.0)))


def _labels(item: Mapping[str, Any]) -> dict[str, str]:
    metric = item.get("metric") or {}
    return {str(k): str(v) for k, v in metric.items()}


def _value(pair: Any, expr: str) -> float:
    try:
        return float(pair[1])
    except (TypeError, ValueError, IndexError):
        raise PrometheusQueryError(f"malformed sample {pair!r}", expr) from None


def _ts(seconds: float) -> str:
    return f"{seconds:.3f}"


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_BODY_SHOWN else flat[:_MAX_BODY_SHOWN] + "..."
