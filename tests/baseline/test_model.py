"""The baseline document: derived quantiles by hand, round trip, malformed documents."""

from __future__ import annotations

import json
import math

import pytest

from exporter.baseline.model import Baseline, BaselineFormatError
from exporter.judge.history import Cohort
from tests.judge.samples import BOUNDS

# 200 handshakes: 20 in (0.25, 0.5 ms], 100 in (0.5, 1 ms], 60 in (1, 2.5 ms], 18 in
# (2.5, 5 ms], 2 in (5, 10 ms].
COUNTS = (0, 0, 0, 0, 20, 100, 60, 18, 2, 0, 0, 0, 0, 0, 0, 0)


def _baseline() -> Baseline:
    cohort = Cohort(COUNTS, attempts=204, established=200, flows=1000, drops=7, kpr_drops=2)
    return Baseline(1_700_000_000.0, 1_699_996_400.0, 1_700_000_000.0, BOUNDS,
                    {("shop", "cart"): cohort})


def test_quantiles_match_a_hand_computation():
    b = _baseline()
    # p50: rank 100; cumulative 20 after (0.25,0.5] -> 80 of the 100 in (0.5, 1 ms]
    assert b.quantile("shop", "cart", 0.5) == pytest.approx(0.0005 + 0.0005 * 80 / 100)
    # p90: rank 180; cumulative 120, 180 -> the last of (1, 2.5 ms] -> its upper bound
    assert b.quantile("shop", "cart", 0.9) == pytest.approx(0.0025)
    # p99: rank 198; cumulative 180, 198 -> the last of (2.5, 5 ms] -> 5 ms
    assert b.quantile("shop", "cart", 0.99) == pytest.approx(0.005)
    # p95: rank 190; 10 of the 18 in (2.5, 5 ms] -> 2.5 + 2.5 * 10/18 ms
    assert b.quantile("shop", "cart", 0.95) == pytest.approx(0.0025 + 0.0025 * 10 / 18)
    assert math.isnan(b.quantile("shop", "missing", 0.5))


def test_round_trip_and_derived_figures():
    b = _baseline()
    doc = json.loads(json.dumps(b.to_dict(), allow_nan=False))
    service = doc["services"][0]
    assert service["connect_duration_quantiles"]["0.5"] == pytest.approx(0.0009)
    assert service["drop_ratio"] == pytest.approx(0.007)
    assert service["kpr_sensitive_drop_ratio"] == pytest.approx(0.002)
    assert service["connect_failure_ratio"] == pytest.approx(4 / 204)
    assert Baseline.from_dict(doc) == b


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(kind="other"), "not a baseline"),
    (lambda d: d.update(version=99), "unsupported baseline version"),
    (lambda d: d["services"][0].update(connect_counts=[1, 2]), "bucket counts"),
    (lambda d: d.pop("window"), "malformed"),
    (lambda d: d["services"][0].update(flows="many"), "malformed"),
])
def test_malformed_documents_are_refused(mutate, message):
    doc = _baseline().to_dict()
    mutate(doc)
    with pytest.raises(BaselineFormatError, match=message):
        Baseline.from_dict(doc)
