"""Simulated kube-proxy ``/metrics``, and the agents' process CPU and Service implementation
delay, consistent with the scenario (pure: no I/O).

Per node, the process serving Services costs ``service_cpu_cores`` of the datapath it
runs (``Scenario.kube_proxy`` / ``Scenario.ebpf``), and a Service or endpoint change
takes ``programming`` to reach it:

* on a kube-proxy node, kube-proxy (iptables mode, Kubernetes 1.33 names with
  ``ip_family="IPv4"``) exports ``process_cpu_seconds_total`` growing at the kube-proxy
  profile's rate, its rule sync duration histogram, last sync time and network
  programming latency histogram; the agent (KPR off) uses ``AGENT_BASE_CPU_CORES``;
* on an eBPF node no kube-proxy runs (``kube_proxy_metrics`` answers None: the route
  is a 404), and the agent's ``cilium_process_cpu_seconds_total`` grows at the eBPF
  profile's rate, with ``cilium_service_implementation_delay`` from its programming.

Every switch restarts the node's processes (the agent reads its configuration at start;
kube-proxy is scheduled off and back on), so their counters start again from zero;
processes running at scenario start have run ``WARM_S`` already. Histogram buckets are
``floor(n * CDF(le))`` of the profile's log-normal latency for the ``n`` changes so far:
cumulative, and growing with time.
"""

from __future__ import annotations

import math
from typing import Final

from exporter.model import EBPF
from exporter.simulator.scenarios import Latency, Scenario

AGENT_BASE_CPU_CORES: Final = 0.02  # the agent's own work (CNI, policy, Hubble) with KPR off
WARM_S: Final = 3600.0
CHANGES_PER_S: Final = 0.05  # Service / EndpointSlice changes each node programs
SYNCS_PER_S: Final = 0.1  # kube-proxy rule syncs (changes batched, periodic resyncs)
SYNC_LATENCY: Final = Latency(0.02, 0.25)  # iptables rule sync on a small cluster
KUBE_PROXY_VERSION: Final = "v1.33.2"

SYNC_BOUNDS: Final = tuple(0.001 * 2 ** i for i in range(15))
PROGRAMMING_BOUNDS: Final = (0.0, 0.25, 0.5, *range(1, 60), *range(60, 120, 5),
                             *range(120, 301, 30))
CILIUM_BOUNDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def uptime(scenario: Scenario, node: str, at_s: float) -> float:
    """Seconds the node's current processes have run at scenario second ``at_s``."""
    starts = [sw.at_s for sw in scenario.switches if sw.node == node and sw.at_s <= at_s]
    return at_s - max(starts) if starts else at_s + WARM_S


def kube_proxy_metrics(scenario: Scenario, node: str, at_s: float, epoch_s: float) -> str | None:
    """kube-proxy's text on ``node`` at ``at_s``; None when no kube-proxy runs there."""
    if scenario.datapath_at(node, at_s) == EBPF:
        return None
    up = uptime(scenario, node, at_s)
    family = (("ip_family", "IPv4"),)
    syncs = math.floor(up * SYNCS_PER_S)
    # Whole milliseconds, rounded down: a sync is never reported in the future.
    last_sync = math.floor((epoch_s + at_s - (up - syncs / SYNCS_PER_S)) * 1000) / 1000
    lines: list[str] = []
    _histogram(lines, "kubeproxy_network_programming_duration_seconds",
               "[ALPHA] In Cluster Network Programming Latency in seconds", family,
               PROGRAMMING_BOUNDS, scenario.kube_proxy.programming,
               math.floor(up * CHANGES_PER_S))
    _histogram(lines, "kubeproxy_sync_proxy_rules_duration_seconds",
               "[ALPHA] SyncProxyRules latency in seconds", family, SYNC_BOUNDS, SYNC_LATENCY,
               syncs)
    _single(lines, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge",
            "[ALPHA] The last time proxy rules were successfully synced",
            'ip_family="IPv4"', f"{last_sync:.3f}")
    _single(lines, "kubernetes_build_info", "gauge",
            "[ALPHA] A metric with a constant '1' value labeled by git version.",
            f'git_version="{KUBE_PROXY_VERSION}",major="1",minor="33"', "1")
    _single(lines, "process_cpu_seconds_total", "counter",
            "Total user and system CPU time spent in seconds.", "",
            f"{scenario.kube_proxy.service_cpu_cores * up:.2f}")
    _single(lines, "process_start_time_seconds", "gauge",
            "Start time of the process since unix epoch in seconds.", "",
            f"{epoch_s + at_s - up:.2f}")
    return "\n".join(lines) + "\n"


def agent_process_metrics(scenario: Scenario, node: str, at_s: float) -> str:
    """The agent's process CPU, and on eBPF nodes its Service implementation delay."""
    up = uptime(scenario, node, at_s)
    ebpf = scenario.datapath_at(node, at_s) == EBPF
    cores = scenario.ebpf.service_cpu_cores if ebpf else AGENT_BASE_CPU_CORES
    lines: list[str] = []
    _single(lines, "cilium_process_cpu_seconds_total", "counter",
            "Total user and system CPU time spent in seconds.", "", f"{cores * up:.2f}")
    if ebpf:
        _histogram(lines, "cilium_service_implementation_delay",
                   "Duration in seconds to propagate the data plane programming of a service, "
                   "its network and endpoints from the time the service or the service pod was "
                   "changed excluding the event queue latency", (("action", "update"),),
                   CILIUM_BOUNDS, scenario.ebpf.programming, math.floor(up * CHANGES_PER_S))
    return "\n".join(lines) + "\n"


def _single(lines: list[str], name: str, kind: str, help_text: str, labels: str,
            value: str) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
              f"{name}{{{labels}}} {value}" if labels else f"{name} {value}"]


def _histogram(lines: list[str], name: str, help_text: str, labels: tuple[tuple[str, str], ...],
               bounds: tuple[float, ...], latency: Latency, n: int) -> None:
    head = ",".join(f'{k}="{v}"' for k, v in labels)
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for bound in bounds:
        lines.append(f'{name}_bucket{{{head},le="{_le(bound)}"}} {math.floor(n * _cdf(latency, bound))}')
    lines.append(f'{name}_bucket{{{head},le="+Inf"}} {n}')
    mean = math.exp(latency.mu + latency.sigma ** 2 / 2)
    lines.append(f"{name}_sum{{{head}}} {n * mean:.6f}")
    lines.append(f"{name}_count{{{head}}} {n}")


def _cdf(latency: Latency, bound: float) -> float:
    if bound <= 0:
        return 0.0
    if latency.sigma == 0:
        return 1.0 if bound >= latency.median_s else 0.0
    z = (math.log(bound) - latency.mu) / (latency.sigma * math.sqrt(2))
    return 0.5 * (1 + math.erf(z))


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
