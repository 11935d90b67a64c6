"""The probes' results read back from a ``/metrics`` exposition, as a verification matrix.

A ``Reading`` is what one or more expositions (an exporter's, or each probe's) hold:
the ``kpr_probe_checks_total`` counts and ``kpr_probe_duration_seconds`` buckets, and each
probe's ``kpr_probe_*`` state. ``since`` subtracts an earlier reading, so ``verify --wait``
judges only what was observed after it started. Only results made on a node's current
datapath (``kpr_probe_target_datapath_info``) count toward its column.

Connect times come from histogram buckets: ``worst`` is the upper bound of the highest
bucket with an observation, ``typical`` the median interpolated in its bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from prometheus_client.parser import text_string_to_metric_families

from exporter.verify import matrix as mx
from exporter.verify import results as r

Series = tuple[str, str, str]  # check, node, datapath


class ReadbackError(ValueError):
    """An exposition that cannot be parsed."""


@dataclass(frozen=True)
class ProbeState:
    rounds: float = 0.0
    last_round: float | None = None
    coverage_rounds: int | None = None


@dataclass
class Reading:
    counts: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    buckets: dict[Series, dict[float, float]] = field(default_factory=dict)  # le -> cumulative
    probes: dict[tuple[str, str], ProbeState] = field(default_factory=dict)  # (source, node)
    not_applicable: dict[tuple[str, str], str] = field(default_factory=dict)
    datapaths: dict[str, str] = field(default_factory=dict)

    def add(self, other: Reading) -> None:
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0.0) + value
        for series, row in other.buckets.items():
            mine = self.buckets.setdefault(series, {})
            for le, value in row.items():
                mine[le] = mine.get(le, 0.0) + value
        self.probes.update(other.probes)
        self.not_applicable.update(other.not_applicable)
        self.datapaths.update(other.datapaths)

    def since(self, before: Reading) -> Reading:
        """The observations made after ``before`` (counters subtracted; a counter that went
        down, a restarted probe, counts from zero); state is this reading's."""
        counts = {k: _delta(v, before.counts.get(k)) for k, v in self.counts.items()}
        buckets = {k: {le: _delta(v, before.buckets.get(k, {}).get(le)) for le, v in row.items()}
                   for k, row in self.buckets.items()}
        return Reading({k: v for k, v in counts.items() if v > 0}, buckets, dict(self.probes),
                       dict(self.not_applicable), dict(self.datapaths))


def _delta(now: float, before: float | None) -> float:
    return now if before is None or now < before else now - before


def parse(text: str, source: str = "", *, only: frozenset[str] | None = None) -> Reading:
    """The ``kpr_probe_*`` samples of one exposition; ``source`` tells probes of different
    expositions apart, and the ``probe`` label the probes an exporter serves again. With
    ``only`` (sample names, e.g. ``STATE``), just those samples are parsed: a cheap look
    at the probes' rounds. Raises ReadbackError when the text is not an exposition."""
    out = Reading()
    state: dict[tuple[str, str], dict[str, float]] = {}
    if only is not None:
        text = _samples_named(text, only)
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise ReadbackError(f"not a Prometheus exposition: {exc}") from None
    for family in families:
        for s in family.samples:
            lab = s.labels
            if s.name == "kpr_probe_checks_total":
                key = (lab["check"], lab["node"], lab["datapath"], lab["result"])
                out.counts[key] = out.counts.get(key, 0.0) + s.value
            elif family.name == "kpr_probe_duration_seconds" and s.name.endswith("_bucket"):
                row = out.buckets.setdefault((lab["check"], lab["node"], lab["datapath"]), {})
                row[float(lab["le"])] = row.get(float(lab["le"]), 0.0) + s.value
            elif s.name == "kpr_probe_not_applicable" and s.value:
                out.not_applicable[(lab["check"], lab["node"])] = lab["reason"]
            elif s.name == "kpr_probe_target_datapath_info" and s.value:
                out.datapaths[lab["node"]] = lab["datapath"]
            elif s.name in _STATE:
                probe = lab.get("probe") or source
                state.setdefault((probe, lab["probe_node"]), {})[_STATE[s.name]] = s.value
    for (probe, node), values in state.items():
        coverage = values.get("coverage")
        out.probes[(probe, node)] = ProbeState(
            values.get("rounds", 0.0), values.get("last"),
            None if coverage is None else int(coverage))
    return out


