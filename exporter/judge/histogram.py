"""Statistics on histogram bucket counts: quantiles, rank test, shift estimate, tail split.

Every function takes *non-cumulative* bucket counts against shared upper bounds
(``counts[i]`` holds the samples in ``(bounds[i-1], bounds[i]]``; the last count is the
``+Inf`` bucket), which is what ``exporter.snapshot.ServiceSli.connect_counts`` holds.
Binned data is full of ties, so the rank test is the tie-corrected Mann-Whitney U computed
from the counts directly (what ``scipy.stats.mannwhitneyu(method="asymptotic")`` returns on
the expanded samples), and the location shift is the Hodges-Lehmann estimate over bucket
midpoints. Pure module: math and scipy's special functions only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special

NAN = float("nan")


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float:
    """The ``q`` quantile, interpolated linearly within its bucket like PromQL's
    ``histogram_quantile``: the first bucket starts at 0, a rank in the ``+Inf`` bucket
    yields the highest finite bound, no samples yield NaN."""
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"{len(counts)} counts do not fit {len(bounds)} bounds (+Inf)")
    if math.isnan(q):
        return NAN
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    total = sum(counts)
    if total <= 0 or not bounds:
        return NAN
    rank = q * total
    cumulative = 0
    for i, upper in enumerate(bounds):  # the +Inf bucket is never searched
        before = cumulative
        cumulative += counts[i]
        if cumulative >= rank:
            if i == 0 and upper <= 0:
                return upper
            lower = 0.0 if i == 0 else bounds[i - 1]
            here = counts[i]
            return lower if here == 0 else lower + (upper - lower) * (rank - before) / here
    return bounds[-1]


def tail_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float:
    """The ``q`` quantile with a power-law tail inside its bucket: the share of samples above
    ``x`` is interpolated linearly in log-log space between the bucket's edges.

    Latency tails fall off steeply, so within a wide bucket (the SLI buckets grow by 2-2.5x)
    most samples sit near the lower edge; PromQL's linear interpolation spreads them evenly
    and compresses differences between two tails towards zero. Used for the judge's effect
    sizes; falls back to ``histogram_quantile`` below p75, in the first and the +Inf bucket,
    and where nothing lies above the bucket.
    """
    linear = histogram_quantile(q, bounds, counts)
    if not math.isfinite(linear) or q < 0.75:
        return linear
    total = sum(counts)
    rank = q * total
    above = total
    for i, upper in enumerate(bounds):
        above_lower = above
        above -= counts[i]
        if total - above >= rank:
            if i == 0 or counts[i] == 0 or above <= 0:
                return linear
            lower = bounds[i - 1]
            s_low, s_up, s_q = above_lower / total, above / total, 1.0 - q
            if s_q <= 0:
                return linear
            slope = math.log(upper / lower) / math.log(s_low / s_up)
            return min(upper, lower * float((s_low / s_q) ** slope))
    return linear


def midpoints(bounds: Sequence[float]) -> tuple[float, ...]:
    """A representative value per bucket: the middle of each finite bucket (the first one
    starts at 0) and, for ``+Inf``, the last bound plus half the last finite bucket's width."""
    if not bounds:
        return (0.0,)
    mids = [bounds[0] / 2.0]
    mids.extend((lo + hi) / 2.0 for lo, hi in zip(bounds, bounds[1:]))
    last_width = bounds[-1] - (bounds[-2] if len(bounds) > 1 else 0.0)
    mids.append(bounds[-1] + last_width / 2.0)
    return tuple(mids)


@dataclass(frozen=True, slots=True)
class RankTest:
    """Mann-Whitney U of treatment against control on binned data (ties corrected)."""

    u: float  # U of the treatment: pairs where treatment > control, ties counted 1/2
    z: float  # standardised U (no continuity correction), NaN when all values tie
    p_greater: float  # one-sided p: treatment stochastically larger (continuity corrected)
    p_less: float  # one-sided p: treatment stochastically smaller
    n_treatment: int
    n_control: int

    @property
    def cles(self) -> float:
        """Common-language effect size P(treatment > control) + P(tie)/2 (0.5 = no effect)."""
        pairs = self.n_treatment * self.n_control
        return self.u / pairs if pairs else NAN


