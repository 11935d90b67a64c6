"""Copies the pipeline's cumulative counts into an ``exporter.snapshot.SliSnapshot``.

The judge and the baseline read per-(namespace, service, datapath) counts from
here instead of parsing the exposition. ``__other__`` (overflow) groups are left
out: they mix unrelated services and cannot be judged. Pure module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from exporter import metrics_contract as mc
from exporter.metrics_contract import CONNECT_BUCKETS, OTHER_SERVICE, REQUEST_BUCKETS
from exporter.sli.series import Vec
from exporter.snapshot import ServiceSli, SliKey, SliSnapshot

CONNECT = mc.SERVICE_CONNECT_DURATION.name
ATTEMPTS = mc.SERVICE_CONNECT_ATTEMPTS.name
FLOWS = mc.SERVICE_FLOWS.name
DROPS = mc.SERVICE_DROPS.name
REQUESTS = mc.SERVICE_REQUESTS.name
REQUEST_DURATION = mc.SERVICE_REQUEST_DURATION.name


def build_snapshot(vecs: dict[str, Vec], now: float) -> SliSnapshot:
    """Every service's cumulative SLI counts at ``now`` (epoch seconds)."""
    acc: dict[SliKey, dict[str, Any]] = {}

    def slot(key: tuple[Any, ...]) -> dict[str, Any] | None:
        svc = key[0]
        if svc.name == OTHER_SERVICE:
            return None
        sli_key = SliKey(svc.namespace, svc.name, key[1])
        found = acc.get(sli_key)
        if found is None:
            found = acc[sli_key] = {"attempts": {}, "drops": {}, "requests": {}, "flows": 0}
        return found

    def each(name: str) -> Iterator[tuple[tuple[Any, ...], Any, dict[str, Any]]]:
        vec = vecs.get(name)
        if vec is None:
            return
        for key, value in list(vec.values.items()):
            target = slot(key)
            if target is not None:
                yield key, value, target

    for key, row, target in each(CONNECT):
        target["connect"] = (tuple(row[:-1]), row[-1])
    for key, count, target in each(ATTEMPTS):
        target["attempts"][key[2]] = count
    for key, count, target in each(FLOWS):
        target["flows"] += count
    for key, count, target in each(DROPS):
        target["drops"][key[2]] = target["drops"].get(key[2], 0) + count
    for key, count, target in each(REQUESTS):
        if key[2] == "http":
            target["requests"][key[3]] = count
    for key, row, target in each(REQUEST_DURATION):
        if key[2] == "http":
            target["request"] = (tuple(row[:-1]), row[-1])

    no_connect = ((0,) * (len(CONNECT_BUCKETS) + 1), 0.0)
    no_request = ((0,) * (len(REQUEST_BUCKETS) + 1), 0.0)
    services = {}
    for sli_key, parts in acc.items():
        connect_counts, connect_sum = parts.get("connect", no_connect)
        request_counts, request_sum = parts.get("request", no_request)
        services[sli_key] = ServiceSli(
            connect_counts=connect_counts,
            connect_sum=connect_sum,
            attempts=parts["attempts"],
            flows=parts["flows"],
            drops=parts["drops"],
            requests=parts["requests"],
            request_counts=request_counts,
            request_sum=request_sum,
        )
    return SliSnapshot(
        time=now,
        connect_bounds=CONNECT_BUCKETS,
        request_bounds=REQUEST_BUCKETS,
        services=services,
    )
