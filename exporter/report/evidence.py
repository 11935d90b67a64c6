"""Why each verdict came out as it did, from the judge's own tests on the counts in Prometheus.

The judge's full evidence lives in the exporter's memory and may be gone by the time anyone
reads the report. So the report re-runs the judge's tests (``exporter.judge.compare`` and
``combine``, with the judge's settings: the defaults unless given) on what Prometheus holds
for the judge's short and long windows at the end of the range (the report's after window
when those were not fetched): the eBPF cohort against kube-proxy at the same time
(``canary-vs-control``), and against kube-proxy before the first switch in the range
(``after-vs-baseline``: the frozen baseline's counts stay inside the exporter). The result is
embedded in the report: one "why" per verdict (worse, better, too few events, not significant
with the p-value, below the floor or the threshold) and the tests behind it. Pure module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exporter.judge import compare
from exporter.judge.history import Cohort as JudgeCohort
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import INCONCLUSIVE as J_INCONCLUSIVE
from exporter.judge.verdict import MANN_WHITNEY, SIGNAL_WORSE, SLIS, TAIL
from exporter.judge.verdict import WORSE as J_WORSE
from exporter.judge.verdict import TestResult, WindowVerdict, combine
from exporter.report import fmt
from exporter.report.data import Window
from exporter.report.model import (
    AFTER_VS_BASELINE,
    BETTER,
    CANARY_VS_CONTROL,
    INCONCLUSIVE,
    NOT_WORSE,
    WHY_BELOW_FLOOR,
    WHY_BELOW_THRESHOLD,
    WHY_BETTER,
    WHY_NO_DATA,
    WHY_NOT_SIGNIFICANT,
    WHY_TOO_FEW,
    WHY_WORSE,
    WORSE,
    Cohort,
    Evidence,
    TestRow,
)

SETTINGS = JudgeSettings()
REFERENCES = {CANARY_VS_CONTROL: "kube-proxy nodes, same time",
              AFTER_VS_BASELINE: "kube-proxy before the first switch (stand-in for the baseline)"}


def judge_cohort(cohort: Cohort | None, width: int) -> JudgeCohort | None:
    """The judge's integer cohort from the report's window totals (increases are estimates)."""
    if cohort is None:
        return None
    buckets = cohort.buckets if cohort.buckets and len(cohort.buckets) == width else (0.0,) * width
    attempts = round(cohort.attempts or 0.0)
    failures = min(attempts, round(cohort.failures or 0.0))
    return JudgeCohort(tuple(round(n) for n in buckets), attempts, attempts - failures,
                       round(cohort.flows or 0.0), round(cohort.drops or 0.0),
                       round(cohort.sensitive_drops or 0.0))


@dataclass(frozen=True, slots=True)
class Side:
    """One window's eBPF cohort and the kube-proxy cohort at the same time."""

    window: Window
    after: Cohort | None
    control: Cohort | None


def evidence(sli: str, comparison: str, word: str, sides: Sequence[Side], before: Cohort | None,
             bounds: Sequence[float], settings: JudgeSettings = SETTINGS) -> Evidence:
    """The evidence behind the judge's ``word`` for one SLI and comparison: the judge's tests
    over each of ``sides`` (its short and long window; or the report's after window), combined
    the way the judge combines its two windows."""
    label = REFERENCES.get(comparison, comparison)
    if sli not in SLIS or comparison not in REFERENCES:
        return Evidence(WHY_NO_DATA, f"{WHY_NO_DATA}: the judge has no test for SLI {sli} "
                                     f"({comparison})", INCONCLUSIVE, label, None)
    if comparison == AFTER_VS_BASELINE and before is None:
        why = (f"{WHY_NO_DATA}: no kube-proxy traffic before a switch in the range to test "
               "(the frozen baseline's counts are kept by the exporter)")
        return Evidence(WHY_NO_DATA, why, INCONCLUSIVE, label, None)
    if not sides:
        return Evidence(WHY_NO_DATA, f"{WHY_NO_DATA}: no eBPF traffic in the range to test",
                        INCONCLUSIVE, label, None)
    width = len(bounds) + 1
    results = []
    for side in sides:
        reference = side.control if comparison == CANARY_VS_CONTROL else before
        span = compare.Span(side.window.name, side.window.start, side.window.end)
        results.append((side.window, compare.judge(
            sli, judge_cohort(side.after, width), judge_cohort(reference, width), bounds, span,
            settings)))
    window, deciding, kind, why = _decide(results)
    outcome = _word(deciding) if len(results) == 1 else _combined_word(results)
    effect = results[0][1].effect_size
    return Evidence(kind, _against(why, word, outcome), outcome, label, window,
                    effect=effect if _finite(effect) else None, detail=deciding.reason,
                    tests=tuple(_row(t, sli) for t in deciding.tests),
                    inputs=_inputs(deciding))


def _decide(results: Sequence[tuple[Window, WindowVerdict]]) -> tuple[
        Window, WindowVerdict, str, str]:
    """The window that decides the outcome, with its kind and why (naming the window when
    there are two)."""
    if len(results) == 1:
        window, result = results[0]
        return (window, result, *classify(result))
    (w_short, short), (w_long, long_) = results[0], results[1]
    outcome, _, _ = combine(short, long_)
    pair = (short.outcome, long_.outcome)
    if outcome == J_WORSE or (outcome != J_INCONCLUSIVE and J_WORSE not in pair):
        window, result = w_short, short  # both agree: the short window tells it
        kind, why = classify(result)
        return window, result, kind, f"{why} [{_both(w_short, w_long)}]"
    if outcome == J_INCONCLUSIVE:
        window, result = ((w_short, short) if short.outcome == J_INCONCLUSIVE else (w_long, long_))
    else:  # worse in one window only: the other one says why it is not worse
        window, result = ((w_long, long_) if short.outcome == J_WORSE else (w_short, short))
    kind, why = classify(result)
    other = long_ if result is short else short
    return window, result, kind, (f"{why} [{_named(window)}; the {other.window} window: "
                                  f"{_word(other)}]")


