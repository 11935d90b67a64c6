"""A misbehaving agent endpoint against the scraper, on a real aiohttp server on 127.0.0.1.

Matrix (each one a fault seen under load, reproduced here first):
- a 50 MB body streamed without Content-Length: refused as ``oversize`` without ever
  holding more than a few chunks of it (allocation peak far below the limit);
- failing scrapes (over the limit, or broken in the middle) leave nothing behind even
  with the cycle collector off: no body, no parser, no traceback kept alive;
- a big valid body is filtered and parsed in a worker thread, chunk by chunk: every byte
  goes through the off-loop filter and the event loop never stalls for long;
- a sample line given twice (same name and labels, in any label order): the first value
  counts, as in Prometheus, not the sum, and each repeat is counted per node;
- more series than ``agents.max_series``: the first ones are kept, the rest are dropped
  and counted per node, with one warning.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from exporter.sources import agent_text
from tests.sources.agent_harness import (  # noqa: F401 (agents: a fixture)
    LOGGER,
    Agents,
    agents,
    fixture,
    make,
    series,
)

MIB = 1024 * 1024
#: Lines of families the exporter does not read, as a big agent has thousands of.
FILLER = "".join(
    f'cilium_bpf_map_ops_total{{map_name="cilium_lb4_services_v2",operation="lookup",'
    f'outcome="success",shard="{i}"}} {i * 7}\n'
    for i in range(512)
).encode()


def extra_drops(count: int, start: int = 0) -> str:
    """Drop counter lines with an extra label (summed away), each its own series."""
    return "".join(
        f'cilium_drop_count_total{{direction="INGRESS",reason="Policy denied",'
        f'endpoint="{i}"}} 1\n'
        for i in range(start, start + count)
    )


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def test_a_streamed_50_mb_body_is_refused_without_being_held(
    agents: Agents, traced: None
) -> None:
    times = 50 * MIB // len(FILLER)
    url = agents.serve("worker-1", Agents.repeated(b"", FILLER, times))
    scraper, registry, _ = make({"worker-1": url}, max_body_bytes=16 * MIB)
    async with scraper:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        await scraper.scrape_once()
        peak = tracemalloc.get_traced_memory()[1] - before

    state = scraper.states()["worker-1"]
    assert (state.error_kind, state.error) == (
        "oversize", f"body exceeds the limit of {16 * MIB} bytes")
    assert registry.get_sample_value(
        "kpr_agent_scrape_errors_total", {"node": "worker-1", "kind": "oversize"}) == 1
    assert peak < 4 * MIB, f"{peak / MIB:.1f} MiB allocated at once for a 16 MiB limit"


async def test_failed_scrapes_leave_nothing_alive_without_the_cycle_collector(
    agents: Agents, no_cycle_collector: None, traced: None
) -> None:
    good = fixture("cilium-1.18.txt")
    times = 4 * MIB // len(FILLER)
    broken_tail = b'cilium_drop_count_total{direction="EGRESS"} many\n'
    healthy = agents.serve("worker-1", Agents.text(good))
    oversize = agents.serve("worker-2", Agents.repeated(b"", FILLER, times * 4))
    broken = agents.serve("worker-3", Agents.repeated(
        good.encode() + extra_drops(500).encode(), FILLER, times, broken_tail))
    scraper, _, _ = make(
        {"worker-1": healthy, "worker-2": oversize, "worker-3": broken},
        max_body_bytes=6 * MIB,
    )
    async with scraper:
        await scraper.scrape_once()  # warm-up: session, connections, first states
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            await scraper.scrape_once()
        kept = tracemalloc.get_traced_memory()[0] - before

    states = scraper.states()
    assert [states[n].error_kind for n in ("worker-1", "worker-2", "worker-3")] == [
        "", "oversize", "parse"]
    assert states["worker-2"].errors["oversize"] == 4
    assert states["worker-3"].errors["parse"] == 4
    assert kept < MIB, f"{kept / MIB:.1f} MiB still allocated after 6 failed scrapes"


async def test_a_big_valid_body_is_parsed_off_the_event_loop(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = (fixture("cilium-1.18.txt") + extra_drops(1500)).encode()
    wanted = extra_drops(2048, start=1500).encode()  # repeated: over the cap, then repeats
    times = 24
    url = agents.serve("worker-1", Agents.repeated(head, wanted + FILLER, times))
    body_size = len(head) + times * len(wanted + FILLER)
    loop_thread = threading.get_ident()
    fed: list[tuple[int, int]] = []  # (thread, bytes)
    real_feed = agent_text.ExpositionFilter.feed

    def feed(self: agent_text.ExpositionFilter, chunk: bytes) -> None:
        fed.append((threading.get_ident(), len(chunk)))
        real_feed(self, chunk)

    monkeypatch.setattr(agent_text.ExpositionFilter, "feed", feed)
    scraper, registry, _ = make(
        {"worker-1": url}, max_body_bytes=16 * MIB, timeout_seconds=60.0)

    stalls: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:  # measures, does not synchronise
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            stalls.append(time.perf_counter() - started - 0.001)

    async with scraper:
        prober = asyncio.create_task(probe())
        await scraper.scrape_once()
        done.set()
        await prober

    assert scraper.states()["worker-1"].up
    assert len(series(registry, "kpr_node_drops_total", "worker-1")) == 14
    assert stalls and max(stalls) < 0.25, f"event loop stalled {max(stalls) * 1000:.0f} ms"
    assert fed, "the filter never ran"
    assert loop_thread not in {thread for thread, _ in fed}
    assert sum(size for _, size in fed) == body_size


async def test_a_repeated_sample_keeps_its_first_value_and_is_counted(agents: Agents) -> None:
    body = (
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"} 5\n'
        'cilium_forward_count_total{direction="EGRESS"} 100\n'
        'cilium_drop_count_total{reason="Policy denied",direction="EGRESS"} 7\n'
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"} 9\n'
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied",cpu="1"} 1\n'
    )
    url = agents.serve("worker-1", Agents.text(body))
    scraper, registry, _ = make({"worker-1": url})
    async with scraper:
        await scraper.scrape_once()
        get = registry.get_sample_value
        assert get("kpr_node_drops_total", {
            "node": "worker-1", "datapath": "ebpf",
            "reason": "Policy denied", "direction": "EGRESS"}) == 6  # 5 + the cpu="1" series
        assert get("kpr_agent_duplicate_samples_total", {"node": "worker-1"}) == 2
        assert get("kpr_agent_series_dropped_total", {"node": "worker-1"}) == 0
        await scraper.scrape_once()
    assert registry.get_sample_value(
        "kpr_agent_duplicate_samples_total", {"node": "worker-1"}) == 4


async def test_series_over_the_cap_are_dropped_and_counted(
    agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    body = fixture("untyped.txt") + extra_drops(10)  # 6 series, then 10 more
    url = agents.serve("worker-1", Agents.text(body))
    scraper, registry, gauges = make({"worker-1": url}, max_series=6)
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with scraper:
        await scraper.scrape_once()
        await scraper.scrape_once()

    get = registry.get_sample_value
    assert get("kpr_agent_up", {"node": "worker-1"}) == 1
    assert get("kpr_agent_series_dropped_total", {"node": "worker-1"}) == 20
    assert get("kpr_agent_duplicate_samples_total", {"node": "worker-1"}) == 0
    dp = ("datapath", "ebpf")
    assert series(registry, "kpr_node_drops_total", "worker-1") == {
        (dp, ("direction", "EGRESS"), ("reason", "Service backend not found")): 47,
        (dp, ("direction", "INGRESS"), ("reason", "CT: Map insertion failed")): 3,
        (dp, ("direction", "INGRESS"), ("reason", "Policy denied")): 15234,
    }
    assert gauges.calls == [("worker-1", 0.0), ("worker-1", 0.0)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["agent series over the limit dropped"]
    assert warnings[0].kv["dropped"] == 10 and warnings[0].kv["max_series"] == 6
