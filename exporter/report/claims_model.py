"""The claims table of the report: what was promised, what this cluster measured.

One ``ClaimRow`` per claim (throughput, latency, CPU, programming time). Each row holds its
``Measurement``s: one per kind of evidence and comparison (canary-vs-control: eBPF nodes
against kube-proxy nodes at the same time; after-vs-baseline: eBPF after the first switch
against kube-proxy before it), each with the report's outcome words and why. Every number is
a ``Figure`` that names the queries it came from, so the renderers can link it to its PromQL.
Pure module.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.report.data import Query


@dataclass(frozen=True, slots=True)
class Figure:
    """A shown number and the queries it was computed from (first = the main one)."""

    text: str
    queries: tuple[Query, ...] = ()


@dataclass(frozen=True, slots=True)
class Measurement:
    """One kind of evidence for a claim, in one comparison."""

    what: str  # e.g. "Service datapath process CPU per node"
    comparison: str  # canary-vs-control | after-vs-baseline
    outcome: str  # better | not worse | worse | inconclusive
    why: str
    ebpf: Figure
    reference: Figure
    change: Figure  # eBPF relative to the reference
    test: str  # which statistic decided
    details: tuple[tuple[str, str], ...] = ()
    relative: float | None = None  # the change as a number (None: no data)


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """One claim, judged: ``outcome`` combines its measurements (worse if any is worse,
    inconclusive if none is conclusive, better if every conclusive one is better)."""

    key: str  # throughput | latency | cpu | programming
    claim: str  # as promised, e.g. "throughput +30–40 %"
    outcome: str
    against_claim: str  # confirmed / partly / not confirmed / contradicted / cannot tell
    measurements: tuple[Measurement, ...]
    notes: tuple[str, ...] = ()  # evidence that was looked for and is absent, caveats


@dataclass(frozen=True, slots=True)
class ServiceCount:
    """How many Services the cluster has, and where that number comes from."""

    count: Figure | None  # None: no source answered
    source: str
    exact: bool  # False: a lower bound (Services with traffic seen)


@dataclass(frozen=True)
class ClaimsTable:
    rows: tuple[ClaimRow, ...]
    services: ServiceCount
    scale_line: str  # "your Service count is N; published results suggest ..."
    caveats: tuple[str, ...]  # what the CPU numbers include and what they do not

    def row(self, key: str) -> ClaimRow:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)
