"""How two windows combine, the exported value, and strict-JSON verdicts.

Matrix (short x long): worse x worse -> worse; worse x not worse (either order) -> not
worse; worse x inconclusive -> inconclusive; inconclusive x not worse -> inconclusive;
better x better -> better; better x not worse -> not worse.
"""

from __future__ import annotations

import json
import math

import pytest

from exporter.judge.verdict import (
    INCONCLUSIVE,
    LONG,
    NOT_WORSE,
    SHORT,
    WORSE,
    Verdict,
    WindowVerdict,
    combine,
    jsonable,
)


def wv(window: str, outcome: str, better: bool = False) -> WindowVerdict:
    return WindowVerdict(window, 0.0, 300.0, False, outcome, better, f"{window} says {outcome}")


@pytest.mark.parametrize("short,long,expected", [
    ((WORSE, False), (WORSE, False), (WORSE, False)),
    ((WORSE, False), (NOT_WORSE, False), (NOT_WORSE, False)),
    ((NOT_WORSE, False), (WORSE, False), (NOT_WORSE, False)),
    ((WORSE, False), (INCONCLUSIVE, False), (INCONCLUSIVE, False)),
    ((INCONCLUSIVE, False), (WORSE, False), (INCONCLUSIVE, False)),
    ((INCONCLUSIVE, False), (NOT_WORSE, False), (INCONCLUSIVE, False)),
    ((NOT_WORSE, True), (NOT_WORSE, True), (NOT_WORSE, True)),
    ((NOT_WORSE, True), (NOT_WORSE, False), (NOT_WORSE, False)),
    ((NOT_WORSE, False), (NOT_WORSE, False), (NOT_WORSE, False)),
])
def test_both_windows_must_agree(short, long, expected):
    outcome, better, reason = combine(wv(SHORT, *short), wv(LONG, *long))
    assert (outcome, better) == expected
    assert reason


def test_blip_reason_names_the_window():
    _, _, reason = combine(wv(SHORT, WORSE), wv(LONG, NOT_WORSE))
    assert "short window only" in reason


@pytest.mark.parametrize("outcome,better,value", [
    (WORSE, False, 1.0), (NOT_WORSE, False, 0.0), (NOT_WORSE, True, -1.0),
])
def test_value(outcome, better, value):
    v = Verdict("ns", "svc", "drops", "canary-vs-control", outcome, better, "", 0.0, 1.0)
    assert v.value == value


def test_inconclusive_value_is_nan_and_json_is_strict():
    v = Verdict("ns", "svc", "drops", "canary-vs-control", INCONCLUSIVE, False, "why",
                math.nan, 1.0, (wv(SHORT, INCONCLUSIVE), wv(LONG, INCONCLUSIVE)))
    assert math.isnan(v.value)
    doc = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert doc["value"] is None and doc["effect_size"] is None
    assert [w["window"] for w in doc["windows"]] == ["short", "long"]


def test_jsonable():
    assert jsonable({"a": (math.inf, -math.inf, math.nan, 1.5), 2: "x"}) == {
        "a": ["+Inf", "-Inf", None, 1.5], "2": "x"}
