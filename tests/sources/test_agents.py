"""Scraping Cilium agents' /metrics against real aiohttp servers on 127.0.0.1.

Matrix:
- a healthy 1.18 agent: every drop/forward counter of the fixture is exported as is,
  labelled with node and datapath; up 1; the KPR gauge (1) reaches the callback;
- one agent failing while a healthy one is scraped in the same round: timeout (the
  handler waits on an event nobody sets), HTTP 500, garbage, a body over the limit
  (announced by Content-Length, or streamed without it), nobody listening:
  up 0, its error kind counted, no drop/forward series, None to the callback, one
  warning naming node/URL/error, and the healthy node untouched;
- log lines only on state changes (fail, fail again, recover);
- an agent older than 1.17 (no feature gauge): counters exported, None to the callback;
- metric spellings: ``cilium_datapath_*`` and exposition without TYPE lines;
- agents scraped concurrently; removed targets vanish; discovery errors keep the last
  targets; ``run()`` paces itself through the injected sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.sources.agents import (
    ERROR_KINDS,
    AgentCollector,
    AgentScrapeError,
    AgentScraper,
    parse_agent_metrics,
    static_discovery,
)
from exporter.sources.agents_settings import AgentSettings

DATA = Path(__file__).resolve().parents[1] / "data" / "agent_metrics"
LOGGER = "exporter.sources.agents"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def counters(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of ``name`` in ``text``: sorted label pairs -> value."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


class Agents:
    """One local HTTP server playing several agents at /nodes/<node>/metrics."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.never = asyncio.Event()  # the hanging agent waits on it; no test sets it
        self._runner: web.AppRunner | None = None
        self.port = 0

    def serve(self, node: str, handler: Handler) -> str:
        self.handlers[node] = handler
        return self.url(node)

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.port}/nodes/{node}/metrics"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/nodes/{node}/metrics", self._route)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _route(self, request: web.Request) -> web.StreamResponse:
        handler = self.handlers.get(request.match_info["node"])
        if handler is None:
            raise web.HTTPNotFound()
        return await handler(request)

    # --- behaviours ------------------------------------------------------------------

    @staticmethod
    def text(body: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(text=body, content_type="text/plain", charset="utf-8")

        return handler

    def hang(self) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            await self.never.wait()
            return web.Response(text="too late")

        return handler

    @staticmethod
    def status(code: int) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=code, text="boom")

        return handler

    @staticmethod
    def streamed(body: str) -> Handler:
        """Chunked transfer: no Content-Length for the client to check up front."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            data = body.encode()
            for start in range(0, len(data), 8192):
                await response.write(data[start:start + 8192])
            await response.write_eof()
            return response

        return handler


class Resolver:
    def __init__(self, datapaths: dict[str, str]) -> None:
        self.datapaths = datapaths

    def datapath(self, node: str) -> str:
        return self.datapaths.get(node, "unknown")


class Gauges:
    """Records what the scraper hands to the datapath tracker."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def __call__(self, node: str, value: float | None) -> None:
        self.calls.append((node, value))

    def last(self) -> dict[str, float | None]:
        return dict(self.calls)


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    server = Agents()
    await server.start()
    yield server
    await server.stop()


def make(
    targets: dict[str, str], **overrides: object
) -> tuple[AgentScraper, CollectorRegistry, Gauges]:
    settings = AgentSettings(**{"timeout_seconds": 2.0, "max_body_bytes": 200_000, **overrides})
    gauges = Gauges()
    scraper = AgentScraper(
        settings=settings, discover=static_discovery(targets), on_kpr_gauge=gauges,
        clock=lambda: 1_700_000_000.0,
    )
    registry = CollectorRegistry()
    registry.register(AgentCollector(source=scraper, resolver=Resolver({"worker-1": "ebpf"})))
    return scraper, registry, gauges


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


