"""Raw query results -> the claims table: did the switch pay off, measured in this cluster?

Four claims, each judged in both comparisons the judge makes: canary-vs-control (eBPF and
kube-proxy in the same window: the report's after window, or the whole range when nothing
switched in it) and after-vs-baseline (eBPF after the first switch against kube-proxy before
it). The evidence per claim, and how it is judged (``claims_judge``):

* throughput +30–40 %: the probe load's delivered bytes per second of streaming (means), like
  with like from eBPF and kube-proxy nodes; its connections at the load's fixed rate guard it
  (more failures make the claim worse; the rate itself is the configured one);
* latency −30 %: every Service's handshake time pooled (the judge's latency test), and the
  probes' handshakes (their checks, the load's connections) when they ran;
* lower CPU: the process serving the node's Services, kube-proxy and the agent together,
  and cAdvisor's container CPU when the cluster's Prometheus has it (means per node);
* faster programming: kube-proxy's and the agent's own programming histograms, and the
  probes' active measure when they ran.

Evidence that is looked for and absent is named in the row's notes, never read as zero.
Pure module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from exporter.judge.settings import JudgeSettings
from exporter.model import EBPF, KUBE_PROXY
from exporter.report import fmt
from exporter.report.claims_judge import Judged, combined, failures, histograms, means, no_data
from exporter.report.claims_model import ClaimRow, ClaimsTable, Figure, Measurement
from exporter.report.claims_scale import CPU_CAVEATS, scale_line, service_count
from exporter.report.cohorts import label_float
from exporter.report.data import Query, RawData, Window
from exporter.report.timeline import node_history
from exporter.report.model import AFTER_VS_BASELINE, BETTER, CANARY_VS_CONTROL, INCONCLUSIVE, WORSE


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    text: str
    target: float | None  # the promised relative change (None: only its direction)
    higher_is_better: bool


CLAIMS = (
    Claim("throughput", "throughput +30–40 %", 0.30, True),
    Claim("latency", "latency −30 %", -0.30, False),
    Claim("cpu", "lower CPU", None, False),
    Claim("programming", "faster programming", None, False),
)


@dataclass(frozen=True, slots=True)
class Sides:
    """One comparison: the window of the eBPF side and the window of the reference side."""

    comparison: str
    ebpf: Window | None
    reference: Window | None


def comparisons(raw: RawData) -> tuple[Sides, Sides]:
    named = {w.name: w for w in raw.windows}
    later = named.get("after", named.get("range"))
    return (Sides(CANARY_VS_CONTROL, later, later),
            Sides(AFTER_VS_BASELINE, later, named.get("before")))


# --- reading the raw results ---------------------------------------------------------------

def find_query(raw: RawData, name: str, window: Window | None = None) -> tuple[Query, ...]:
    wanted = window.name if window is not None else ""
    return tuple(q for q in raw.queries if q.name == name and q.window == wanted)[:1]


def histogram(raw: RawData, name: str, window: Window | None, datapath: str) -> dict[float, float]:
    """Cumulative increases by ``le`` of one datapath, summed over the other labels."""
    found: dict[float, float] = defaultdict(float)
    if window is None:
        return {}
    for s in raw.samples.get(f"{window.name}:{name}", ()):
        le = label_float(s.labels.get("le"))
        if s.labels.get("datapath") == datapath and le is not None and math.isfinite(s.value):
            found[le] += s.value
    return dict(found)


def totals(raw: RawData, name: str, window: Window | None, datapath: str) -> float | None:
    if window is None:
        return None
    values = [s.value for s in raw.samples.get(f"{window.name}:{name}", ())
              if s.labels.get("datapath") == datapath and math.isfinite(s.value)]
    return sum(values) if values else None


def series_mean(raw: RawData, name: str, window: Window | None,
                datapath: str) -> tuple[float, float] | None:
    """Mean of a per-node range series of one datapath inside ``window``, and its exposure in
    node-seconds (points x step). A series without a ``datapath`` label takes, point by
    point, the node's datapath from ``kpr_node_datapath_info``."""
    if window is None:
        return None
    history = {node: {t: dp for t, dp, _ in points}
               for node, points in node_history(raw.series.get("datapath", ())).items()}
    points = []
    for s in raw.series.get(name, ()):
        node_at = history.get(s.labels.get("node", ""), {})
        for t, v in s.points:
            on = s.labels.get("datapath") or node_at.get(t)
            if on == datapath and window.start < t <= window.end and math.isfinite(v):
                points.append(v)
    return (sum(points) / len(points), len(points) * raw.step) if points else None


