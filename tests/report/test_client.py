"""The Prometheus client against a local aiohttp server answering fixed bodies.

Matrix: vector / scalar / matrix results with NaN and infinities, warnings, a path prefix
in the base URL, Prometheus errors with and without a JSON body, a wrong result type, and
URL checks. Library exceptions never escape: everything is a ``PrometheusError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from exporter.report.client import (
    PrometheusClient,
    PrometheusQueryError,
    check_url,
    session,
)
from exporter.report.data import Sample, Series

Answer = tuple[int, Any]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Any]]:
    """``url, seen = await serve((status, body))``: a server answering every GET alike."""
    runners: list[web.AppRunner] = []

    async def start(answer: Answer) -> tuple[str, list[web.Request]]:
        seen: list[web.Request] = []

        async def handle(request: web.Request) -> web.Response:
            seen.append(request)
            status, body = answer
            text = body if isinstance(body, str) else json.dumps(body)
            return web.Response(status=status, text=text, content_type="application/json")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}", seen

    yield start
    for runner in runners:
        await runner.cleanup()


def ok(kind: str, result: Any, **extra: Any) -> Answer:
    return 200, {"status": "success", "data": {"resultType": kind, "result": result}, **extra}


async def test_vector_values_keep_nan_and_infinities(serve: Callable[[Answer], Any]) -> None:
    url, seen = await serve(ok("vector", [
        {"metric": {"sli": "drops"}, "value": [1764000000.5, "NaN"]},
        {"metric": {"sli": "connect_duration"}, "value": [1764000000.5, "+Inf"]},
        {"metric": {}, "value": [1764000000.5, "-0.25"]},
    ], warnings=["partial response"]))
    async with session() as http:
        client = PrometheusClient(url + "/prom/", http)
        samples = await client.query("kpr_verdict", 1764000000.5)
    assert math.isnan(samples[0].value) and samples[0].labels == {"sli": "drops"}
    assert samples[1].value == math.inf
    assert samples[2] == Sample({}, -0.25)
    assert client.warnings == ["partial response"]
    request = seen[0]
    assert request.path == "/prom/api/v1/query"
    assert dict(request.query) == {"query": "kpr_verdict", "time": "1764000000.500"}


async def test_scalar_and_matrix(serve: Callable[[Answer], Any]) -> None:
    url, _ = await serve(ok("scalar", [1764000000, "3"]))
    async with session() as http:
        assert await PrometheusClient(url, http).query("1+2", 1764000000) == [Sample({}, 3.0)]
    url, seen = await serve(ok("matrix", [{"metric": {"phase": "canary"},
                                          "values": [[1764000000, "1"], [1764000030, "0"]]}]))
    async with session() as http:
        result = await PrometheusClient(url, http).query_range("m", 1764000000, 1764000030, 30)
    assert result == [Series({"phase": "canary"}, ((1764000000.0, 1.0), (1764000030.0, 0.0)))]
    assert dict(seen[0].query) == {"query": "m", "start": "1764000000.000",
                                   "end": "1764000030.000", "step": "30.000"}


@pytest.mark.parametrize(("answer", "message"), [
    ((422, {"status": "error", "errorType": "execution", "error": "query timed out"}),
     "Prometheus refused the query (execution): query timed out"),
    ((503, "upstream connect error"), "answered HTTP 503 without a Prometheus API response"),
    ((200, {"status": "success", "data": {"resultType": "string", "result": [0, "x"]}}),
     "unexpected 'string' result"),
    ((200, {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": {}, "value": [0]}]}}),
     "malformed sample"),
])
async def test_errors_are_prometheus_errors(serve: Callable[[Answer], Any], answer: Answer,
                                            message: str) -> None:
    url, _ = await serve(answer)
    async with session() as http:
        with pytest.raises(PrometheusQueryError) as caught:
            await PrometheusClient(url, http).query("kpr_verdict", 0)
    assert message in str(caught.value)
    assert caught.value.query == "kpr_verdict"


@pytest.mark.parametrize("url", ["127.0.0.1:9090", "ftp://host", "http://", "http://h/?x=1"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url)


def test_good_url_loses_trailing_slash() -> None:
    assert check_url("https://prom.example:9090/sub/") == "https://prom.example:9090/sub"
