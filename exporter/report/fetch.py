"""Runs the report's queries against Prometheus and returns ``RawData``.

Two stages: first the timeline and current state (range queries over the whole report
range, instant queries at its end), from which ``timeline.plan_windows`` finds the before /
after split; then the window totals (instant queries at each window's end over the
window's length) of those windows and of the judge's short and long windows ending at the
report's end (the evidence re-runs the judge's tests on them), and the probes' results
over each migration phase (the verification matrices). Queries of a stage run concurrently, a few at a time; the first
``PrometheusError`` ends the fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from exporter.report import claims_queries, migration, queries, timeline, verification
from exporter.report.client import PrometheusClient
from exporter.report.data import Query, RawData, Window

CONCURRENCY = 4


#: The judge's default windows (``judge.short_window_seconds``, ``judge.long_window_seconds``).
JUDGE_WINDOWS = (300.0, 1800.0)


async def fetch(client: PrometheusClient, start: float, end: float,
                judge: tuple[float, float] = JUDGE_WINDOWS) -> RawData:
    step = queries.step_for(start, end)
    rate = queries.rate_window_for(step)
    whole = end - start
    ranged = {
        "phase": queries.PHASE,
        "datapath": queries.DATAPATH,
        "switches": queries.SWITCHES,
        "rollbacks": queries.ROLLBACKS,
        "service_drop_rates": queries.service_drop_rates(rate),
        "node_drop_rates": queries.node_drop_rates(rate),
        "handshake_p99": queries.handshake_p99(rate),
        **{name: build(rate) for name, build in claims_queries.RANGE_QUERIES.items()},
        **migration.RANGE_QUERIES,
    }
    instant = {
        "verdicts": queries.VERDICTS,
        "effects": queries.EFFECTS,
        "baseline_quantiles": queries.baseline_quantiles(whole),
        "baseline_drop_ratio": queries.baseline_drop_ratio(whole),
        "hubble_uptime": queries.hubble_uptime(whole),
        "lost_events": queries.lost_events(whole),
        "agent_uptime": queries.agent_uptime(whole),
        "node_drops": queries.node_drops(whole),
        "owners": queries.OWNERS,
        "persisted": queries.PERSISTED,
        **claims_queries.instant_queries(whole),
    }
    sent = [Query(name, expr, "range") for name, expr in ranged.items()]
    sent += [Query(name, expr, "instant", at=end) for name, expr in instant.items()]
    limit = asyncio.Semaphore(CONCURRENCY)

    first = await _run(limit, [
        *((name, lambda e=expr: client.query_range(e, start, end, step)) for name, expr in ranged.items()),
        *((name, lambda e=expr: client.query(e, end)) for name, expr in instant.items()),
    ])
    events = timeline.switch_events(first["switches"], first["datapath"], start, end)
    windows = timeline.plan_windows(start, end, events)
    judged = timeline.judge_windows(start, end, *judge)
    probed = verification.phase_windows(
        timeline.phase_segments(first["phase"], start, end, step))

    jobs: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    for window in (*windows, *judged):
        for name, build in queries.WINDOW_QUERIES.items():
            expr = build(window.seconds)
            sent.append(Query(name, expr, "instant", at=window.end, window=window.name))
            jobs.append((f"{window.name}:{name}", _instant(client, expr, window)))
    for window in windows:
        for name, claim in claims_queries.WINDOW_QUERIES.items():
            expr = claim(window.seconds)
            sent.append(Query(name, expr, "instant", at=window.end, window=window.name))
            jobs.append((f"{window.name}:{name}", _instant(client, expr, window)))
    for window in probed:
        expr = queries.probe_checks(window.seconds)
        sent.append(Query("probe_checks", expr, "instant", at=window.end, window=window.name))
        jobs.append((f"probe:{window.name}", _instant(client, expr, window)))
    second = await _run(limit, jobs)

    results = {**first, **second}
    return RawData(
        start=start, end=end, step=step, rate_window=rate, windows=windows,
        series={name: tuple(results[name]) for name in ranged},
        samples={name: tuple(v) for name, v in results.items() if name not in ranged},
        queries=tuple(sent),
        warnings=tuple(f"Prometheus warned: {w}" for w in client.warnings),
        judge_windows=judged, probe_windows=probed,
    )


def _instant(client: PrometheusClient, expr: str, window: Window) -> Callable[[], Awaitable[Any]]:
    return lambda: client.query(expr, window.end)


async def _run(limit: asyncio.Semaphore,
               jobs: list[tuple[str, Callable[[], Awaitable[Any]]]]) -> dict[str, Any]:
    async def one(name: str, job: Callable[[], Awaitable[Any]]) -> tuple[str, Any]:
        async with limit:
            return name, await job()

    tasks = [asyncio.ensure_future(one(name, job)) for name, job in jobs]
    try:
        done = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return dict(done)
