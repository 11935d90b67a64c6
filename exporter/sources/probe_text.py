"""Reading the ``kpr_probe_*`` families from a ``kpr-exporter probe``'s ``/metrics``.

The agents' streaming ``ExpositionFilter`` (``exporter.sources.agent_text``) given the
probe's families: the check results, the connect-time histogram and the probe's own state
(rounds, last round, coverage, target errors, inapplicable cells, target datapaths). The
samples are kept as the probe reported them, to be served again with a ``probe`` label
(``exporter.sources.probes``) and summed per check and datapath for the judge.

A body without any ``kpr_probe_`` sample, a check count that is negative or not a number,
or a connect-time histogram whose buckets are not cumulative fails the scrape with
``ProbeScrapeError("parse")``; when the series cap cut the body short, a histogram left
incomplete by it is left out instead (the cap's counter says why). Pure module: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter import metrics_contract as mc
from exporter.sources.agent_text import ExpositionFilter, Families, Labels, ScrapeError, Series
from exporter.sources.histogram_text import Histogram, InvalidHistogram, histograms

CHECKS_NAME = "kpr_probe_checks_total"
DURATION_NAME = "kpr_probe_duration_seconds"

#: The probe's state families: sample name -> (type, label names), served again as read.
STATE_FAMILIES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "kpr_probe_rounds_total": ("counter", ("probe_node",)),
    "kpr_probe_target_errors_total": ("counter", ("probe_node",)),
    "kpr_probe_last_round_timestamp_seconds": ("gauge", ("probe_node",)),
    "kpr_probe_coverage_rounds": ("gauge", ("probe_node",)),
    "kpr_probe_not_applicable": ("gauge", ("check", "node", "reason")),
    "kpr_probe_target_datapath_info": ("gauge", ("node", "datapath")),
    **{m.name: ("counter", m.labels[:-1]) for m in (  # the measurements, without ``probe``
        mc.PROBE_LOAD_CONNECTIONS, mc.PROBE_LOAD_STREAMS, mc.PROBE_LOAD_BYTES,
        mc.PROBE_LOAD_SECONDS, mc.PROBE_PROGRAMMING_MISSED)},
}
#: The measurements' histograms (load option, programming chase): name -> label names.
MEASURE_HISTOGRAMS: Mapping[str, tuple[str, ...]] = {
    m.name: m.labels[:-1] for m in (mc.PROBE_LOAD_CONNECT_DURATION, mc.PROBE_PROGRAMMING_LATENCY)}
WANTED = (CHECKS_NAME, f"{DURATION_NAME}_bucket", f"{DURATION_NAME}_sum", *STATE_FAMILIES,
          *(f"{name}{part}" for name in MEASURE_HISTOGRAMS for part in ("_bucket", "_sum")))

#: (check, node, datapath, result) of a ``kpr_probe_checks_total`` series.
CountKey = tuple[str, str, str, str]


class ProbeScrapeError(ScrapeError):
    """One probe could not be scraped; ``kind`` is one of ``ERROR_KINDS`` (or ``internal``)."""


@dataclass(frozen=True, slots=True)
class ProbeSnapshot:
    """What one good scrape of a probe said, as the probe reported it."""

    counts: dict[CountKey, float]  # kpr_probe_checks_total
    durations: tuple[Histogram, ...]  # kpr_probe_duration_seconds, labels check/node/datapath
    state: dict[tuple[str, Labels], float] = field(default_factory=dict)  # STATE_FAMILIES
    series_dropped: int = 0
    duplicates: int = 0
    measures: dict[str, tuple[Histogram, ...]] = field(default_factory=dict)  # MEASURE_HISTOGRAMS


def _snapshot(series: Series, dropped: int, duplicates: int) -> ProbeSnapshot:
    counts: dict[CountKey, float] = {}
    state: dict[tuple[str, Labels], float] = {}
    for (name, labels), value in series.items():
        if name == CHECKS_NAME:
            if not (math.isfinite(value) and value >= 0):
                raise ProbeScrapeError("parse", f"{CHECKS_NAME}{dict(labels)} is {value}, "
                                                "not a count")
            got = dict(labels)
            key = (got.get("check", ""), got.get("node", ""), got.get("datapath", ""),
                   got.get("result", ""))
            counts[key] = counts.get(key, 0.0) + value  # extra labels, if any, summed away
        elif name in STATE_FAMILIES:
            state[(name, labels)] = value
    try:
        durations = histograms(series, DURATION_NAME, skip_invalid=dropped > 0)
        measures = {name: found for name in MEASURE_HISTOGRAMS
                    if (found := histograms(series, name, skip_invalid=dropped > 0))}
    except InvalidHistogram as exc:
        raise ProbeScrapeError("parse", str(exc)) from None
    return ProbeSnapshot(counts, durations, state, dropped, duplicates, measures)


#: The probe's read families, for ``ExpositionFilter(families=...)``.
PROBE_FAMILIES = Families(
    WANTED, marker="kpr_probe_", missing="no kpr_probe_* metrics in the body",
    build=_snapshot, error=ProbeScrapeError)


def parse_probe_metrics(text: str, *, max_series: int = 5000) -> ProbeSnapshot:
    """Read a whole exposition text at once (tests and the incremental path's reference)."""
    reader = ExpositionFilter(max_series=max_series, families=PROBE_FAMILIES)
    reader.feed(text.encode())
    snapshot: ProbeSnapshot = reader.finish()
    return snapshot
