"""Comparing two event rates with exposure (drops per flow, failed handshakes per attempt).

The test conditions on the total number of events: if treatment and control had the same
rate, each event would fall on the treatment side with probability
``exposure_t / (exposure_t + exposure_c)``, so the treatment's count is binomial given the
total (the exact conditional test for a Poisson rate ratio). It stays exact with zero-heavy
data: 0 against 0 is no evidence at all, 3 against 0 is weak evidence, and the verdict says
so instead of dividing by zero. p-values are what ``scipy.stats.binomtest`` returns for the
one-sided alternatives (computed through scipy's binomial distribution functions directly,
which is two orders of magnitude faster); the rate-ratio interval comes from the exact
(Clopper-Pearson) interval of the binomial proportion. Pure module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class RateTest:
    """Treatment events/exposure against control events/exposure."""

    events_t: int
    exposure_t: int
    events_c: int
    exposure_c: int
    p_greater: float  # treatment rate higher
    p_less: float  # treatment rate lower
    rate_ratio: float  # (events_t/exposure_t) / (events_c/exposure_c); inf when control has none
    low: float  # interval of the rate ratio
    high: float
    confidence: float

    @property
    def ratio_t(self) -> float:
        return self.events_t / self.exposure_t if self.exposure_t else NAN

    @property
    def ratio_c(self) -> float:
        return self.events_c / self.exposure_c if self.exposure_c else NAN


def rate_test(events_t: int, exposure_t: int, events_c: int, exposure_c: int,
              confidence: float) -> RateTest:
    """The conditional binomial test of the two rates, both one-sided p-values and the
    rate ratio's interval. Exposures must be positive."""
    if exposure_t <= 0 or exposure_c <= 0:
        raise ValueError("exposures must be positive")
    events_t = max(0, events_t)
    events_c = max(0, events_c)
    total = events_t + events_c
    share = exposure_t / (exposure_t + exposure_c)
    if total == 0:
        return RateTest(0, exposure_t, 0, exposure_c, 1.0, 1.0, NAN, 0.0, math.inf, confidence)
    # binomtest(k, n, p, alternative="greater") = P(X >= k); "less" = P(X <= k).
    p_greater = 1.0 if events_t == 0 else float(special.bdtrc(events_t - 1, total, share))
    p_less = float(special.bdtr(events_t, total, share))
    low_p, high_p = clopper_pearson(events_t, total, confidence)
    scale = exposure_c / exposure_t
    return RateTest(
        events_t, exposure_t, events_c, exposure_c,
        min(1.0, p_greater), min(1.0, p_less),
        _odds(events_t / total) * scale,
        _odds(low_p) * scale, _odds(high_p) * scale, confidence,
    )


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact two-sided interval of a binomial proportion (as binomtest's
    ``proportion_ci(method="exact")``)."""
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def _odds(p: float) -> float:
    return math.inf if p >= 1.0 else p / (1.0 - p)
