"""The PromQL behind the claims table ("did the switch pay off?").

Three kinds, like the rest of the report (``queries``):

- timeline (range queries over the whole report range at the report's step): the CPU of
  each node per datapath, in cores (``rate()`` over the report's rate window), from the
  exporter's per-node counters and, when the cluster's Prometheus has it, from cAdvisor's
  container CPU (per node; the node's datapath comes from ``kpr_node_datapath_info``); the
  report slices them by window;
- window totals (instant queries at a window's end over the window's length): the
  programming-latency histograms (the processes' own and the probes' active measure), the
  probes' handshake histograms (their checks, and the load's connections) and the probe
  load's connections by result, bytes and seconds;
- current state (instant at the report's end): how many Services the cluster has.

A query that matches nothing is "no data", never zero. Pure module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from exporter.report.queries import duration
from exporter.rulegen import names as n

_CONTAINERS: Final = "|".join(n.SERVICE_CONTAINERS)


# --- timeline (range): cores per node and datapath ---------------------------------------

def service_cpu(window: float) -> str:
    """The process serving the node's Services (kube-proxy, or the whole agent on eBPF)."""
    return f"sum by (node, datapath) (rate({n.SERVICE_DATAPATH_CPU}[{duration(window)}]))"


def both_processes_cpu(window: float) -> str:
    """kube-proxy and the Cilium agent together, wherever each runs."""
    return f"sum by (node, datapath) (rate({n.PROCESS_CPU}[{duration(window)}]))"


def cadvisor_cpu(window: float) -> str:
    """cAdvisor's CPU of the kube-proxy and cilium-agent containers per node (needs cAdvisor's
    ``node`` label); the report gives each point the node's datapath at that time."""
    return (f"sum by (node) (rate({n.CADVISOR_CPU}"
            f'{{container=~"{_CONTAINERS}"}}[{duration(window)}]))')


#: Range queries by name: ``rate window -> PromQL``.
RANGE_QUERIES: Final[dict[str, Callable[[float], str]]] = {
    "claims_service_cpu": service_cpu,
    "claims_process_cpu": both_processes_cpu,
    "claims_cadvisor_cpu": cadvisor_cpu,
}


# --- window totals (instant at the window's end) -----------------------------------------

def programming(window: float) -> str:
    return (f"sum by (datapath, source, le) "
            f"(increase({n.PROGRAMMING_DURATION}_bucket[{duration(window)}]))")


def probe_programming(window: float) -> str:
    return f"sum by (datapath, le) (increase({n.PROBE_PROGRAMMING}_bucket[{duration(window)}]))"


def probe_handshakes(window: float) -> str:
    return f"sum by (datapath, le) (increase({n.PROBE_DURATION}_bucket[{duration(window)}]))"


def _load(metric: str, *by: str) -> Callable[[float], str]:
    labels = ", ".join(("datapath", *by))

    def build(window: float) -> str:
        return f"sum by ({labels}) (increase({metric}[{duration(window)}]))"
    return build


#: Window queries by name, run for each before/after window (keyed ``"<window>:<name>"``).
WINDOW_QUERIES: Final[dict[str, Callable[[float], str]]] = {
    "claims_programming": programming,
    "claims_probe_programming": probe_programming,
    "claims_probe_handshakes": probe_handshakes,
    "claims_load_handshakes": _load(f"{n.PROBE_LOAD_CONNECT_DURATION}_bucket", "le"),
    "claims_load_connections": _load(n.PROBE_LOAD_CONNECTIONS, "result"),
    "claims_load_bytes": _load(n.PROBE_LOAD_BYTES),
    "claims_load_seconds": _load(n.PROBE_LOAD_SECONDS),
}


# --- current state (instant at the end) --------------------------------------------------

#: kube-state-metrics: every Service of the cluster (exact, when it is scraped).
SERVICES_KSM: Final = f"count({n.KSM_SERVICE_INFO})"


def services_seen(window: float) -> str:
    """Services the exporter saw traffic to over the range (a lower bound of the count)."""
    return (f"count(count by (namespace, service) "
            f"(last_over_time({n.FLOWS}[{duration(window)}])))")


def instant_queries(whole: float) -> dict[str, str]:
    """Current-state queries by name (``whole``: the report range's length)."""
    return {"claims_services_ksm": SERVICES_KSM, "claims_services_seen": services_seen(whole)}
