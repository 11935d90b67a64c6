"""What the Service datapath costs each node, and how fast it is programmed: a
prometheus_client collector over the last scrapes of kube-proxy and of the Cilium agents.
``collect()`` does no I/O::

    kpr_node_service_datapath_cpu_seconds_total{node="worker-1",datapath="kube-proxy",source="kube-proxy"} 1874.21
    kpr_node_service_datapath_cpu_seconds_total{node="worker-2",datapath="ebpf",source="cilium-agent"} 3512.46
    kpr_node_programming_duration_seconds_bucket{node="worker-1",datapath="kube-proxy",source="kube-proxy",ip_family="IPv4",action="",le="1"} 528

The process whose numbers stand for the node is the one serving its Services now:
kube-proxy on a kube-proxy node, the Cilium agent on an eBPF node (``source`` says which);
a node of unknown datapath, or whose process's last scrape failed, has no series (no data
must never look like zero). Counters and histogram buckets are the processes' own,
passed through as reported: nothing is accumulated here, so ``rate()`` and
``histogram_quantile()`` work as on the originals. A process restart resets its counters,
which ``rate()`` handles.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from exporter.model import EBPF, KUBE_PROXY
from exporter.roles import DatapathResolver
from exporter.sources.agent_collector import AgentState, AgentStateSource
from exporter.sources.histogram_text import Histogram

#: Values of the ``source`` label: which process the numbers come from.
KUBE_PROXY_SOURCE = "kube-proxy"
AGENT_SOURCE = "cilium-agent"
SOURCES = (KUBE_PROXY_SOURCE, AGENT_SOURCE)


class ServiceDatapathCollector:
    """prometheus_client collector: per-node datapath CPU and programming latency, and the
    kube-proxy scrape's own health (no I/O in collect)."""

    def __init__(self, *, kube_proxy: AgentStateSource | None, agents: AgentStateSource | None,
                 resolver: DatapathResolver) -> None:
        self._kube_proxy = kube_proxy
        self._agents = agents
        self._resolver = resolver

    def describe(self) -> Iterator[Metric]:
        yield from _Families().all()

    def collect(self) -> Iterator[Metric]:
        out = _Families()
        proxies = dict(self._kube_proxy.states()) if self._kube_proxy is not None else {}
        agents = dict(self._agents.states()) if self._agents is not None else {}
        for node, state in sorted(proxies.items()):
            out.up.add_metric([node], 1.0 if state.up else 0.0)
            out.duration.add_metric([node], state.duration_seconds)
            for kind, count in state.errors.items():
                out.errors.add_metric([node, kind], count)
            out.dropped.add_metric([node], state.series_dropped)
        for node in sorted(proxies.keys() | agents.keys()):
            datapath = self._resolver.datapath(node)
            proxy, agent = _good(proxies.get(node)), _good(agents.get(node))
            for process, snapshot in ((KUBE_PROXY_SOURCE, proxy), (AGENT_SOURCE, agent)):
                if snapshot is not None and snapshot.cpu_seconds is not None:
                    out.process_cpu.add_metric([node, datapath, process], snapshot.cpu_seconds)
            if datapath == KUBE_PROXY and proxy is not None:
                _kube_proxy_node(out, node, proxy)
            elif datapath == EBPF and agent is not None:
                _agent_node(out, node, agent)
        yield from out.all()


def _good(state: AgentState | None) -> Any:
    """The snapshot of a node's last scrape if that scrape worked, else None."""
    return state.snapshot if state is not None and state.up else None


def _kube_proxy_node(out: _Families, node: str, snapshot: Any) -> None:
    head = [node, KUBE_PROXY, KUBE_PROXY_SOURCE]
    if snapshot.cpu_seconds is not None:
        out.cpu.add_metric(head, snapshot.cpu_seconds)
    for hist in snapshot.programming:
        _histogram(out.programming, [*head, hist.label("ip_family"), ""], hist)
    for hist in snapshot.sync_duration:
        _histogram(out.sync, [*head, hist.label("ip_family")], hist)
    for family, stamp in sorted(snapshot.last_sync.items()):
        out.last_sync.add_metric([*head, family], stamp)


def _agent_node(out: _Families, node: str, snapshot: Any) -> None:
    head = [node, EBPF, AGENT_SOURCE]
    if snapshot.cpu_seconds is not None:
        out.cpu.add_metric(head, snapshot.cpu_seconds)
    for hist in snapshot.programming:
        _histogram(out.programming, [*head, "", hist.label("action")], hist)


def _histogram(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    family.add_metric(labels, list(hist.buckets), hist.sum)


class _Families:
    """The families of one collection, empty until filled."""

    def __init__(self) -> None:
        head = ("node", "datapath", "source")
        self.cpu = CounterMetricFamily(
            "kpr_node_service_datapath_cpu_seconds_total",
            "CPU seconds of the process serving the node's Services (kube-proxy on kube-proxy "
            "nodes, the Cilium agent on eBPF nodes, which also does other work), as it reports "
            "them; kernel softirq time is not included.", labels=head)
        self.process_cpu = CounterMetricFamily(
            "kpr_node_process_cpu_seconds_total",
            "CPU seconds of kube-proxy and of the Cilium agent on the node, as each reports them.",
            labels=("node", "datapath", "process"))
        self.programming = HistogramMetricFamily(
            "kpr_node_programming_duration_seconds",
            "Seconds from a Service or endpoint change to the node's datapath programmed, as "
            "the serving process reports them (kube-proxy's network programming latency, the "
            "agent's Service implementation delay).",
            labels=(*head, "ip_family", "action"))
        self.sync = HistogramMetricFamily(
            "kpr_node_rules_sync_duration_seconds",
            "Seconds kube-proxy took per rule sync on the node, as it reports them.",
            labels=(*head, "ip_family"))
        self.last_sync = GaugeMetricFamily(
            "kpr_node_rules_last_sync_timestamp_seconds",
            "When kube-proxy last synced the node's rules successfully (unix seconds).",
            labels=(*head, "ip_family"))
        self.up = GaugeMetricFamily(
            "kpr_kube_proxy_up", "1 when the last scrape of the node's kube-proxy worked.",
            labels=("node",))
        self.duration = GaugeMetricFamily(
            "kpr_kube_proxy_scrape_duration_seconds",
            "Duration of the last scrape of the node's kube-proxy, failed or not.",
            labels=("node",))
        self.errors = CounterMetricFamily(
            "kpr_kube_proxy_scrape_errors_total",
            "Failed scrapes of the node's kube-proxy, by kind of failure.",
            labels=("node", "kind"))
        self.dropped = CounterMetricFamily(
            "kpr_kube_proxy_series_dropped_total",
            "Samples of the node's kube-proxy not kept: their series exceeded "
            "kube_proxy.max_series.", labels=("node",))

    def all(self) -> tuple[Metric, ...]:
        return (self.cpu, self.process_cpu, self.programming, self.sync, self.last_sync,
                self.up, self.duration, self.errors, self.dropped)


__all__ = ["AGENT_SOURCE", "KUBE_PROXY_SOURCE", "SOURCES", "ServiceDatapathCollector"]
