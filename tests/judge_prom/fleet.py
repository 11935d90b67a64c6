"""A recorded node-mode fleet with known answers: three exporters, four services, 25 minutes.

Every 60 s each exporter (one per node, ``instance`` node-a/b/c) adds seeded traffic for the
services its node's clients call. node-a stays on kube-proxy, node-b runs eBPF throughout,
node-c switches from kube-proxy to eBPF at ``SWITCH``. On eBPF:

* shop/cart: handshakes twice as slow, more refused connections, "Service backend not
  found" drops -> worse;
* shop/checkout: handshakes 40 % faster -> better;
* pay/ledger: the same as kube-proxy -> not worse;
* web/sparse: two handshakes a minute -> inconclusive (too little traffic).

``history()`` gives each exporter's cumulative ``SliSnapshot`` per scrape time;
``merged`` is what one relay-mode exporter seeing every node would hold (the in-process
judge's input); ``openmetrics`` is the exporters' series for ``promtool tsdb
create-blocks-from openmetrics``. Every series exists from the first scrape (zeros until
traffic), and scrapes fall on the judge's window edges, so Prometheus' ``increase()``
extrapolates nothing: both judges see the same integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

from exporter.baseline.model import Baseline
from exporter.judge.history import Cohort
from exporter.snapshot import ServiceSli, SliKey, SliSnapshot
from tests.judge.samples import BOUNDS, lognormal, plus, sli, snap

T0 = 1_764_000_000.0
STEP = 60.0
STEPS = 25
END = T0 + STEP * STEPS
SWITCH = T0 + 8 * STEP
NODES = ("node-a", "node-b", "node-c")
JOB = "kpr-exporter"
SERVICES = (("shop", "cart"), ("shop", "checkout"), ("pay", "ledger"), ("web", "sparse"))
EXPECTED = {"cart": "worse", "checkout": "better", "ledger": "not_worse",
            "sparse": "inconclusive"}


def datapath(node: str, t: float) -> str:
    if node == "node-a" or (node == "node-c" and t <= SWITCH):
        return "kube-proxy"
    return "ebpf"


def _traffic(ns: str, svc: str, dp: str, seed: int) -> ServiceSli:
    if svc == "sparse":
        return sli(lognormal(seed, 2), flows=4)
    scale = {"cart": 2.0, "checkout": 0.6}.get(svc, 1.0) if dp == "ebpf" else 1.0
    cart_ebpf = svc == "cart" and dp == "ebpf"
    drops = {"SERVICE_BACKEND_NOT_FOUND": 6, "POLICY_DENIED": 1} if cart_ebpf else {
        "POLICY_DENIED": 1}
    return sli(lognormal(seed, 300, scale=scale), refused=6 if cart_ebpf else 1,
               flows=1200, drops=drops)


def history(traffic: Callable[[str, str, str, int], ServiceSli] | None = None,
            services: tuple[tuple[str, str], ...] = SERVICES,
            ) -> Iterator[tuple[float, dict[str, SliSnapshot]]]:
    """``(time, {node: cumulative snapshot})`` at every scrape, oldest first; ``traffic``
    (namespace, service, datapath, seed) is what each scrape adds (default: this fleet's)."""
    traffic = traffic or _traffic
    empty = sli()
    totals = {node: {SliKey(ns, svc, dp): empty for ns, svc in services
                     for dp in ("kube-proxy", "ebpf")} for node in NODES}
    for step in range(STEPS + 1):
        t = T0 + step * STEP
        for n, node in enumerate(NODES):
            if step == 0:
                continue
            dp = datapath(node, t)
            for s, (ns, svc) in enumerate(services):
                key = SliKey(ns, svc, dp)
                seed = 1000 * step + 10 * n + s
                totals[node][key] = plus(totals[node][key], traffic(ns, svc, dp, seed))
        yield t, {node: snap(t, dict(totals[node])) for node in NODES}


def merged(snapshots: Mapping[str, SliSnapshot]) -> SliSnapshot:
    """One snapshot holding every exporter's counts summed per service and datapath."""
    total: dict[tuple[str, str, str], ServiceSli] = {}
    for one in snapshots.values():
        for key, value in one.services.items():
            total[key] = plus(total[key], value) if key in total else value
    t = next(iter(snapshots.values())).time
    return snap(t, {k: v for k, v in total.items() if sum(v.attempts.values()) or v.flows})


def baseline() -> Baseline:
    """A frozen kube-proxy baseline for every service but the sparse one."""
    services = {}
    for i, (ns, svc) in enumerate(SERVICES[:3]):
        counts = lognormal(90 + i, 6000)
        services[(ns, svc)] = Cohort(counts, sum(counts) + 20, sum(counts), 24_000, 20, 0)
    return Baseline(T0 - 60.0, T0 - 3600.0, T0 - 60.0, BOUNDS, services)


# --- OpenMetrics --------------------------------------------------------------------------


def openmetrics(recorded: list[tuple[float, dict[str, SliSnapshot]]]) -> str:
    """Every exporter's SLI series and ``kpr_hubble_up`` at every scrape time."""
    families: dict[str, tuple[str, list[str]]] = {
        "kpr_service_connect_duration_seconds": ("histogram", []),
        "kpr_service_connect_attempts": ("counter", []),
        "kpr_service_flows": ("counter", []),
        "kpr_service_drops": ("counter", []),
        "kpr_hubble_up": ("gauge", []),
    }
    series: dict[str, dict[str, list[str]]] = {name: {} for name in families}
    for t, snapshots in recorded:
        for node, one in snapshots.items():
            for key, value in one.services.items():
                for family, name, labels, number in _samples(key, value):
                    series[family].setdefault(name + _labels(node, labels), []).append(
                        f"{_num(number)} {t:.0f}")
            series["kpr_hubble_up"].setdefault("kpr_hubble_up" + _labels(node, {}), []).append(
                f"1 {t:.0f}")
    out: list[str] = []
    for family, (kind, _) in families.items():
        out.append(f"# TYPE {family} {kind}")
        for name, points in series[family].items():
            out.extend(f"{name} {point}" for point in points)
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _samples(key: SliKey, value: ServiceSli) -> Iterator[tuple[str, str, dict, float]]:
    base = {"namespace": key.namespace, "service": key.service, "datapath": key.datapath}
    hist = "kpr_service_connect_duration_seconds"
    running = 0
    for le, n in zip((*BOUNDS, math.inf), value.connect_counts):
        running += n
        yield hist, hist + "_bucket", {**base, "le": "+Inf" if le == math.inf else repr(le)}, running
    yield hist, hist + "_count", base, running
    yield hist, hist + "_sum", base, running * 0.0005
    for result in ("established", "refused", "timeout"):
        yield ("kpr_service_connect_attempts", "kpr_service_connect_attempts_total",
               {**base, "result": result}, value.attempts.get(result, 0))
    yield "kpr_service_flows", "kpr_service_flows_total", {**base, "verdict": "FORWARDED"}, value.flows
    for reason in ("SERVICE_BACKEND_NOT_FOUND", "POLICY_DENIED"):
        yield ("kpr_service_drops", "kpr_service_drops_total", {**base, "reason": reason},
               value.drops.get(reason, 0))


def _labels(node: str, labels: Mapping[str, str]) -> str:
    merged_labels = {**labels, "job": JOB, "instance": f"{node}:9977"}
    return "{" + ",".join(f'{k}="{v}"' for k, v in merged_labels.items()) + "}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
