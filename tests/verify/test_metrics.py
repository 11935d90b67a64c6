"""Probe results as metrics: counted by the node whose datapath handled the path."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import results as r
from exporter.verify.metrics import ProbeMetrics


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_results_are_counted_against_the_node_that_served_them() -> None:
    registry = CollectorRegistry()
    metrics = ProbeMetrics(registry)
    assert not [k for k in _samples(registry) if k[0].startswith("kpr_probe")]  # no zeros
    metrics.observe([
        r.CheckResult(r.CLUSTERIP_POD, "node-a", KUBE_PROXY, "", "10.0.0.1:80", r.PASS,
                      "x", "y", 0.0004),
        r.CheckResult(r.NODEPORT_REMOTE, "node-a", KUBE_PROXY, "node-b", "10.1.0.2:30080",
                      r.FAIL, "x", "refused", None, EBPF),
        r.CheckResult(r.NODEPORT_REMOTE, "node-c", KUBE_PROXY, "node-b", "10.1.0.2:30080",
                      r.FAIL, "x", "refused", None, EBPF),
    ])
    got = _samples(registry)
    remote = (("check", r.NODEPORT_REMOTE), ("datapath", EBPF), ("node", "node-b"),
              ("result", r.FAIL))
    assert got[("kpr_probe_checks_total", remote)] == 2
    local = (("check", r.CLUSTERIP_POD), ("datapath", KUBE_PROXY), ("node", "node-a"))
    assert got[("kpr_probe_checks_total", (*local, ("result", r.PASS)))] == 1
    assert got[("kpr_probe_duration_seconds_count", local)] == 1
    bucket = "kpr_probe_duration_seconds_bucket"
    assert got[(bucket, tuple(sorted((*local, ("le", "0.0005")))))] == 1
    assert got[(bucket, tuple(sorted((*local, ("le", "0.00025")))))] == 0
    # a failure without a handshake has no duration
    assert not [k for k in got if k[0] == "kpr_probe_duration_seconds_count"
                and ("node", "node-b") in k[1]]