def _combined_word(results: Sequence[tuple[Window, WindowVerdict]]) -> str:
    outcome, better, _ = combine(results[0][1], results[1][1])
    if outcome == J_WORSE:
        return WORSE
    if outcome == J_INCONCLUSIVE:
        return INCONCLUSIVE
    return BETTER if better else NOT_WORSE


def _named(window: Window) -> str:
    return f"{window.name} window, {fmt.length(window.seconds)}"


def _both(short: Window, long_: Window) -> str:
    return f"short and long window, {fmt.length(short.seconds)} and {fmt.length(long_.seconds)}"


def classify(result: WindowVerdict) -> tuple[str, str]:
    """``(kind, why)`` of one window's judgement."""
    if result.outcome == J_INCONCLUSIVE:
        kind = WHY_NO_DATA if result.reason.startswith("no ") else WHY_TOO_FEW
        return kind, f"{kind}: {result.reason}"
    if result.outcome == J_WORSE:
        test = next(t for t in result.tests if t.signal == SIGNAL_WORSE)
        return WHY_WORSE, (f"{WHY_WORSE}: {_change(test)}, significant ({_p(test.p_worse)} < "
                           f"{test.alpha:.2g}) and above {_pct(test.threshold)} and "
                           f"{_amount(test.floor, test)}")
    if result.better:
        test = min(result.tests, key=lambda t: t.p_better)
        return WHY_BETTER, f"{WHY_BETTER}: {_change(test)}, significant ({_p(test.p_better)})"
    if not result.tests:
        return WHY_NO_DATA, f"{WHY_NO_DATA}: {result.reason}"
    test = max(result.tests, key=lambda t: (t.p_worse < t.alpha, _sortable(t.effect), -t.p_worse))
    reasons = []
    if not test.p_worse < test.alpha:
        reasons.append((WHY_NOT_SIGNIFICANT, f"{_p(test.p_worse)} ≥ {test.alpha:.2g}"))
    if not test.absolute > test.floor:
        reasons.append((WHY_BELOW_FLOOR, f"{_amount(test.absolute, test, signed=True)} ≤ "
                                         f"{_amount(test.floor, test)}"))
    if not test.effect > test.threshold:
        reasons.append((WHY_BELOW_THRESHOLD, f"{fmt.relative(test.effect)} ≤ "
                                             f"{_pct(test.threshold)}"))
    if not reasons:  # significant and large, but the tests disagree on the direction
        reasons.append((WHY_NOT_SIGNIFICANT, _p(test.p_worse)))
    return reasons[0][0], "; ".join(f"{kind} ({detail})" for kind, detail in reasons)


def _against(why: str, word: str, outcome: str | None) -> str:
    """``why``, saying so when the exporter's judge came out otherwise (other settings, or
    Prometheus' counts differ from the judge's own at the window edges)."""
    if outcome is None or outcome == word or word not in (WORSE, NOT_WORSE, BETTER, INCONCLUSIVE):
        return why
    if word == INCONCLUSIVE:
        return (f"{WHY_TOO_FEW} or missing data in the exporter's judge at the end of the "
                f"range; its tests on Prometheus' counts say {why}")
    return f"the exporter's judge said {word}; its tests on Prometheus' counts say {why}"


def _word(result: WindowVerdict) -> str:
    if result.outcome == J_WORSE:
        return WORSE
    if result.outcome == J_INCONCLUSIVE:
        return INCONCLUSIVE
    return BETTER if result.better else NOT_WORSE


def _row(test: TestResult, sli: str) -> TestRow:
    return TestRow(test.name, test.p_worse, test.p_better, test.alpha, test.estimate, test.low,
                   test.high, test.effect, test.absolute, test.threshold, test.floor,
                   test.signal, "s" if sli == "connect_duration" else "ratio", test.note)


def _inputs(result: WindowVerdict) -> tuple[tuple[str, str], ...]:
    shown = []
    for side, name in (("treatment", "eBPF"), ("control", "reference")):
        values = result.inputs.get(side, {})
        for key in ("connections", "events", "exposure", "p50", "p99", "ratio"):
            if key in values:
                value = values[key]
                text = (fmt.seconds(value) if key.startswith("p") else
                        fmt.ratio(value) if key == "ratio" else fmt.count(value))
                shown.append((f"{name} {key}", text))
    return tuple(shown)


def _change(test: TestResult) -> str:
    """``p99 +103 % (+300 µs)``: what moved, relatively and absolutely."""
    if test.name == MANN_WHITNEY:
        what = "median shift"
    elif test.name == TAIL:
        what = test.note.split(":", 1)[0]
    else:
        what = "ratio"
    return f"{what} {fmt.relative(test.effect)} ({_amount(test.absolute, test, signed=True)})"


def _amount(value: float, test: TestResult, *, signed: bool = False) -> str:
    is_latency = test.name != "rate-ratio"
    text = fmt.seconds(abs(value)) if is_latency else fmt.ratio(abs(value))
    if signed and _finite(value):
        text = ("+" if value >= 0 else "-") + text
    return text


def _p(value: float) -> str:
    """``p=0.031``; ``p<1e-15`` where the computed p-value underflows."""
    return "p<1e-15" if value < 1e-15 else f"p={value:.2g}"


def _pct(value: float) -> str:
    return f"+{value * 100:.0f} %"


def _sortable(value: float) -> float:
    return float("-inf") if value != value else value


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))
