"""The rules part of ``bench.bench_sizing``: each rule file's evaluation times on one fleet.

Prometheus runs with a copy of a rule file; for each further file the copy is overwritten
and Prometheus reloads it (``/-/reload``), so several rule files (e.g. the shipped one and
an earlier version) are measured on the same data, one after the other. For each: every
rule's and group's ``evaluationTime`` from ``/api/v1/rules`` once every rule was evaluated
after the switch, the samples the slowest rules' queries read (Prometheus' query
statistics, which do not depend on the machine's load) and Prometheus' CPU per minute.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from exporter.demo.prometheus import Prometheus

RULE_TARGET_S = 1.0
TICKS = os.sysconf("SC_CLK_TCK")
#: Seconds one rule file's measurement takes at most: a 30 s evaluation and its group time.
PER_FILE_S = 45.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min) on {os.cpu_count()} cores"


async def rule_timings(prometheus: Prometheus, after: float, timeout: float) -> dict[str, Any]:
    """Once every rule was evaluated after ``after`` without error: the slowest rules, groups."""
    deadline = time.monotonic() + timeout
    while True:
        groups = await prometheus.rule_groups()
        rules = [(g["name"], r) for g in groups for r in g["rules"]]
        fresh = [r for _, r in rules if _epoch(r.get("lastEvaluation")) > after]
        if rules and len(fresh) == len(rules) and all(r.get("health") == "ok" for _, r in rules):
            break
        if time.monotonic() > deadline:
            broken = {r["name"]: r.get("lastError") for _, r in rules if r.get("lastError")}
            raise SystemExit(f"rules not all evaluated after {after:.0f}: {broken}")
        await asyncio.sleep(5.0)  # waiting on Prometheus' own 30 s evaluation interval
    slowest = sorted(((r["evaluationTime"], g, r["name"], r["query"]) for g, r in rules),
                     reverse=True)
    per_name: dict[str, tuple[float, int]] = {}
    for seconds, name in ((r["evaluationTime"], r["name"]) for _, r in rules
                          if r.get("type") == "recording"):
        total, count = per_name.get(name, (0.0, 0))
        per_name[name] = (total + seconds, count + 1)
    return {"rules": len(rules), "slowest": slowest[:5], "per_name": per_name,
            "groups": {g["name"]: g["evaluationTime"] for g in groups}}


async def samples_read(prometheus: Prometheus, expr: str) -> tuple[int | None, float]:
    """Samples one evaluation of ``expr`` reads now (Prometheus' query statistics, which do
    not depend on the machine's load) and the wall time it took."""
    import aiohttp

    began = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300.0)) as http:
        async with http.get(f"{prometheus.url}/api/v1/query",
                            params={"query": expr, "stats": "all"}) as response:
            body = await response.json()
    seconds = time.monotonic() - began
    stats = (body.get("data") or {}).get("stats") or {}
    total = (stats.get("samples") or {}).get("totalQueryableSamples")
    return (int(total) if total is not None else None), seconds


async def reload(prometheus: Prometheus) -> None:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120.0)) as http:
        async with http.post(f"{prometheus.url}/-/reload") as response:
            if response.status != 200:
                raise SystemExit(f"Prometheus refused to reload the rules: {await response.text()}")


def _epoch(text: str | None) -> float:
    """An RFC 3339 time of the rules API (nanoseconds, ``Z``) as seconds; 0 for never."""
    if not text or text.startswith("0001-"):
        return 0.0
    whole, _, fraction = text.rstrip("Z").split("+")[0].partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return seconds + float("0." + (fraction or "0"))


async def measure_one(prometheus: Prometheus, source: Path, data_end: float) -> float:
    """Print one rule file's timings; returns its slowest rule's seconds."""
    before, t0 = cpu_seconds(prometheus.pid or 0), time.monotonic()
    after = time.time() + 1.0
    timings = await rule_timings(prometheus, after, timeout=240.0)
    cpu = (cpu_seconds(prometheus.pid or 0) - before) / (time.monotonic() - t0) * 60
    print(f"rules from {source.name}: {timings['rules']} rules, evaluated from "
          f"{after - data_end:+.0f} s after the data's end")
    for seconds, group, name, _ in timings["slowest"]:
        print(f"  rule {group} / {name}: {seconds:.3f} s")
    split = sorted(((total, count, name) for name, (total, count) in timings["per_name"].items()
                    if count > 1), reverse=True)
    for total, count, name in split[:4]:
        print(f"  recorded name {name}: {total:.3f} s over its {count} rules")
    for group, seconds in sorted(timings["groups"].items()):
        print(f"  group {group}: {seconds:.3f} s")
    for seconds, group, name, query in timings["slowest"]:
        read, again = await samples_read(prometheus, query)
        print(f"  rule {name}: its query alone reads "
              f"{read if read is None else format(read, ',')} samples in {again:.3f} s")
    worst = timings["slowest"][0]
    print(f"  Prometheus CPU while evaluating only rules {cpu:.1f} s per minute; {load()}")
    print(f"slowest rule ({source.name}): {worst[0]:.3f} s ({worst[2]}) (target < "
          f"{RULE_TARGET_S:g} s, ratio {worst[0] / RULE_TARGET_S:.2f})")
    return float(worst[0])


async def measure(prometheus: Prometheus, live: Path, sources: list[Path],
                  data_end: float) -> None:
    """Each rule file in turn (the first is already loaded as ``live``), starting so that
    the measurements straddle the data's end rather than drift ever further past it."""
    start = data_end + 5.0 - PER_FILE_S * (len(sources) - 1) / 2
    wait = max(0.0, start - time.time())
    print(f"rules: waiting {wait:.0f} s (the data ends {data_end - time.time():+.0f} s from now)")
    await asyncio.sleep(wait)  # the data's end is a wall-clock time
    for i, source in enumerate(sources):
        if i:
            shutil.copyfile(source, live)
            await reload(prometheus)
        await measure_one(prometheus, source, data_end)
