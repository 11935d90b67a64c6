"""A two-hour canary migration as OpenMetrics history, for backfilling a real Prometheus.

Timeline (T0 = 2025-11-24T16:00:00Z, one exporter scraped every 30 s):

* 0-40 min: phase ``before``, every node on kube-proxy; the baseline is frozen at 35 min;
* 40 min: node-b switches to eBPF (phase ``canary``); 60 min: node-c switches too;
* shop/cart gets slower handshakes, refused connections and "Service backend not found"
  drops on eBPF; shop/checkout gets faster; payments/ledger stays the same; a hostile
  ``<script>`` service in namespace ``web`` has too little traffic to judge;
* 80-82 min: the Hubble stream is down and 120 events are lost; node-b's agent scrape fails;
* 100 min: the judge's worse verdicts lead to a dry-run rollback (``planned``);
* verification probes run every check (``PROBE_CHECKS``) on every node twice per scrape;
  once on eBPF, node-b fails ``nodeport-loopback`` and ``session-affinity`` (every result),
  while node-c passes everything after its own switch.

The claims' series (CPU, programming, probe load, cAdvisor, kube-state-metrics' Services)
come from ``scenario_claims.py``, with their known truth.

``openmetrics()`` returns the text ``promtool tsdb create-blocks-from openmetrics`` reads.
Counters are deterministic (expected counts accumulated, floored), so recordings repeat.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

T0 = 1764000000.0  # 2025-11-24T16:00:00Z
START = T0
END = T0 + 7200.0
HISTORY_FROM = T0 - 600.0
SCRAPE = 30.0
SWITCH = {"node-b": T0 + 2400.0, "node-c": T0 + 3600.0}
NODES = ("node-a", "node-b", "node-c")
BASELINE_AT = T0 + 2100.0
VERDICTS_FROM = T0 + 2700.0
ROLLBACK_AT = T0 + 6000.0
OUTAGE = (T0 + 4800.0, T0 + 4920.0)
HOSTILE = '<script>alert("x")</script> | $1'
INSTANCE = {"job": "kpr-exporter", "instance": "kpr-exporter:9977"}

BOUNDS = ("2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
          "0.025", "0.1", "0.5", "1.5", "3.5", "7.5", "+Inf")
KUBE_PROXY_SHAPE = (0, .01, .09, .35, .30, .15, .07, .02, .008, .002, 0, 0, 0, 0, 0, 0)
FASTER_SHAPE = (.01, .05, .25, .40, .20, .06, .025, .004, .001, 0, 0, 0, 0, 0, 0, 0)
SLOWER_SHAPE = (0, 0, .03, .15, .25, .22, .15, .10, .06, .03, .008, .002, 0, 0, 0, 0)


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    rate: float  # handshakes per second per client node
    ebpf_shape: tuple[float, ...]
    ebpf_refused: float  # share of attempts
    ebpf_backend_drops: float  # SERVICE_BACKEND_NOT_FOUND drops per second per eBPF node


SERVICES = (
    Service("shop", "cart", 20.0, SLOWER_SHAPE, 0.01, 0.5),
    Service("shop", "checkout", 10.0, FASTER_SHAPE, 0.001, 0.0),
    Service("payments", "ledger", 5.0, KUBE_PROXY_SHAPE, 0.001, 0.0),
    Service("web", HOSTILE, 0.02, KUBE_PROXY_SHAPE, 0.001, 0.0),
)

# (sli, comparison) -> value per service, once the judge has run long enough.
NAN = float("nan")
VERDICTS = {
    "cart": {("connect_duration", "canary-vs-control"): 1, ("connect_failures", "canary-vs-control"): 1,
             ("drops", "canary-vs-control"): 1, ("kpr_sensitive_drops", "canary-vs-control"): 1,
             ("connect_duration", "after-vs-baseline"): 1, ("connect_failures", "after-vs-baseline"): 0,
             ("drops", "after-vs-baseline"): 1, ("kpr_sensitive_drops", "after-vs-baseline"): 1},
    "checkout": {("connect_duration", "canary-vs-control"): -1, ("connect_failures", "canary-vs-control"): 0,
                 ("drops", "canary-vs-control"): 0, ("kpr_sensitive_drops", "canary-vs-control"): 0,
                 ("connect_duration", "after-vs-baseline"): -1, ("drops", "after-vs-baseline"): 0},
    "ledger": {("connect_duration", "canary-vs-control"): 0, ("connect_failures", "canary-vs-control"): 0,
               ("drops", "canary-vs-control"): 0, ("kpr_sensitive_drops", "canary-vs-control"): 0,
               ("connect_duration", "after-vs-baseline"): 0, ("drops", "after-vs-baseline"): 0},
    HOSTILE: {("connect_duration", "canary-vs-control"): NAN, ("drops", "canary-vs-control"): NAN,
              ("connect_duration", "after-vs-baseline"): NAN},
}
EFFECTS = {"cart": 2.1, "checkout": -0.31, "ledger": 0.02, HOSTILE: NAN}


def times(start: float = HISTORY_FROM) -> Iterator[float]:
    t = start
    while t <= END:
        yield t
        t += SCRAPE


def datapath(node: str, t: float) -> str:
    return "ebpf" if node in SWITCH and t >= SWITCH[node] else "kube-proxy"


def openmetrics() -> str:
    out: list[str] = []
    _state(out)
    _services(out)
    _nodes(out)
    _judgement(out)
    _self(out)
    _probes(out)
    from tests.report.scenario_claims import openmetrics_lines  # builds on the helpers here

    out += openmetrics_lines()
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    merged = {**labels, **INSTANCE}
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in merged.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if value != int(value) else str(int(value))


def _state(out: list[str]) -> None:
    out.append("# TYPE kpr_migration_phase gauge")
    for phase in ("before", "canary", "after", "rolled-back", "unknown"):
        for t in times():
            current = "canary" if t >= SWITCH["node-b"] else "before"
            out.append(f"kpr_migration_phase{_labels(phase=phase)} {int(phase == current)} {t:.0f}")
    out.append("# TYPE kpr_node_datapath_info gauge")
    for node in NODES:
        for dp in ("kube-proxy", "ebpf"):
            source = "feature-gauge" if node == "node-a" else "cilium-node-config"
            for t in times():
                if datapath(node, t) == dp:
                    out.append(f"kpr_node_datapath_info{_labels(node=node, datapath=dp, source=source)}"
                               f" 1 {t:.0f}")
    out.append("# TYPE kpr_node_datapath_switch_timestamp_seconds gauge")
    for node, when in SWITCH.items():
        for t in times(when):
            out.append(f"kpr_node_datapath_switch_timestamp_seconds{_labels(node=node)} {when:.0f} {t:.0f}")


def _services(out: list[str]) -> None:
    buckets: list[str] = []
    counts: list[str] = []
    sums: list[str] = []
    attempts: list[str] = []
    flows: list[str] = []
    drops: list[str] = []
    for svc in SERVICES:
        for dp in ("kube-proxy", "ebpf"):
            shape_cum = [0.0] * len(BOUNDS)
            shape = svc.ebpf_shape if dp == "ebpf" else KUBE_PROXY_SHAPE
            refused_share = svc.ebpf_refused if dp == "ebpf" else 0.001
            expected = {"hs": 0.0, "refused": 0.0, "timeout": 0.0, "flows": 0.0, "policy": 0.0,
                        "backend": 0.0}
            started = False
            for t in times():
                clients = sum(1 for n in NODES if datapath(n, t) == dp)
                if clients == 0 and not started:
                    continue
                started = True
                conns = svc.rate * clients * SCRAPE
                expected["hs"] += conns * (1 - refused_share)
                expected["refused"] += conns * refused_share
                expected["timeout"] += conns * 0.0002
                expected["flows"] += conns * 10
                expected["policy"] += 0.01 * clients * SCRAPE
                if dp == "ebpf":
                    expected["backend"] += svc.ebpf_backend_drops * clients * SCRAPE
                hs = math.floor(expected["hs"])
                running = 0.0
                for i, share in enumerate(shape):
                    running += share
                    shape_cum[i] = math.floor(hs * min(1.0, running + 1e-12)) if i < len(BOUNDS) - 1 else hs
                key = dict(namespace=svc.namespace, service=svc.name, datapath=dp)
                for le, value in zip(BOUNDS, shape_cum):
                    buckets.append(f"kpr_service_connect_duration_seconds_bucket{_labels(**key, le=le)} "
                                   f"{int(value)} {t:.0f}")
                counts.append(f"kpr_service_connect_duration_seconds_count{_labels(**key)} {hs} {t:.0f}")
                sums.append(f"kpr_service_connect_duration_seconds_sum{_labels(**key)} "
                            f"{hs * 0.0005:.6f} {t:.0f}")
                for result, value in (("established", hs), ("refused", math.floor(expected["refused"])),
                                      ("timeout", math.floor(expected["timeout"]))):
                    attempts.append(f"kpr_service_connect_attempts_total{_labels(**key, result=result)} "
                                    f"{value} {t:.0f}")
                flows.append(f"kpr_service_flows_total{_labels(**key, verdict='FORWARDED')} "
                             f"{math.floor(expected['flows'])} {t:.0f}")
                drops.append(f"kpr_service_drops_total{_labels(**key, reason='POLICY_DENIED')} "
                             f"{math.floor(expected['policy'])} {t:.0f}")
                if dp == "ebpf" and svc.ebpf_backend_drops:
                    drops.append(f"kpr_service_drops_total"
                                 f"{_labels(**key, reason='SERVICE_BACKEND_NOT_FOUND')} "
                                 f"{math.floor(expected['backend'])} {t:.0f}")
    out.append("# TYPE kpr_service_connect_duration_seconds histogram")
    out += _grouped(buckets) + _grouped(counts) + _grouped(sums)
    out.append("# TYPE kpr_service_connect_attempts counter")
    out += _grouped(attempts)
    out.append("# TYPE kpr_service_flows counter")
    out += _grouped(flows)
    out.append("# TYPE kpr_service_drops counter")
    out += _grouped(drops)


def _grouped(lines: list[str]) -> list[str]:
    """Lines of one series together, in time order (promtool wants each series sorted)."""
    by_series: dict[str, list[str]] = {}
    for line in lines:
        series = line.rsplit(" ", 2)[0]
        by_series.setdefault(series, []).append(line)
    return [line for series in by_series.values() for line in series]


def _nodes(out: list[str]) -> None:
    out.append("# TYPE kpr_node_drops counter")
    for node in NODES:
        policy = backend = 0.0
        for dp in ("kube-proxy", "ebpf"):
            for t in times():
                if datapath(node, t) != dp:
                    continue
                policy += 0.2 * SCRAPE
                out.append(f"kpr_node_drops_total{_labels(node=node, datapath=dp, reason='Policy denied', direction='INGRESS')}"
                           f" {math.floor(policy)} {t:.0f}")
            if dp == "ebpf" and node in SWITCH:
                for t in times(SWITCH[node]):
                    backend += 1.0 * SCRAPE
                    out.append(f"kpr_node_drops_total{_labels(node=node, datapath=dp, reason='Service backend not found', direction='EGRESS')}"
                               f" {math.floor(backend)} {t:.0f}")
    out.append("# TYPE kpr_agent_up gauge")
    for node in NODES:
        for t in times():
            down = node == "node-b" and OUTAGE[0] <= t < OUTAGE[1]
            out.append(f"kpr_agent_up{_labels(node=node)} {0 if down else 1} {t:.0f}")


def _judgement(out: list[str]) -> None:
    out.append("# TYPE kpr_baseline_connect_duration_seconds gauge")
    baseline = {"cart": (0.00041, 0.0011, 0.0029), "checkout": (0.00040, 0.0010, 0.0027),
                "ledger": (0.00042, 0.0011, 0.0030)}
    for svc in SERVICES:
        if svc.name not in baseline:
            continue
        for q, value in zip(("0.5", "0.9", "0.99"), baseline[svc.name]):
            for t in times(BASELINE_AT):
                out.append(f"kpr_baseline_connect_duration_seconds"
                           f"{_labels(namespace=svc.namespace, service=svc.name, q=q)} {value} {t:.0f}")
    out.append("# TYPE kpr_baseline_drop_ratio gauge")
    for svc in SERVICES:
        if svc.name in baseline:
            for t in times(BASELINE_AT):
                out.append(f"kpr_baseline_drop_ratio{_labels(namespace=svc.namespace, service=svc.name)}"
                           f" 0.0001 {t:.0f}")
    for family, source in (("kpr_verdict", "verdict"), ("kpr_verdict_effect_size", "effect")):
        out.append(f"# TYPE {family} gauge")
        for svc in SERVICES:
            for (sli, comparison), value in VERDICTS[svc.name].items():
                labels = _labels(namespace=svc.namespace, service=svc.name, sli=sli, comparison=comparison)
                for t in times(VERDICTS_FROM):
                    if source == "verdict":
                        shown = value if t >= VERDICTS_FROM + 600 else NAN
                    else:
                        shown = EFFECTS[svc.name]
                    out.append(f"{family}{labels} {_num(shown)} {t:.0f}")


#: The probes' check vocabulary (as ``exporter.verify.results.CHECKS``), the checks the
#: canary's eBPF datapath breaks, and the results per (check, node) per scrape.
PROBE_CHECKS = ("clusterip-pod", "clusterip-host", "nodeport-local", "nodeport-remote",
                "nodeport-loopback", "loadbalancer", "etp-local-source-ip",
                "etp-local-healthcheck", "session-affinity", "no-endpoints-reject", "hostport",
                "apiserver-from-host", "long-lived-connection")
CANARY_BROKEN = {"node-b": ("nodeport-loopback", "session-affinity")}
PROBE_RESULTS_PER_SCRAPE = 2


def _probes(out: list[str]) -> None:
    out.append("# TYPE kpr_probe_checks counter")
    lines: list[str] = []
    for node in NODES:
        for check in PROBE_CHECKS:
            totals: dict[tuple[str, str], int] = {}
            for t in times():
                dp = datapath(node, t)
                broken = dp == "ebpf" and check in CANARY_BROKEN.get(node, ())
                key = (dp, "fail" if broken else "pass")
                totals[key] = totals.get(key, 0) + PROBE_RESULTS_PER_SCRAPE
                for (series_dp, result), value in totals.items():
                    labels = _labels(check=check, node=node, datapath=series_dp, result=result)
                    lines.append(f"kpr_probe_checks_total{labels} {value} {t:.0f}")
    out += _grouped(lines)


def _self(out: list[str]) -> None:
    out.append("# TYPE kpr_hubble_up gauge")
    for t in times():
        out.append(f"kpr_hubble_up{_labels()} {0 if OUTAGE[0] <= t < OUTAGE[1] else 1} {t:.0f}")
    out.append("# TYPE kpr_hubble_lost_events counter")
    for t in times():
        out.append(f"kpr_hubble_lost_events_total{_labels(source='HUBBLE_RING_BUFFER')} "
                   f"{120 if t >= OUTAGE[0] + 60 else 0} {t:.0f}")
    out.append("# TYPE kpr_config_owner_info gauge")
    owned = (("ConfigMap kube-system/cilium-config", "helm", "kube-system/cilium"),
             ("DaemonSet kube-system/kube-proxy", "none", ""))
    for obj, owner, name in owned:
        for t in times():
            out.append(f"kpr_config_owner_info{_labels(object=obj, owner=owner, owner_name=name)}"
                       f" 1 {t:.0f}")
    out.append("# TYPE kpr_rollbacks counter")
    for result in ("succeeded", "failed", "refused", "noop", "planned"):
        for t in times():
            value = 1 if result == "planned" and t >= ROLLBACK_AT else 0
            out.append(f"kpr_rollbacks_total{_labels(result=result, mode='dry-run')} {value} {t:.0f}")
