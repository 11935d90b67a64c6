"""The claims part of the recorded two-hour canary (``scenario.py``): what the switch costs
and buys, per node and datapath, as OpenMetrics history.

Known truth (eBPF against kube-proxy, same shapes before and after the switches):

* the process serving Services: kube-proxy 0.05 cores per node, the whole agent on eBPF
  0.035 (-30 %); kube-proxy and the agent together: 0.07 on kube-proxy nodes, 0.035 on eBPF;
* cAdvisor (kube-proxy and cilium-agent containers): 0.075 against 0.04;
* programming: kube-proxy's own histogram (median about 1.2 s) against the agent's (about
  5 ms), 0.05 changes per second per node, each with its real bucket layout;
* probe load: 10 connections per second at its fixed rate, all passing, on every node; the
  streams deliver 1 MB per second of streaming from kube-proxy nodes and 1.35 MB (+35 %) from
  eBPF nodes, one second of streaming per second;
* kube-state-metrics lists ``SERVICE_COUNT`` Services.

The probes' handshake and programming histograms are absent on purpose: the report must
name them as not measured, never as zero.
"""

from __future__ import annotations

import math

from tests.report.scenario import NODES, SWITCH, _grouped, _labels, datapath, times

SERVICE_COUNT = 40
CPU = {"kube-proxy": 0.05, "ebpf": 0.035}
AGENT_ON_KUBE_PROXY = 0.02
CADVISOR = {("kube-proxy", "kube-proxy"): 0.052, ("kube-proxy", "cilium-agent"): 0.023,
            ("ebpf", "cilium-agent"): 0.04}
CHANGES_PER_S = 0.05
KUBE_PROXY_BOUNDS = ("0.25", "0.5", "1", "2", "3", "5", "10", "30", "60", "+Inf")
KUBE_PROXY_CDF = (0.01, 0.08, 0.38, 0.80, 0.93, 0.985, 0.998, 1.0, 1.0, 1.0)
CILIUM_BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                 "+Inf")
CILIUM_CDF = (0.50, 0.90, 0.99, 0.998, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
LOAD = {"kube-proxy": (10.0, 1_000_000.0), "ebpf": (10.0, 1_350_000.0)}


def openmetrics_lines() -> list[str]:
    out: list[str] = []
    _cpu(out)
    _programming(out)
    _load(out)
    _cadvisor(out)
    _services(out)
    return out


def _node_datapaths(node: str) -> list[tuple[str, float]]:
    """(datapath, start of that stretch) in time order."""
    stretches = [("kube-proxy", -math.inf)]
    if node in SWITCH:
        stretches.append(("ebpf", SWITCH[node]))
    return stretches


def _counter_lines(name: str, rate: float, label_sets: list[tuple[dict[str, str], str]]
                   ) -> list[str]:
    """A counter per (labels, datapath) growing at ``rate`` while the node runs datapath."""
    lines = []
    for labels, dp in label_sets:
        total = 0.0
        node = labels["node"]
        for t in times():
            if datapath(node, t) != dp:
                continue
            total += rate * 30.0
            lines.append(f"{name}{_labels(**labels)} {total:.3f} {t:.0f}")
    return lines


def _cpu(out: list[str]) -> None:
    out.append("# TYPE kpr_node_service_datapath_cpu_seconds counter")
    lines: list[str] = []
    for node in NODES:
        for dp, _ in _node_datapaths(node):
            source = "kube-proxy" if dp == "kube-proxy" else "cilium-agent"
            lines += _counter_lines("kpr_node_service_datapath_cpu_seconds_total", CPU[dp],
                                    [({"node": node, "datapath": dp, "source": source}, dp)])
    out += _grouped(lines)
    out.append("# TYPE kpr_node_process_cpu_seconds counter")
    lines = []
    for node in NODES:
        for dp, _ in _node_datapaths(node):
            processes = ({"kube-proxy": CPU["kube-proxy"], "cilium-agent": AGENT_ON_KUBE_PROXY}
                         if dp == "kube-proxy" else {"cilium-agent": CPU["ebpf"]})
            for process, rate in processes.items():
                lines += _counter_lines("kpr_node_process_cpu_seconds_total", rate,
                                        [({"node": node, "datapath": dp, "process": process}, dp)])
    out += _grouped(lines)


def _histogram(out: list[str], node: str, dp: str) -> None:
    source, bounds, cdf = (("kube-proxy", KUBE_PROXY_BOUNDS, KUBE_PROXY_CDF) if dp == "kube-proxy"
                           else ("cilium-agent", CILIUM_BOUNDS, CILIUM_CDF))
    family = "ip_family" if dp == "kube-proxy" else "action"
    key = {"node": node, "datapath": dp, "source": source,
           "ip_family": "IPv4" if family == "ip_family" else "",
           "action": "update" if family == "action" else ""}
    changes = 0.0
    for t in times():
        if datapath(node, t) != dp:
            continue
        changes += CHANGES_PER_S * 30.0
        n = math.floor(changes)
        for le, share in zip(bounds, cdf):
            value = n if le == "+Inf" else math.floor(n * share)
            out.append(f"kpr_node_programming_duration_seconds_bucket{_labels(**key, le=le)} "
                       f"{value} {t:.0f}")


def _programming(out: list[str]) -> None:
    out.append("# TYPE kpr_node_programming_duration_seconds histogram")
    lines: list[str] = []
    for node in NODES:
        for dp, _ in _node_datapaths(node):
            _histogram(lines, node, dp)
    out += _grouped(lines)


def _load(out: list[str]) -> None:
    for metric, index in (("kpr_probe_load_connections", 0), ("kpr_probe_load_bytes", 1),
                          ("kpr_probe_load_seconds", None)):
        out.append(f"# TYPE {metric} counter")
        lines: list[str] = []
        for node in NODES:
            for dp, _ in _node_datapaths(node):
                rate = 1.0 if index is None else LOAD[dp][index]
                labels = {"node": node, "datapath": dp}
                if index == 0:
                    labels["result"] = "pass"
                lines += _counter_lines(f"{metric}_total", rate, [(labels, dp)])
        out += _grouped(lines)


def _cadvisor(out: list[str]) -> None:
    out.append("# TYPE container_cpu_usage_seconds counter")
    lines: list[str] = []
    for node in NODES:
        totals: dict[str, float] = {}
        for t in times():
            dp = datapath(node, t)
            for (on, container), rate in CADVISOR.items():
                if on != dp:
                    continue
                totals[container] = totals.get(container, 0.0) + rate * 30.0
                labels = _labels(node=node, namespace="kube-system", container=container,
                                 pod=f"{container}-{node}")
                lines.append(f"container_cpu_usage_seconds_total{labels} "
                             f"{totals[container]:.3f} {t:.0f}")
    out += _grouped(lines)


def _services(out: list[str]) -> None:
    out.append("# TYPE kube_service_info gauge")
    for i in range(SERVICE_COUNT):
        for t in times():
            out.append(f"kube_service_info{_labels(namespace='apps', service=f'svc-{i:02d}')}"
                       f" 1 {t:.0f}")