def series(registry: CollectorRegistry, name: str, node: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of ``name`` for ``node``, keyed by the remaining labels (sorted pairs)."""
    text = generate_latest(registry).decode()
    return {
        tuple(sorted((k, v) for k, v in labels if k != "node")): value
        for labels, value in (
            (tuple(s.labels.items()), s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and s.labels.get("node") == node
        )
    }


# --- a healthy agent -----------------------------------------------------------------------


async def test_fixture_counters_are_exported_as_the_agent_reports_them(agents: Agents) -> None:
    text = fixture("cilium-1.18.txt")
    scraper, registry, gauges = make({"worker-1": agents.serve("worker-1", Agents.text(text))})
    async with scraper:
        await scraper.scrape_once()

    drops = counters(text, "cilium_drop_count_total")
    forwards = counters(text, "cilium_forward_count_total")
    assert len(drops) == 14 and len(forwards) == 2
    assert series(registry, "kpr_node_drops_total", "worker-1") == {
        tuple(sorted((*labels, ("datapath", "ebpf")))): value for labels, value in drops.items()
    }
    assert series(registry, "kpr_node_forwards_total", "worker-1") == {
        tuple(sorted((*labels, ("datapath", "ebpf")))): value for labels, value in forwards.items()
    }
    get = registry.get_sample_value
    assert get("kpr_node_drops_total", {
        "node": "worker-1", "datapath": "ebpf",
        "reason": "Service backend not found", "direction": "EGRESS",
    }) == 47
    assert get("kpr_agent_up", {"node": "worker-1"}) == 1
    assert get("kpr_agent_scrape_duration_seconds", {"node": "worker-1"}) >= 0
    for kind in ERROR_KINDS:
        assert get("kpr_agent_scrape_errors_total", {"node": "worker-1", "kind": kind}) == 0
    assert gauges.calls == [("worker-1", 1.0)]
    state = scraper.states()["worker-1"]
    assert state.snapshot is not None and state.snapshot.version == "1.18.4"
    assert state.last_success == 1_700_000_000.0
    assert scraper.readiness() is None


async def test_not_ready_before_the_first_round(agents: Agents) -> None:
    scraper, registry, _ = make({})
    assert scraper.readiness() is not None
    await scraper.scrape_once()
    assert scraper.readiness() is None
    assert series(registry, "kpr_agent_up", "worker-1") == {}


# --- failing agents next to a healthy one -----------------------------------------------------


FAILURES = {
    "timeout": lambda a: a.serve("worker-2", a.hang()),
    "http": lambda a: a.serve("worker-2", Agents.status(500)),
    "parse": lambda a: a.serve("worker-2", Agents.text("<html><body>Bad gateway</body></html>")),
    "oversize": lambda a: a.serve("worker-2", Agents.text("x 1\n" * 60_000)),
    "oversize-streamed": lambda a: a.serve("worker-2", Agents.streamed("x 1\n" * 60_000)),
    "connect": lambda a: closed_port_url(),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
async def test_failing_agent_is_down_and_the_others_are_not(
    agents: Agents, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = fixture("cilium-1.18.txt")
    healthy = agents.serve("worker-1", Agents.text(text))
    broken = FAILURES[failure](agents)
    timeout = 0.3 if failure == "timeout" else 5.0
    scraper, registry, gauges = make(
        {"worker-1": healthy, "worker-2": broken}, timeout_seconds=timeout
    )
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with scraper:
        await scraper.scrape_once()

    get = registry.get_sample_value
    kind = failure.removesuffix("-streamed")
    assert get("kpr_agent_up", {"node": "worker-2"}) == 0
    assert get("kpr_agent_scrape_errors_total", {"node": "worker-2", "kind": kind}) == 1
    assert series(registry, "kpr_node_drops_total", "worker-2") == {}
    assert series(registry, "kpr_node_forwards_total", "worker-2") == {}
    assert get("kpr_agent_up", {"node": "worker-1"}) == 1
    assert len(series(registry, "kpr_node_drops_total", "worker-1")) == 14
    assert gauges.last() == {"worker-1": 1.0, "worker-2": None}

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    kv = warnings[0].kv
    assert (kv["node"], kv["url"], kv["kind"]) == ("worker-2", broken, kind)
    assert kv["error"]
    assert scraper.states()["worker-2"].error == kv["error"]


async def test_state_changes_are_logged_once(agents: Agents, caplog: pytest.LogCaptureFixture) -> None:
    text = fixture("cilium-1.18.txt")
    url = agents.serve("worker-1", Agents.status(503))
    scraper, registry, gauges = make({"worker-1": url})
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with scraper:
        await scraper.scrape_once()
        await scraper.scrape_once()
        agents.serve("worker-1", Agents.text(text))
        await scraper.scrape_once()
        await scraper.scrape_once()

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "agent scrape failed"),
        ("INFO", "agent scrape recovered"),
    ]
    assert "HTTP 503" in caplog.records[0].kv["error"]
    get = registry.get_sample_value
    assert get("kpr_agent_scrape_errors_total", {"node": "worker-1", "kind": "http"}) == 2
    assert get("kpr_agent_up", {"node": "worker-1"}) == 1
    assert len(series(registry, "kpr_node_drops_total", "worker-1")) == 14
    assert gauges.calls == [("worker-1", None), ("worker-1", None), ("worker-1", 1.0), ("worker-1", 1.0)]


async def test_a_failure_after_success_keeps_the_last_good_snapshot_but_exports_no_counters(
    agents: Agents,
) -> None:
    scraper, registry, gauges = make(
        {"worker-1": agents.serve("worker-1", Agents.text(fixture("cilium-1.18.txt")))}
    )
    async with scraper:
        await scraper.scrape_once()
        agents.serve("worker-1", Agents.text("garbage"))
        await scraper.scrape_once()

    state = scraper.states()["worker-1"]
    assert not state.up and state.error_kind == "parse"
    assert state.snapshot is not None and state.snapshot.kpr_enabled == 1.0
    assert series(registry, "kpr_node_drops_total", "worker-1") == {}
    assert gauges.calls[-1] == ("worker-1", None)


# --- versions and spellings -----------------------------------------------------------------


async def test_agent_without_feature_gauge_hands_none(agents: Agents) -> None:
    text = fixture("cilium-1.16.txt")
    scraper, registry, gauges = make({"worker-1": agents.serve("worker-1", Agents.text(text))})
    async with scraper:
        await scraper.scrape_once()

    assert gauges.calls == [("worker-1", None)]
    assert registry.get_sample_value("kpr_agent_up", {"node": "worker-1"}) == 1
    assert len(series(registry, "kpr_node_drops_total", "worker-1")) == 14
    assert scraper.states()["worker-1"].snapshot.version == "1.16.19"


@pytest.mark.parametrize(
    ("name", "kpr"), [("datapath-spelling.txt", None), ("untyped.txt", 0.0)]
)
async def test_spelling_variants_read_like_the_canonical_names(
    agents: Agents, name: str, kpr: float | None
) -> None:
    scraper, registry, gauges = make(
        {"worker-1": agents.serve("worker-1", Agents.text(fixture(name)))}
    )
    async with scraper:
        await scraper.scrape_once()

    dp = ("datapath", "ebpf")
    assert series(registry, "kpr_node_drops_total", "worker-1") == {
        (dp, ("direction", "EGRESS"), ("reason", "Service backend not found")): 47,
        (dp, ("direction", "INGRESS"), ("reason", "CT: Map insertion failed")): 3,
        (dp, ("direction", "INGRESS"), ("reason", "Policy denied")): 15234,
    }
    assert series(registry, "kpr_node_forwards_total", "worker-1") == {
        (dp, ("direction", "EGRESS")): 1380962118,
        (dp, ("direction", "INGRESS")): 1509230446,
    }
    assert gauges.calls == [("worker-1", kpr)]


def test_parse_prefers_the_released_spelling_and_sums_extra_labels() -> None:
    snapshot = parse_agent_metrics(
        'cilium_datapath_drop_count_total{direction="EGRESS",reason="Policy denied"} 5\n'
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied",cpu="0"} 1\n'
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied",cpu="1"} 2\n'
    )
    assert snapshot.drops == {("Policy denied", "EGRESS"): 3}
    assert snapshot.forwards == {} and snapshot.kpr_enabled is None


@pytest.mark.parametrize(
    "body",
    [
        "",
        "# only a comment\n",
        "garbage",
        '{"json": true}',
        "hubble_flows_processed_total 3\n",
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"} many\n',
        'cilium_forward_count_total{direction="EGRESS" 1\n',
    ],
)
def test_parse_rejects_what_is_not_an_agent_exposition(body: str) -> None:
    with pytest.raises(AgentScrapeError) as caught:
        parse_agent_metrics(body)
    assert caught.value.kind == "parse"


def test_an_agent_without_the_families_is_not_an_error() -> None:
    snapshot = parse_agent_metrics("# TYPE cilium_endpoint gauge\ncilium_endpoint 37\n")
    assert (snapshot.drops, snapshot.forwards, snapshot.kpr_enabled) == ({}, {}, None)


# --- targets, concurrency, pacing ----------------------------------------------------------------


async def test_agents_are_scraped_concurrently(agents: Agents) -> None:
    # Each answer waits until both requests are in flight: a one-by-one scraper times out.
    barrier = asyncio.Barrier(2)
    text = fixture("untyped.txt")

    async def together(request: web.Request) -> web.StreamResponse:
        await barrier.wait()
        return web.Response(text=text)

    scraper, registry, _ = make(
        {"worker-1": agents.serve("worker-1", together), "worker-2": agents.serve("worker-2", together)},
        timeout_seconds=5.0,
    )
    async with scraper:
        await asyncio.wait_for(scraper.scrape_once(), 10)
    assert registry.get_sample_value("kpr_agent_up", {"node": "worker-1"}) == 1
    assert registry.get_sample_value("kpr_agent_up", {"node": "worker-2"}) == 1


async def test_removed_targets_vanish_and_discovery_errors_keep_the_last_targets(
    agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    text = fixture("untyped.txt")
    answers: list[dict[str, str] | Exception] = [
        {"worker-1": agents.serve("worker-1", Agents.text(text)),
         "worker-2": agents.serve("worker-2", Agents.text(text))},
        RuntimeError("API server unreachable"),
        RuntimeError("API server unreachable"),
        {"worker-1": agents.url("worker-1")},
    ]

    async def discover() -> dict[str, str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    gauges = Gauges()
    scraper = AgentScraper(settings=AgentSettings(), discover=discover, on_kpr_gauge=gauges)
    registry = CollectorRegistry()
    registry.register(AgentCollector(source=scraper, resolver=Resolver({})))
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with scraper:
        await scraper.scrape_once()
        await scraper.scrape_once()
        await scraper.scrape_once()
        assert sorted(scraper.states()) == ["worker-1", "worker-2"]
        await scraper.scrape_once()

    assert sorted(scraper.states()) == ["worker-1"]
    assert registry.get_sample_value("kpr_agent_up", {"node": "worker-2"}) is None
    assert series(registry, "kpr_node_drops_total", "worker-2") == {}
    assert gauges.calls[-2:] == [("worker-2", None), ("worker-1", 0.0)]
    messages = [r.getMessage() for r in caplog.records if "discovery" in r.getMessage()]
    assert messages == [
        "agent discovery failed; scraping the last known agents",
        "agent discovery recovered",
    ]


async def test_run_scrapes_once_per_interval_through_the_injected_sleep(agents: Agents) -> None:
    class Stop(Exception):
        pass

    slept: list[float] = []
    ticks = itertools.count(100.0, 0.25)  # every reading of the clock advances it

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise Stop

    url = agents.serve("worker-1", Agents.text(fixture("untyped.txt")))
    gauges = Gauges()
    scraper = AgentScraper(
        settings=AgentSettings(interval_seconds=15.0), discover=static_discovery({"worker-1": url}),
        on_kpr_gauge=gauges, monotonic=lambda: next(ticks), sleep=sleep,
    )
    async with scraper:
        with pytest.raises(Stop):
            await scraper.run()
    # A round reads the clock four times (round start/end, scrape start/end): 0.75 s elapse.
    assert slept == [14.25, 14.25, 14.25]
    assert len(gauges.calls) == 3


def test_scrape_errors_are_source_errors_not_library_errors() -> None:
    import aiohttp

    from exporter.sources.errors import SourceError

    assert issubclass(AgentScrapeError, SourceError)
    assert not issubclass(AgentScrapeError, (aiohttp.ClientError, ValueError))


def compressed(body: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.Response(text=body, content_type="text/plain")
        response.enable_compression(web.ContentCoding.gzip)
        return response

    return handler


async def test_gzip_bodies_are_read_and_the_limit_applies_after_decompression(
    agents: Agents,
) -> None:
    small = agents.serve("worker-1", compressed(fixture("cilium-1.18.txt")))
    bomb = agents.serve("worker-2", compressed("x 1\n" * 60_000))  # ~1 kB on the wire
    scraper, registry, _ = make({"worker-1": small, "worker-2": bomb})
    async with scraper:
        await scraper.scrape_once()
    assert len(series(registry, "kpr_node_drops_total", "worker-1")) == 14
    state = scraper.states()["worker-2"]
    assert (state.error_kind, state.error) == ("oversize", "body exceeds the limit of 200000 bytes")


async def test_a_failing_gauge_consumer_does_not_stop_the_scraper(
    agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(node: str, value: float | None) -> None:
        raise RuntimeError("tracker bug")

    url = agents.serve("worker-1", Agents.text(fixture("untyped.txt")))
    scraper = AgentScraper(
        settings=AgentSettings(), discover=static_discovery({"worker-1": url}), on_kpr_gauge=broken
    )
    async with scraper:
        await scraper.scrape_once()
        await scraper.scrape_once()
    assert scraper.states()["worker-1"].up
    assert sum("gauge consumer failed" in r.getMessage() for r in caplog.records) == 2