def has_any(raw: RawData, name: str) -> bool:
    return bool(raw.series.get(name)) or any(raw.samples.get(f"{w.name}:{name}")
                                             for w in raw.windows)


# --- measurements ----------------------------------------------------------------------------

Judge = Callable[[RawData, Sides, JudgeSettings], tuple[Judged, tuple[Query, ...],
                                                        tuple[Query, ...]]]


def _histogram_judge(name: str, unit: str) -> Judge:
    def run(raw: RawData, sides: Sides, settings: JudgeSettings) -> tuple[
            Judged, tuple[Query, ...], tuple[Query, ...]]:
        judged = histograms(histogram(raw, name, sides.ebpf, EBPF),
                            histogram(raw, name, sides.reference, KUBE_PROXY), settings,
                            unit=unit)
        return judged, find_query(raw, name, sides.ebpf), find_query(raw, name, sides.reference)
    return run


def _cpu_judge(name: str) -> Judge:
    def run(raw: RawData, sides: Sides, settings: JudgeSettings) -> tuple[
            Judged, tuple[Query, ...], tuple[Query, ...]]:
        judged = means(series_mean(raw, name, sides.ebpf, EBPF),
                       series_mean(raw, name, sides.reference, KUBE_PROXY), settings,
                       lower_is_better=True, unit="cores per node", exposure="node time")
        query = find_query(raw, name)
        return judged, query, query
    return run


def _load_bytes(raw: RawData, sides: Sides, settings: JudgeSettings) -> tuple[
        Judged, tuple[Query, ...], tuple[Query, ...]]:
    def side(window: Window | None, datapath: str) -> tuple[float, float] | None:
        sent = totals(raw, "claims_load_bytes", window, datapath)
        seconds = totals(raw, "claims_load_seconds", window, datapath)
        return (sent / seconds, seconds) if sent is not None and seconds else None
    judged = means(side(sides.ebpf, EBPF), side(sides.reference, KUBE_PROXY), settings,
                   lower_is_better=False, unit="bytes/s", exposure="time under load")
    return (judged, find_query(raw, "claims_load_bytes", sides.ebpf)
            + find_query(raw, "claims_load_seconds", sides.ebpf),
            find_query(raw, "claims_load_bytes", sides.reference)
            + find_query(raw, "claims_load_seconds", sides.reference))


def _load_connections(raw: RawData, sides: Sides, settings: JudgeSettings) -> tuple[
        Judged, tuple[Query, ...], tuple[Query, ...]]:
    def side(window: Window | None, datapath: str) -> tuple[float, float] | None:
        if window is None:
            return None
        by_result: dict[str, float] = defaultdict(float)
        for s in raw.samples.get(f"{window.name}:claims_load_connections", ()):
            if s.labels.get("datapath") == datapath and math.isfinite(s.value):
                by_result[s.labels.get("result", "")] += s.value
        return (sum(by_result.values()), by_result.get("pass", 0.0)) if by_result else None
    judged = failures(side(sides.ebpf, EBPF), side(sides.reference, KUBE_PROXY), settings)
    return (judged, find_query(raw, "claims_load_connections", sides.ebpf),
            find_query(raw, "claims_load_connections", sides.reference))


@dataclass(frozen=True, slots=True)
class ClaimEvidence:
    what: str
    judge: Judge
    source: str  # the query name whose absence makes it optional evidence
    optional: str = ""  # why it may be absent (empty: always shown, absent = no data)
    guard: bool = False  # can make the claim worse, but does not measure the claim itself