def mann_whitney(treatment: Sequence[int], control: Sequence[int]) -> RankTest:
    """Tie-corrected Mann-Whitney U with the normal approximation and continuity correction."""
    if len(treatment) != len(control):
        raise ValueError("treatment and control have different bucket layouts")
    n1 = sum(treatment)
    n2 = sum(control)
    if n1 == 0 or n2 == 0:
        return RankTest(NAN, NAN, 1.0, 1.0, n1, n2)
    u = 0.0
    control_below = 0
    ties = 0
    for a, b in zip(treatment, control):
        u += a * (control_below + b / 2.0)
        control_below += b
        t = a + b
        ties += t * t * t - t
    n = n1 + n2
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return RankTest(u, NAN, 1.0, 1.0, n1, n2)
    sd = math.sqrt(var)
    p_greater = float(special.ndtr(-(u - mean - 0.5) / sd))
    p_less = float(special.ndtr((u - mean + 0.5) / sd))
    return RankTest(u, (u - mean) / sd, min(1.0, p_greater), min(1.0, p_less), n1, n2)


@dataclass(frozen=True, slots=True)
class Shift:
    """Hodges-Lehmann location shift (treatment - control, seconds) with its interval."""

    estimate: float
    low: float
    high: float
    confidence: float


def hodges_lehmann(treatment: Sequence[int], control: Sequence[int],
                   values: Sequence[float], confidence: float) -> Shift:
    """Median of all pairwise differences treatment - control, each sample at its bucket's
    ``values`` entry, with the distribution-free interval from the rank test's normal
    approximation (tie-corrected): the C-th smallest and C-th largest difference."""
    n1 = sum(treatment)
    n2 = sum(control)
    if n1 == 0 or n2 == 0:
        return Shift(NAN, NAN, NAN, confidence)
    weights: dict[float, int] = {}
    used_t = [(values[i], a) for i, a in enumerate(treatment) if a]
    used_c = [(values[j], b) for j, b in enumerate(control) if b]
    for x, a in used_t:
        for y, b in used_c:
            d = x - y
            weights[d] = weights.get(d, 0) + a * b
    diffs = sorted(weights.items())
    pairs = n1 * n2

    def kth(k: int) -> float:
        """The k-th smallest pairwise difference (1-based)."""
        seen = 0
        for value, w in diffs:
            seen += w
            if seen >= k:
                return value
        return diffs[-1][0]

    estimate = (kth((pairs + 1) // 2) + kth(pairs // 2 + 1)) / 2.0
    n = n1 + n2
    ties = 0
    for a, b in zip(treatment, control):
        t = a + b
        ties += t * t * t - t
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    z = float(special.ndtri(0.5 + confidence / 2.0))
    c = math.floor(pairs / 2.0 - z * math.sqrt(max(var, 0.0)))
    if c < 1:
        return Shift(estimate, diffs[0][0], diffs[-1][0], confidence)
    return Shift(estimate, kth(c), kth(pairs - c + 1), confidence)


@dataclass(frozen=True, slots=True)
class TailSplit:
    """Where the tail starts and how many samples of each side lie in it."""

    index: int  # first bucket of the tail
    threshold: float  # lower edge of that bucket (seconds): tail = samples above it
    treatment: int
    control: int


def tail_split(bounds: Sequence[float], treatment: Sequence[int], control: Sequence[int],
               q: float) -> TailSplit | None:
    """The tail above the lower edge of the bucket holding the pooled ``q`` quantile.

    The edge is chosen from the pooled samples, which under "no difference" says nothing
    about which side a sample came from, so a count test on the split stays honest.
    ``None`` when the pooled quantile falls in the first bucket (no tail to speak of).
    """
    pooled = [a + b for a, b in zip(treatment, control)]
    total = sum(pooled)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    index = 0
    for index, c in enumerate(pooled):
        seen += c
        if seen >= rank and c > 0:
            break
    if index == 0:
        return None
    return TailSplit(index, bounds[index - 1], sum(treatment[index:]), sum(control[index:]))
