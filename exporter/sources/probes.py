"""Collect the verification probes' results and serve them again from the exporter.

``ProbeScraper`` is the agent scraper (``exporter.sources.agents``) reading each probe's
``kpr_probe_*`` families: the same concurrency, per-target timeout, body limit and
streaming filter, the last good snapshot kept per probe with whether the last attempt
worked and why not. Targets come from an injected ``discover()``: the static
``--probes.static`` list or the probe pods, keyed by a name (the pod's) since a node runs
two probes.

``ProbeCollector`` serves every probe's families as the probe reported them, with a
``probe`` label naming the target (two probes may both count results against one node, so
their series would otherwise collide). Nothing is accumulated here: ``rate()`` and
``histogram_quantile()`` work as on the probes' own series, and the alerts and
``kpr-exporter verify --exporter-url`` read the exporter as they would read the probes. A
probe whose last scrape failed has ``kpr_probes_up 0`` and no ``kpr_probe_*`` series (no
data must never look like zero). ``collect()`` does no I/O::

    kpr_probe_checks_total{check="nodeport-remote",node="worker-1",datapath="ebpf",result="pass",probe="kpr-probe-x7k2p"} 42
    kpr_probes_up{probe="kpr-probe-x7k2p"} 1
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from exporter.sources.agent_collector import AgentState, AgentStateSource
from exporter.sources.agents import AgentScraper, static_discovery
from exporter.sources.probe_text import (
    MEASURE_HISTOGRAMS,
    PROBE_FAMILIES,
    STATE_FAMILIES,
    ProbeScrapeError,
    ProbeSnapshot,
    parse_probe_metrics,
)
from exporter.sources.probes_settings import ProbeSourceSettings

__all__ = [
    "ProbeCollector", "ProbeScrapeError", "ProbeScraper", "ProbeSnapshot",
    "ProbeSourceSettings", "parse_probe_metrics", "static_discovery",
]

PROBE = "probe"


class ProbeScraper(AgentScraper):
    """Scrapes all probes once per ``scrape_once()``; ``run()`` repeats it."""

    component = "probe"
    components = "probes"

    families = PROBE_FAMILIES

    def snapshots(self) -> dict[str, ProbeSnapshot]:
        """Probe name -> its last good snapshot, for the probes whose last scrape worked."""
        found: dict[str, ProbeSnapshot] = {}
        for name, state in self.states().items():
            snapshot = state.snapshot
            if state.up and isinstance(snapshot, ProbeSnapshot):
                found[name] = snapshot
        return found


class ProbeCollector:
    """prometheus_client collector: the probes' families with a ``probe`` label, and the
    probe scrape's own health (no I/O in collect)."""

    def __init__(self, source: AgentStateSource) -> None:
        self._source = source

    def describe(self) -> Iterator[Metric]:
        yield from _Families().all()

    def collect(self) -> Iterator[Metric]:
        out = _Families()
        for name, state in sorted(self._source.states().items()):
            out.up.add_metric([name], 1.0 if state.up else 0.0)
            out.duration.add_metric([name], state.duration_seconds)
            for kind, count in state.errors.items():
                out.errors.add_metric([name, kind], count)
            out.dropped.add_metric([name], state.series_dropped)
            if state.up and isinstance(state.snapshot, ProbeSnapshot):
                _probe(out, name, state)
        yield from out.all()


def _probe(out: _Families, name: str, state: AgentState) -> None:
    snapshot = state.snapshot
    assert isinstance(snapshot, ProbeSnapshot)
    for key, value in sorted(snapshot.counts.items()):
        out.checks.add_metric([*key, name], value)
    for hist in snapshot.durations:
        labels = [hist.label("check"), hist.label("node"), hist.label("datapath"), name]
        out.durations.add_metric(labels, list(hist.buckets), hist.sum)
    for family_name, found in snapshot.measures.items():
        names = MEASURE_HISTOGRAMS[family_name]
        for hist in found:
            out.measures[family_name].add_metric([*(hist.label(n) for n in names), name],
                                                 list(hist.buckets), hist.sum)
    for (sample, labels), value in sorted(snapshot.state.items()):
        family = out.state[sample]
        got = dict(labels)
        family.add_metric([*(got.get(n, "") for n in STATE_FAMILIES[sample][1]), name], value)


class _Families:
    """The families of one collection, empty until filled."""

    def __init__(self) -> None:
        self.checks = CounterMetricFamily(
            "kpr_probe_checks", "Verification checks by result, per node whose datapath "
            "handled the path, as the probe named by probe reported them.",
            labels=("check", "node", "datapath", "result", PROBE))
        self.durations = HistogramMetricFamily(
            "kpr_probe_duration_seconds", "TCP handshake time of verification checks, as the "
            "probe named by probe reported it.", labels=("check", "node", "datapath", PROBE))
        self.measures = {
            family: HistogramMetricFamily(family, f"{family} of the probe named by probe, as it "
                                          "reported it.", labels=(*labels, PROBE))
            for family, labels in MEASURE_HISTOGRAMS.items()}
        self.state: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for sample, (kind, labels) in STATE_FAMILIES.items():
            helptext = f"{sample} of the probe named by probe, as it reported it."
            if kind == "counter":
                self.state[sample] = CounterMetricFamily(
                    sample.removesuffix("_total"), helptext, labels=(*labels, PROBE))
            else:
                self.state[sample] = GaugeMetricFamily(sample, helptext, labels=(*labels, PROBE))
        self.up = GaugeMetricFamily(
            "kpr_probes_up", "1 when the last scrape of the probe worked.", labels=(PROBE,))
        self.duration = GaugeMetricFamily(
            "kpr_probes_scrape_duration_seconds",
            "Duration of the last scrape of the probe, failed or not.", labels=(PROBE,))
        self.errors = CounterMetricFamily(
            "kpr_probes_scrape_errors", "Failed scrapes of the probe, by kind of failure.",
            labels=(PROBE, "kind"))
        self.dropped = CounterMetricFamily(
            "kpr_probes_series_dropped",
            "Samples of the probe not kept: their series exceeded probes.max_series.",
            labels=(PROBE,))

    def all(self) -> tuple[Metric, ...]:
        return (self.checks, self.durations, *self.measures.values(), *self.state.values(),
                self.up, self.duration, self.errors, self.dropped)
