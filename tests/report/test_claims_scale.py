"""The Service count line: the exact count from kube-state-metrics, else a lower bound from
the traffic the exporter saw, else "unknown"; never a made-up zero."""

from __future__ import annotations

import math

from exporter.report.claims_scale import (
    CPU_CAVEATS, LATENCY_SCALE, THROUGHPUT_SCALE, scale_line, service_count,
)
from exporter.report.data import Query, RawData, Sample

KSM = Query("claims_services_ksm", "count(kube_service_info)", "instant", at=100.0)
SEEN = Query("claims_services_seen", "count(...)", "instant", at=100.0)


def raw(**samples: tuple[Sample, ...]) -> RawData:
    return RawData(start=0.0, end=100.0, step=5.0, rate_window=60.0, windows=(),
                   samples=samples, queries=(KSM, SEEN))


def test_kube_state_metrics_gives_the_exact_count_with_its_query() -> None:
    count = service_count(raw(claims_services_ksm=(Sample({}, 23456.0),),
                              claims_services_seen=(Sample({}, 12.0),)))
    assert count.exact and count.count is not None
    assert count.count.text == "23,456" and count.count.queries == (KSM,)
    line = scale_line(count)
    assert line.startswith("Your Service count is 23,456 (kube-state-metrics")
    assert f"~{LATENCY_SCALE:,} Services" in line and f"~{THROUGHPUT_SCALE:,} Services" in line
    assert "docs/claims.md" in line


def test_without_kube_state_metrics_the_count_is_a_lower_bound() -> None:
    count = service_count(raw(claims_services_ksm=(Sample({}, math.nan),),
                              claims_services_seen=(Sample({}, 12.0),)))
    assert not count.exact and count.count is not None and count.count.queries == (SEEN,)
    assert scale_line(count).startswith("Your Service count is at least 12 (Services with traffic")


def test_without_any_source_the_count_is_unknown_not_zero() -> None:
    count = service_count(raw())
    assert count.count is None
    assert scale_line(count).startswith("Your Service count is unknown (neither kube_service_info")


def test_the_cpu_caveats_say_what_is_not_measured() -> None:
    text = " ".join(CPU_CAVEATS)
    assert "whole Cilium agent" in text and "unrelated to Services" in text
    assert "softirq" in text and "does not prove" in text