EVIDENCE = {
    "throughput": (
        ClaimEvidence("probe load: bytes per second", _load_bytes, "claims_load_bytes"),
        ClaimEvidence("probe load: connections that failed (at the load's fixed rate)",
                      _load_connections, "claims_load_connections", guard=True),
    ),
    "latency": (
        ClaimEvidence("handshake time, every Service pooled (Hubble)",
                      _histogram_judge("buckets", "handshakes"), "buckets"),
        ClaimEvidence("handshake time of the verification probes",
                      _histogram_judge("claims_probe_handshakes", "handshakes"),
                      "claims_probe_handshakes", "no verification probe results in the range"),
        ClaimEvidence("handshake time of the probe load's connections",
                      _histogram_judge("claims_load_handshakes", "handshakes"),
                      "claims_load_handshakes", "the probe load option did not run in the range"),
    ),
    "cpu": (
        ClaimEvidence("CPU of the process serving Services, per node",
                      _cpu_judge("claims_service_cpu"), "claims_service_cpu"),
        ClaimEvidence("CPU of kube-proxy and the Cilium agent together, per node",
                      _cpu_judge("claims_process_cpu"), "claims_process_cpu"),
        ClaimEvidence("cAdvisor: kube-proxy and cilium-agent containers, per node",
                      _cpu_judge("claims_cadvisor_cpu"), "claims_cadvisor_cpu",
                      "the cluster's Prometheus has no cAdvisor container_cpu_usage_seconds_total "
                      "for kube-proxy or cilium-agent containers (with a node label)"),
    ),
    "programming": (
        ClaimEvidence("programming latency: kube-proxy's and the agent's own histograms",
                      _histogram_judge("claims_programming", "changes"), "claims_programming"),
        ClaimEvidence("programming latency measured by the probes",
                      _histogram_judge("claims_probe_programming", "changes"),
                      "claims_probe_programming", "no active programming-latency measure in the range"),
    ),
}


def _measurement(raw: RawData, evidence: ClaimEvidence, sides: Sides,
                         settings: JudgeSettings) -> Measurement:
    if sides.ebpf is None or sides.reference is None:
        judged = no_data("no kube-proxy period before a switch in the range",
                         "") if sides.comparison == AFTER_VS_BASELINE else no_data(
                             "no window in the range", "")
        ebpf_q: tuple[Query, ...] = ()
        ref_q: tuple[Query, ...] = ()
    else:
        judged, ebpf_q, ref_q = evidence.judge(raw, sides, settings)
    change = fmt.relative(judged.change) if judged.change is not None else fmt.NO_DATA
    return Measurement(evidence.what, sides.comparison, judged.outcome, judged.why,
                       Figure(judged.ebpf, ebpf_q), Figure(judged.reference, ref_q),
                       Figure(change, tuple(dict.fromkeys(ebpf_q + ref_q))), judged.test,
                       judged.details,
                       judged.change)


def against_claim(claim: Claim, outcome: str, change: float | None) -> str:
    if outcome == INCONCLUSIVE:
        return "cannot tell: not enough data"
    if outcome == WORSE:
        return "contradicted: measured worse"
    if outcome != BETTER:
        return "not confirmed: no change beyond the thresholds"
    if claim.target is None or change is None:
        return "confirmed"
    reached = change >= claim.target if claim.higher_is_better else change <= claim.target
    if reached:
        return f"confirmed: {fmt.relative(change)} (claimed {fmt.relative(claim.target)})"
    return (f"partly: better by {fmt.relative(change)}, less than the claimed "
            f"{fmt.relative(claim.target)}")


def claim_row(raw: RawData, claim: Claim, settings: JudgeSettings) -> ClaimRow:
    """The claim's measurements and outcome: combined over the evidence that measures the
    claim; guard evidence (e.g. failed connections under load) can only make it worse."""
    measured: list[tuple[Measurement, bool]] = []
    notes = []
    for evidence in EVIDENCE[claim.key]:
        if evidence.optional and not has_any(raw, evidence.source):
            notes.append(f"{evidence.what}: not measured ({evidence.optional}); absent, not zero")
            continue
        measured += [(_measurement(raw, evidence, sides, settings), evidence.guard)
                     for sides in comparisons(raw)]
    outcome = combined([m.outcome for m, guard in measured if not guard])
    if any(guard and m.outcome == WORSE for m, guard in measured):
        outcome = WORSE
    changes = [m.relative for m, guard in measured
               if not guard and m.outcome == outcome and m.relative is not None]
    return ClaimRow(claim.key, claim.text, outcome,
                    against_claim(claim, outcome, changes[0] if changes else None),
                    tuple(m for m, _ in measured), tuple(notes))


def build_claims(raw: RawData, settings: JudgeSettings) -> ClaimsTable:
    rows = tuple(claim_row(raw, claim, settings) for claim in CLAIMS)
    count = service_count(raw)
    return ClaimsTable(rows, count, scale_line(count), CPU_CAVEATS)
