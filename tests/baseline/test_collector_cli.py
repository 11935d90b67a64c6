"""kpr_baseline_* exposition and ``kpr-exporter baseline show|capture|clear``."""

from __future__ import annotations

import io
import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.baseline.baseline_cmd import cmd_baseline
from exporter.baseline.collector import BaselineCollector
from exporter.baseline.model import Baseline
from exporter.baseline.settings import BaselineSettings
from exporter.baseline.store import FileStore
from exporter.judge.history import Cohort
from tests.judge.samples import BOUNDS, counts_at, sli, snap

COUNTS = (0, 0, 0, 0, 20, 100, 60, 18, 2, 0, 0, 0, 0, 0, 0, 0)


def _baseline() -> Baseline:
    busy = Cohort(COUNTS, attempts=204, established=200, flows=1000, drops=7, kpr_drops=2)
    udp_only = Cohort((0,) * len(COUNTS), flows=500, drops=1)
    return Baseline(1_700_000_000.0, 1_699_996_400.0, 1_700_000_000.0, BOUNDS,
                    {("shop", "cart"): busy, ("kube-system", "kube-dns"): udp_only})


def _samples(registry: CollectorRegistry) -> dict:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_collector_exports_the_frozen_figures():
    current: list[Baseline | None] = [None]
    registry = CollectorRegistry()
    registry.register(BaselineCollector(lambda: current[0]))
    assert _samples(registry) == {}  # no baseline: absent, not zero
    current[0] = _baseline()
    samples = _samples(registry)
    p99 = ("kpr_baseline_connect_duration_seconds",
           (("namespace", "shop"), ("q", "0.99"), ("service", "cart")))
    assert samples[p99] == pytest.approx(0.005)
    assert samples[("kpr_baseline_drop_ratio", (("namespace", "shop"), ("service", "cart")))] == \
        pytest.approx(0.007)
    assert samples[("kpr_baseline_drop_ratio",
                    (("namespace", "kube-system"), ("service", "kube-dns")))] == pytest.approx(0.002)
    assert not any(k[0] == "kpr_baseline_connect_duration_seconds" and ("service", "kube-dns") in k[1]
                   for k in samples)  # no handshakes, no quantiles
    assert samples[("kpr_baseline_capture_timestamp_seconds", ())] == 1_700_000_000.0


async def test_show_capture_clear(tmp_path, clock):
    store = FileStore(tmp_path / "baseline.json")
    out, err = io.StringIO(), io.StringIO()
    assert await cmd_baseline("show", store, out=out, err=err) == 1
    assert "no baseline stored" in out.getvalue()

    key = ("shop", "cart", "kube-proxy")
    earlier = snap(1000.0, {key: sli(counts_at(50, 0.001), flows=60)})
    later = snap(1600.0, {key: sli(counts_at(350, 0.001), refused=3, flows=420,
                                   drops={"SERVICE_BACKEND_NOT_FOUND": 2})})

    async def read_exporter():  # the lead's source reads a running exporter (async)
        return later

    code = await cmd_baseline("capture", store, settings=BaselineSettings(), clock=clock,
                              capture_source=read_exporter, earlier_source=lambda: earlier,
                              out=out, err=err)
    assert code == 0, err.getvalue()
    stored = await store.load()
    assert stored.source == "manual" and stored.captured_at == clock.now
    assert (stored.window_start, stored.window_end) == (1000.0, 1600.0)
    cohort = stored.cohort("shop", "cart")
    assert (cohort.connections, cohort.failures, cohort.kpr_drops) == (300, 3, 2)

    out = io.StringIO()
    assert await cmd_baseline("show", store, out=out, err=err) == 0
    assert "shop/cart" in out.getvalue() and "captured:" in out.getvalue()
    out = io.StringIO()
    assert await cmd_baseline("show", store, fmt="json", out=out, err=err) == 0
    assert json.loads(out.getvalue())["services"][0]["connections"] == 300

    assert await cmd_baseline("clear", store, out=out, err=err) == 0
    assert await store.load() is None


async def test_capture_refuses_an_empty_capture_and_reports_source_errors(tmp_path, clock):
    store = FileStore(tmp_path / "baseline.json")
    err = io.StringIO()
    quiet = snap(1600.0, {("shop", "cart", "kube-proxy"): sli(counts_at(3, 0.001), flows=5)})
    assert await cmd_baseline("capture", store, capture_source=lambda: quiet, clock=clock,
                              out=io.StringIO(), err=err) == 1
    assert "nothing stored" in err.getvalue()
    assert await store.load() is None

    def broken():
        raise ConnectionError("connection refused")

    err = io.StringIO()
    assert await cmd_baseline("capture", store, capture_source=broken, out=io.StringIO(),
                              err=err) == 1
    assert "connection refused" in err.getvalue()
    assert await cmd_baseline("capture", store, out=io.StringIO(), err=io.StringIO()) == 2
    assert await cmd_baseline("destroy", store, out=io.StringIO(), err=io.StringIO()) == 2


async def test_store_errors_are_reported_not_raised(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    err = io.StringIO()
    assert await cmd_baseline("show", FileStore(bad), out=io.StringIO(), err=err) == 1
    assert "unreadable baseline" in err.getvalue()
