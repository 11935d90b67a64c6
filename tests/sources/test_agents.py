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

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.sources.agents import (
    ERROR_KINDS,
    AgentCollector,
    AgentScrapeError,
    AgentScraper,
    static_discovery,
)
from exporter.sources.agents_settings import AgentSettings
from tests.sources.agent_harness import (  # noqa: F401 (agents: a fixture)
    LOGGER,
    Agents,
    Gauges,
    Handler,
    Resolver,
    agents,
    closed_port_url,
    counters,
    fixture,
    make,
    series,
)


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


def test_the_agents_lost_events_per_node_keep_the_last_reading_and_skip_silent_agents() -> None:
    from exporter.sources.agent_collector import AgentState, agent_lost_events
    from exporter.sources.agent_text import AgentSnapshot

    def state(node: str, up: bool, lost: dict[str, float]) -> AgentState:
        snap = AgentSnapshot(drops={}, forwards={}, kpr_enabled=None, hubble_lost=lost)
        return AgentState(node, f"http://127.0.0.1:1/{node}", up, 0.01, 1.0, 1.0, snap)

    states = {"a": state("a", True, {"perf_event_ring_buffer": 40.0, "hubble_ring_buffer": 2.0}),
              "b": state("b", False, {"perf_event_ring_buffer": 9.0}),  # the last good reading
              "c": state("c", True, {})}  # the body had no such counter: no data, not zero
    assert agent_lost_events(states) == {"a": 42, "b": 9}