_STATE = {"kpr_probe_rounds_total": "rounds", "kpr_probe_last_round_timestamp_seconds": "last",
          "kpr_probe_coverage_rounds": "coverage"}
#: The samples of each probe's state (``Reading.probes``): all ``parse(only=STATE)`` reads.
STATE: frozenset[str] = frozenset(_STATE)
#: What a verdict needs: results, skips, datapaths and state, not the connect-time buckets
#: (the bulk of an exposition); its matrix's cells have no connect times.
VERDICT: frozenset[str] = STATE | {"kpr_probe_checks_total", "kpr_probe_not_applicable",
                                   "kpr_probe_target_datapath_info"}


def _samples_named(text: str, names: frozenset[str]) -> str:
    """The sample lines of ``names`` (untyped without their comments: the names stay)."""
    keep = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            end = len(line)
            for mark in ("{", " "):
                at = line.find(mark)
                if 0 <= at < end:
                    end = at
            if line[:end] in names:
                keep.append(line)
    return "".join(f"{line}\n" for line in keep)


def _times(row: Mapping[float, float]) -> tuple[float | None, float | None]:
    """(worst, typical) connect time from cumulative buckets; an observation above every
    finite bound counts as that bound."""
    bounds = sorted(row)
    total = row[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None, None
    finite = [b for b in bounds if math.isfinite(b)] or [0.0]

    def bound(i: int) -> float:
        return bounds[i] if math.isfinite(bounds[i]) else finite[-1]

    top = next(i for i, le in enumerate(bounds) if row[le] >= total)
    mid = next(i for i, le in enumerate(bounds) if row[le] >= total / 2)
    lower = bound(mid - 1) if mid else 0.0
    below = row[bounds[mid - 1]] if mid else 0.0
    inside = row[bounds[mid]] - below
    typical = lower + (bound(mid) - lower) * (total / 2 - below) / inside
    return bound(top), typical


def datapaths(reading: Reading) -> dict[str, str]:
    """Each node's current datapath: from the probes' targets, else from the results."""
    found = {node: dp for (_, node, dp, _) in sorted(reading.counts)}
    return {**found, **reading.datapaths}


def to_matrix(reading: Reading, checks: tuple[str, ...] = r.CHECKS) -> mx.Matrix:
    """The matrix of ``reading``'s results on each node's current datapath."""
    current = datapaths(reading)
    results: list[r.CheckResult] = []
    for (check, node, dp, result), count in sorted(reading.counts.items()):
        if count <= 0 or current.get(node) != dp:
            continue
        total = sum(v for (c, n, d, _), v in reading.counts.items()
                    if (c, n, d) == (check, node, dp))
        observed = (f"{count:g} of {total:g} results failed (the probes' logs have each "
                    "address)" if result == r.FAIL else result)
        results.append(r.CheckResult(check, node, dp, "", "its Service path", result,
                                     "pass", observed))
    built = mx.build(results, current, checks, skip=reading.not_applicable)
    cells = dict(built.cells)
    for (check, node), cell in cells.items():
        row = reading.buckets.get((check, node, current[node]), {})
        worst, typical = _times(row)
        if worst is not None:
            cells[(check, node)] = replace(cell, worst=worst, typical=typical)
    return mx.Matrix(built.datapaths, cells, checks)


def stale(reading: Reading, now: float, max_age: float) -> list[str]:
    """Why the results cannot be trusted as current: no probe, or a probe without a round
    in the last ``max_age`` seconds."""
    if not reading.probes:
        return ["no probe reported (no kpr_probe_rounds_total)"]
    out = []
    for (source, node), st in sorted(reading.probes.items()):
        where = f"probe on {node}" + (f" ({source})" if source else "")
        if st.last_round is None:
            out.append(f"{where} has not completed a round")
        elif now - st.last_round > max_age:
            out.append(f"{where}: last round {now - st.last_round:.0f}s ago "
                       f"(more than {max_age:g}s)")
    return out


def merged(readings: Iterable[Reading]) -> Reading:
    out = Reading()
    for one in readings:
        out.add(one)
    return out
