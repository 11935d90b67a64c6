"""The cluster's Service count against published results, and what the CPU numbers mean.

``service_count`` reads kube-state-metrics' ``kube_service_info`` (every Service, exact)
and falls back to the Services the exporter saw traffic to (a lower bound). ``scale_line``
puts it next to the scales at which published measurements (``docs/claims.md``) saw the
datapath make a difference. Pure module.
"""

from __future__ import annotations

import math
from typing import Final

from exporter.report import fmt
from exporter.report.claims_model import Figure, ServiceCount
from exporter.report.data import Query, RawData

#: Services above which published measurements see first-connection latency grow with
#: iptables (Cilium 1.6 release blog: 300 µs flat with eBPF, ~380 µs with iptables at 1,000
#: Services and rising; the Kubernetes nftables blog's reasoning; docs/claims.md).
LATENCY_SCALE: Final = 1_000
#: Services at which Cilium overtook kube-proxy iptables on short-connection throughput in
#: the TKE benchmark (iptables ahead below; docs/claims.md).
THROUGHPUT_SCALE: Final = 20_000

CPU_CAVEATS: Final = (
    "On kube-proxy nodes the Service datapath CPU is kube-proxy's own process. On eBPF nodes "
    "it is the whole Cilium agent, which also does work unrelated to Services (pod "
    "networking, network policy, Hubble, health checks) and did that work before the switch "
    "too; the row for kube-proxy and the agent together compares like with like.",
    "None of the CPU numbers include the kernel's softirq time spent on the packets "
    "themselves (walking iptables rules, running the BPF programs): much of the per-packet "
    "difference between the datapaths is there, and it is not visible here. A lower number "
    "says the processes that program Services cost less; it does not prove that the node "
    "spends less CPU on Service traffic.",
    "cAdvisor's container CPU, when present, counts the same two containers from the "
    "kubelet's side (their cgroups); it has the same blind spot for softirq time.",
)


def _first(raw: RawData, name: str) -> tuple[float | None, tuple[Query, ...]]:
    samples = raw.samples.get(name, ())
    query = tuple(q for q in raw.queries if q.name == name)[:1]
    values = [s.value for s in samples if math.isfinite(s.value)]
    return (values[0] if values else None), query


def service_count(raw: RawData) -> ServiceCount:
    exact, exact_query = _first(raw, "claims_services_ksm")
    if exact is not None:
        return ServiceCount(Figure(fmt.count(exact), exact_query),
                            "kube-state-metrics (kube_service_info)", True)
    seen, seen_query = _first(raw, "claims_services_seen")
    if seen is not None:
        return ServiceCount(Figure(fmt.count(seen), seen_query),
                            "Services with traffic the exporter saw in the range "
                            "(kube_service_info not found): a lower bound", False)
    return ServiceCount(None, "neither kube_service_info nor any Service traffic in the range",
                        False)


def scale_line(count: ServiceCount) -> str:
    scales = (f"published results suggest gains appear above ~{LATENCY_SCALE:,} Services "
              f"(first-connection latency) and ~{THROUGHPUT_SCALE:,} Services (short-connection "
              "throughput; below that, iptables was ahead); sources in docs/claims.md")
    if count.count is None:
        return f"Your Service count is unknown ({count.source}); {scales}."
    shown = count.count.text if count.exact else f"at least {count.count.text}"
    return f"Your Service count is {shown} ({count.source}); {scales}."
