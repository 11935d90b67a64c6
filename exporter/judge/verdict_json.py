"""The JSON body of ``GET /api/v1/verdicts``: the latest verdicts with everything behind them.

``verdicts_body(judge, query)`` filters by the query parameters ``namespace``, ``service``,
``sli``, ``comparison`` and ``outcome`` (``worse``, ``not_worse``, ``better``,
``inconclusive``), orders worse first, and returns a dict ready for ``json.dumps`` (no NaN
or infinity in it). An unknown filter value raises ``QueryError`` (answer 400). Pure module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.judge.driver import Judge, worst_first
from exporter.judge.verdict import COMPARISONS, OUTCOMES, SLIS, Verdict, jsonable

FILTERS = ("namespace", "service", "sli", "comparison", "outcome")
BETTER = "better"


class QueryError(ValueError):
    """A filter value the API does not know."""


def verdicts_body(judge: Judge, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The response body; ``query`` holds the request's query parameters."""
    wanted = {k: v for k, v in (query or {}).items() if k in FILTERS and v != ""}
    _check(wanted)
    chosen = [v for v in judge.verdicts if _matches(v, wanted)]
    counts = {"worse": 0, "not_worse": 0, "better": 0, "inconclusive": 0}
    for v in judge.verdicts:
        counts[BETTER if v.better else v.outcome] += 1
    return {
        "status": "success",
        "evaluated_at": jsonable(judge.evaluated_at),
        "phase": judge.phase,
        "problem": judge.problem or None,
        "settings": jsonable(judge.settings.statistics()),  # the same whatever the source
        "summary": counts,
        "filters": wanted,
        "verdicts": [v.to_dict() for v in worst_first(chosen)],
    }


def _check(wanted: Mapping[str, str]) -> None:
    allowed = {"sli": SLIS, "comparison": COMPARISONS, "outcome": (*OUTCOMES, BETTER)}
    for key, values in allowed.items():
        if key in wanted and wanted[key] not in values:
            raise QueryError(f"unknown {key} {wanted[key]!r}; expected one of {', '.join(values)}")


def _matches(v: Verdict, wanted: Mapping[str, str]) -> bool:
    for key, value in wanted.items():
        if key == "outcome":
            if value == BETTER:
                if not v.better:
                    return False
            elif v.outcome != value:
                return False
        elif getattr(v, key) != value:
            return False
    return True
