"""Transport edge cases of the receiver, driven through raw sockets on 127.0.0.1.

Matrix: non-ASCII bytes in ``Authorization`` -> 401 (never a 500); a client hanging up
mid-body -> counted ``client_disconnected`` and logged below ERROR; a sender stalling
mid-body -> 408 ``body_timeout`` after ``webhook.body_timeout_seconds``; shutdown with a
request stuck in flight ends within ``webhook.shutdown_timeout_seconds``; the defaults sit
below the chart's termination grace period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.config_constraints import problems as check
from exporter.web import Server
from exporter.webhook import decision as dec
from exporter.webhook.receiver import PATH, OUTCOMES, TokenFile, WebhookReceiver
from exporter.webhook.settings import WebhookSettings

from .conftest import TOKEN, RecordingRunner, StaticView

CHART_VALUES = Path(__file__).resolve().parents[2] / "chart" / "values.yaml"


class Served:
    """A receiver behind ``exporter.web.Server``; ``entered`` / ``done`` mark each request."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.registry = CollectorRegistry()
        self.runner = RecordingRunner()
        self.receiver = WebhookReceiver(
            settings=settings, policy=dec.Policy(), view=StaticView(), runner=self.runner,
            registry=self.registry, token=TokenFile(settings.token_file),
        )
        self.entered = asyncio.Event()
        self.done = asyncio.Event()
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self.server = Server(app, "127.0.0.1:0", shutdown_timeout=settings.shutdown_timeout_seconds)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.entered.set()
        try:
            return await self.receiver.handle(request)
        finally:
            self.done.set()

    def count(self, outcome: str) -> float:
        return self.registry.get_sample_value("kpr_webhook_requests_total",
                                              {"outcome": outcome}) or 0.0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.server.port)


def head(length: int, authorization: bytes = b"Bearer " + TOKEN.encode()) -> bytes:
    return (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nAuthorization: " + authorization + b"\r\n"
            b"Content-Length: " + str(length).encode() + b"\r\n\r\n")


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict]:
    """Status and JSON body of one response (read by its Content-Length, not until EOF)."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    status_line, *fields = raw.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields if f)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout=30)
    return int(status_line.split()[1]), json.loads(body)


@pytest.fixture
async def serve(token_file: Path):
    started: list[Served] = []

    async def build(**overrides) -> Served:
        served = Served(WebhookSettings(token_file=str(token_file), **overrides))
        await served.server.start()
        started.append(served)
        return served

    yield build
    for served in started:
        served.runner.release.set()
        await served.server.stop()


@pytest.mark.parametrize("credential", [b"Bearer \xff\xfe\xc3", "Bearer jeton-\u00e9t\u00e9".encode(),
                                        b"\xe2\x82\xac " + TOKEN.encode()])
async def test_non_ascii_authorization_is_401(serve, credential, caplog):
    served = await serve()
    reader, writer = await served.connect()
    writer.write(head(2, credential) + b"{}")
    await writer.drain()
    status, body = await read_answer(reader)
    writer.close()
    assert (status, body["outcome"]) == (401, "unauthorized")
    assert served.count("unauthorized") == 1 and served.count("error") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_client_hanging_up_mid_body_is_counted_apart_and_not_an_error(serve, caplog):
    served = await serve()
    caplog.set_level(logging.DEBUG, logger="exporter.webhook")
    reader, writer = await served.connect()
    writer.write(head(4096) + b'{"version": "4", "alerts": [')
    await writer.drain()
    await served.entered.wait()
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(served.done.wait(), timeout=30)
    assert served.count("client_disconnected") == 1
    assert served.count("error") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    lines = [r for r in caplog.records if "hung up" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno <= logging.INFO
    assert served.runner.started == []


async def test_a_stalled_body_gets_408_after_the_body_timeout(serve):
    served = await serve(body_timeout_seconds=0.3)
    reader, writer = await served.connect()
    begin = time.monotonic()
    writer.write(head(4096) + b'{"version": "4"')
    await writer.drain()
    status, body = await read_answer(reader)  # the sender never finishes; the server answers
    waited = time.monotonic() - begin
    writer.close()
    assert (status, body["outcome"]) == (408, "body_timeout")
    assert 0.3 <= waited < 10
    assert served.count("body_timeout") == 1 and served.count("error") == 0
    assert served.runner.started == []


async def test_shutdown_with_a_request_stuck_in_flight_ends_within_the_shutdown_timeout(serve):
    served = await serve(body_timeout_seconds=120, shutdown_timeout_seconds=0.5)
    reader, writer = await served.connect()
    writer.write(head(4096) + b'{"version": "4"')
    await writer.drain()
    await served.entered.wait()
    begin = time.monotonic()
    await served.server.stop()
    took = time.monotonic() - begin
    writer.close()
    assert 0.4 <= took < 5, f"shutdown took {took:.2f}s"
    assert served.runner.started == []


async def test_a_prompt_request_is_not_cut_by_the_timeouts(serve):
    served = await serve(body_timeout_seconds=5)
    reader, writer = await served.connect()
    body = json.dumps({"version": "4", "groupKey": "g", "status": "resolved",
                       "alerts": []}).encode()
    writer.write(head(len(body)) + body)
    await writer.drain()
    status, answer = await read_answer(reader)
    writer.close()
    assert (status, answer["outcome"]) == (200, "ignored")


def test_default_timeouts_fit_in_the_charts_termination_grace_period():
    grace = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))["terminationGracePeriodSeconds"]
    settings = WebhookSettings()
    assert 0 < settings.body_timeout_seconds < settings.shutdown_timeout_seconds
    # The exporter's other stop steps (tasks, scraper, API client) need a few seconds too.
    assert settings.shutdown_timeout_seconds <= grace - 10
    assert {"client_disconnected", "body_timeout"} <= set(OUTCOMES)


def test_timeout_settings_are_validated():
    assert check(WebhookSettings(body_timeout_seconds=0), "webhook")
    assert check(WebhookSettings(shutdown_timeout_seconds=0), "webhook")
    assert check(WebhookSettings(), "webhook") == []
