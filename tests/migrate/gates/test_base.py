"""What the gates' answers decide: proceed, pause or abort, the graver policy winning."""

from __future__ import annotations

import pytest

from exporter.migrate.gates.base import (
    FAIL, INCONCLUSIVE, PASS, RESULTS, BatchContext, GateResult, decide, summary,
)
from exporter.migrate.model import ABORT, PAUSE, PROCEED


def res(*results: str) -> list[GateResult]:
    return [GateResult(f"g{i}", r, "why") for i, r in enumerate(results)]


@pytest.mark.parametrize(("results", "on_fail", "on_inconclusive", "expected"), [
    ((PASS, PASS), ABORT, PAUSE, PROCEED),
    ((), ABORT, PAUSE, PROCEED),  # --gates none: nothing holds the batch
    ((PASS, FAIL), ABORT, PAUSE, ABORT),
    ((PASS, INCONCLUSIVE), ABORT, PAUSE, PAUSE),
    ((FAIL, INCONCLUSIVE), ABORT, PAUSE, ABORT),
    ((FAIL, INCONCLUSIVE), PAUSE, ABORT, ABORT),
    ((FAIL,), PAUSE, PAUSE, PAUSE),
    ((INCONCLUSIVE,), PAUSE, ABORT, ABORT),
    ((FAIL, PASS), PAUSE, ABORT, PAUSE),
])
def test_decide(results: tuple[str, ...], on_fail: str, on_inconclusive: str,
                expected: str) -> None:
    assert decide(res(*results), on_fail, on_inconclusive) == expected


def test_defaults_abort_on_fail_and_pause_on_inconclusive() -> None:
    assert decide(res(FAIL)) == ABORT
    assert decide(res(INCONCLUSIVE)) == PAUSE


def test_bad_policy_and_result_are_refused() -> None:
    with pytest.raises(ValueError, match="on_fail: 'proceed' is not one of pause, abort"):
        decide(res(PASS), on_fail=PROCEED)
    with pytest.raises(ValueError, match="result 'ok' is not one of pass, fail, inconclusive"):
        GateResult("verify", "ok", "why")
    assert RESULTS == (PASS, FAIL, INCONCLUSIVE)


def test_context_and_summary() -> None:
    ctx = BatchContext(("n3",), ("n1",), ("n2",), 10.0, 60.0)
    assert ctx.switched == ("n1", "n3")
    assert summary(res(PASS, FAIL)) == "g0 pass, g1 fail"
    assert summary([]) == "no gate ran"
