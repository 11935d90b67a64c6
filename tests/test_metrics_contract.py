"""``docs/metrics.md`` is the one metric contract: the code exports exactly what it lists.

Every producer is built in-process with small, realistic inputs (no server, no stream):
the SLI pipeline fed the reference example flows and rendered by its fast renderer, the
Hubble reader's self-metrics, the agent collector over one scraped node, the datapath
tracker, the backend map, the webhook receiver and rollback runner, the judge's and the
baseline's collectors. Their exposition is parsed and compared with the document's tables.

Matrix:

* every exported ``kpr_*`` family has a row, and every row is exported;
* ``exporter.metrics_contract`` declares every row and nothing else, with the same type and
  label names; its label tuples are the exposition's order and its buckets the document's;
* type and label names of each row match the exposition;
* enumerated label values the code defines (outcomes, results, phases, sources, kinds,
  tables, handlers, states, SLIs, quantiles ...) are each written in the metric's row or
  in a ``- `label`:`` line of its section;
* every ``kpr_*`` literal in a module that imports prometheus_client is a family built
  here, so a new producer cannot escape the comparison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import buildinfo, model
from exporter import metrics_contract as contract
from exporter.baseline.collector import BaselineCollector
from exporter.baseline.model import QUANTILES
from exporter.datapath import decide
from exporter.datapath.tracker import DatapathTracker
from exporter.sources.settings import HubbleSettings
from exporter.judge import verdict as jv
from exporter.judge.collector import VerdictCollector
from exporter.judge.settings import JudgeSettings
from exporter.judge_prom.source import ERROR_KINDS as JUDGE_SOURCE_ERRORS
from exporter.judge_prom.source import PrometheusEvidence
from exporter.kube.owners_feed import UNKNOWN as OWNER_UNKNOWN
from exporter.kube.owners_feed import OwnerCollector
from exporter.migrate.gates.base import RESULTS as GATE_RESULTS
from exporter.migrate.metrics import MigrationMetrics
from exporter.migrate.model import KNOWN_GATES, STEP_GATES, GateOutcome, MigrationStatus
from exporter.migrate.model import STEPS as MIGRATION_STEPS
from exporter.ownership import OWNERS, detect_owner
from exporter.rollback.guard import FIELD_MANAGER as BY_FIELD_MANAGER
from exporter.rollback.guard import HELM_RELEASE as BY_HELM_RELEASE
from exporter.rollback.guard import Observed, RollbackRecord, assess
from exporter.rollback.guard_feed import UndoGuard
from exporter.kube.backends import BackendMap
from exporter.rollback import roles as rollback_api
from exporter.rollback.roles import TrackerView
from exporter.rollback.settings import RollbackSettings
from exporter.sli import Pipeline, SliSettings, StaticDatapathResolver
from exporter.sli.context import EVICTIONS, TABLES
from exporter.sli.pipeline import ATTRIBUTION
from exporter.sli.registry import HANDLERS
from exporter.sli.tcp import RESULTS as CONNECT_RESULTS
from exporter.sources.agents import ERROR_KINDS, AgentCollector, AgentSnapshot, AgentState
from exporter.sources.histogram_text import Histogram
from exporter.sources.hubble import HubbleReader
from exporter.verify import results as probe
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.sources.kube_proxy_collector import SOURCES as DATAPATH_SOURCES
from exporter.sources.kube_proxy_collector import ServiceDatapathCollector
from exporter.sources.kube_proxy_text import KubeProxySnapshot
from exporter.sources.probes import ProbeCollector, parse_probe_metrics
from exporter.webhook.receiver import OUTCOMES
from exporter.webhook.service import build_rollback_service
from exporter.webhook.settings import WebhookSettings
from tests.sli.flowjson import load_examples

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "metrics.md"
NOW = 1_764_000_000.0
#: Flow-derived rows list only their extra labels; these come first.
SLI_CONTEXT = ("namespace", "service", "datapath")


@dataclass(frozen=True)
class Family:
    type: str
    labels: frozenset[str]
    samples: int


# --- what the code exports ------------------------------------------------------------

def _pipeline_text() -> str:
    nodes = {"node-a": model.KUBE_PROXY, "node-b": model.EBPF}
    pipeline = Pipeline(SliSettings(), CollectorRegistry(), datapaths=StaticDatapathResolver(nodes),
                        clock=lambda: NOW)
    for flow in load_examples().values():
        pipeline.process(flow)
    pipeline.handle(model.LostEvents("node-a", 3, 7))
    return pipeline.render().decode()  # what /metrics serves for the SLI engine


def _registry_text() -> str:
    registry = CollectorRegistry()
    buildinfo.register(registry, environ={})
    HubbleReader(HubbleSettings(), registry=registry, clock=lambda: NOW)

    clock = [NOW - 60]
    tracker = DatapathTracker(clock=lambda: clock[0])
    tracker.observe_agent_gauge("worker-1", 0.0)
    tracker.observe_agent_gauge("worker-2", 0.0)
    clock[0] = NOW
    tracker.observe_agent_gauge("worker-1", 1.0)  # switches: phase canary, a switch time
    tracker.set_kube_proxy_nodes({"worker-1", "worker-2"})  # kube-proxy left on an eBPF node
    registry.register(tracker)

    snapshot = AgentSnapshot(drops={("Service backend not found", "EGRESS"): 47.0},
                             forwards={"INGRESS": 1509.0}, kpr_enabled=1.0,
                             hubble_lost={"perf_event_ring_buffer": 3.0})
    states = {"worker-1": AgentState("worker-1", "http://127.0.0.1:9962/metrics", True, 0.012,
                                     NOW, NOW, snapshot)}
    registry.register(AgentCollector(source=SimpleNamespace(states=lambda: states),
                                     resolver=tracker))
    _service_datapath(registry, tracker)
    registry.register(BackendMap(max_entries=16))

    build_rollback_service(web.Application(), webhook=WebhookSettings(),
                           rollback=RollbackSettings(), view=TrackerView(tracker), kube=None,
                           registry=registry, clock=lambda: NOW)

    verdicts = [SimpleNamespace(namespace="shop", service="cart", sli=jv.CONNECT_DURATION,
                                comparison=jv.CANARY_VS_CONTROL, value=0.0, effect_size=-0.28)]
    registry.register(VerdictCollector(SimpleNamespace(verdicts=verdicts, evaluated_at=NOW)))
    PrometheusEvidence(JudgeSettings(), registry=registry)  # judge.source: prometheus
    _probe_results(registry)
    guard = UndoGuard(None, RollbackSettings(), store=None, tracker=None,  # type: ignore[arg-type]
                      clock=lambda: NOW)
    guard.last = assess(RollbackRecord(NOW - 600, ("worker-1",), "p1"), Observed(
        detect_owner({"metadata": {"annotations": {"meta.helm.sh/release-name": "cilium"}}}),
        our_fields=True, ebpf_since={"worker-1": NOW - 60}))
    registry.register(guard)
    helm_cm = {"metadata": {"name": "cilium-config", "namespace": "kube-system", "annotations": {
        "meta.helm.sh/release-name": "cilium", "meta.helm.sh/release-namespace": "kube-system"}}}
    registry.register(OwnerCollector([lambda: [
        ("ConfigMap kube-system/cilium-config", helm_cm, True),
        ("DaemonSet kube-system/kube-proxy", None, False)]]))
    bounds = (0.0005, 0.001, 0.0025)
    cohort = SimpleNamespace(connect_counts=(4, 10, 5, 1), flow_exposure=1000, drops=2)
    baseline = SimpleNamespace(captured_at=NOW - 86400, connect_bounds=bounds,
                               services={("shop", "cart"): cohort})
    registry.register(BaselineCollector(lambda: baseline))
    MigrationMetrics(registry).observe(MigrationStatus(
        step=STEP_GATES, batch=1, batches=(("worker-1",), ("worker-2",)),
        migrated=("worker-1", "worker-2"),
        gate_results=(GateOutcome("judge", "inconclusive", "too little evidence", 1, NOW),)))
    return generate_latest(registry).decode()


def _probe_results(registry: CollectorRegistry) -> None:
    """One probe's own exposition, scraped and served again by the exporter (which adds the
    ``probe`` label and its scrape health)."""
    own = CollectorRegistry()
    ProbeMetrics(own).observe([probe.CheckResult(
        probe.NODEPORT_REMOTE, "worker-2", model.KUBE_PROXY, "worker-1", "10.0.0.1:30080",
        probe.PASS, "an answer", "an answer", 0.0004, model.EBPF)])
    ProbeStatus("worker-2", own).round_done(
        NOW, 2, {(probe.HOSTPORT, "worker-1"): "no hostPort pod"}, {"worker-1": model.EBPF})
    measures = MeasureMetrics(own)  # the load option and the programming chase
    measures.connection("worker-2", model.KUBE_PROXY, probe.PASS, 0.0004)
    measures.stream("worker-2", model.KUBE_PROXY, probe.PASS, 1_310_720, 5.0)
    measures.programmed("worker-2", model.KUBE_PROXY, 1.3)
    measures.missed("worker-2", model.KUBE_PROXY)
    scraped = parse_probe_metrics(generate_latest(own).decode())
    states = {"kpr-probe-x7k2p": AgentState("kpr-probe-x7k2p", "http://127.0.0.1:9978/metrics",
                                            True, 0.01, NOW, NOW, scraped)}
    registry.register(ProbeCollector(SimpleNamespace(states=lambda: states)))


def _service_datapath(registry: CollectorRegistry, tracker: DatapathTracker) -> None:
    """kube-proxy on worker-2 (kube-proxy) and the agent on worker-1 (eBPF), one scrape each."""
    delay = Histogram((("action", "update"),), (("0.005", 60.0), ("+Inf", 91.0)), 0.38)
    agent = AgentSnapshot(drops={}, forwards={}, kpr_enabled=1.0, cpu_seconds=3512.0,
                          programming=(delay,))
    family = (("ip_family", "IPv4"),)
    proxy = KubeProxySnapshot(
        cpu_seconds=1874.0, last_sync={"IPv4": NOW - 5},
        sync_duration=(Histogram(family, (("0.001", 2.0), ("+Inf", 9.0)), 0.4),),
        programming=(Histogram(family, (("1", 5.0), ("+Inf", 8.0)), 7.5),))
    url = "http://127.0.0.1:10249/metrics"
    proxies = {"worker-2": AgentState("worker-2", url, True, 0.01, NOW, NOW, proxy)}
    agents = {"worker-1": AgentState("worker-1", url, True, 0.01, NOW, NOW, agent)}
    registry.register(ServiceDatapathCollector(
        kube_proxy=SimpleNamespace(states=lambda: proxies),
        agents=SimpleNamespace(states=lambda: agents), resolver=tracker))


def _families(text: str) -> dict[str, Family]:
    out: dict[str, Family] = {}
    for fam in text_string_to_metric_families(text):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        labels = frozenset(k for s in fam.samples for k in s.labels) - {"le"}
        out[name] = Family(fam.type, labels, len(fam.samples))
    # prometheus_client adds a ``<counter>_created`` gauge family unless created metrics
    # are disabled, as the exporter does; it is not part of the contract.
    return {name: fam for name, fam in out.items()
            if not (name.endswith("_created") and name.removesuffix("_created") + "_total" in out)}


@pytest.fixture(scope="module")
def exported() -> dict[str, Family]:
    families = _families(_pipeline_text())
    families.update(_families(_registry_text()))
    return {name: fam for name, fam in families.items() if name.startswith("kpr_")}


# --- what the document says -------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    type: str
    labels: frozenset[str]
    text: str  # the row itself
    section: str  # the whole section (## ...) the row is in


def documented() -> dict[str, Row]:
    rows: dict[str, Row] = {}
    text = CONTRACT.read_text(encoding="utf-8")
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        header: list[str] = []
        for line in section.splitlines():
            if not line.startswith("|"):
                header = [] if not line.strip() else header
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == "metric":
                header = cells
                continue
            name = re.fullmatch(r"`(kpr_[a-z0-9_]+)`", cells[0])
            if not name or not header:
                continue
            column = "extra labels" if "extra labels" in header else "labels"
            labels = set(re.findall(r"`([a-z_]+)`", cells[header.index(column)]))
            if column == "extra labels":
                labels.update(SLI_CONTEXT)
            kind = cells[header.index("type")].split()[0]
            assert name.group(1) not in rows, f"{name.group(1)} has two rows"
            rows[name.group(1)] = Row(kind, frozenset(labels), line, section)
    return rows


def test_the_contract_has_rows() -> None:
    rows = documented()
    assert len(rows) >= 30 and "kpr_service_connect_duration_seconds" in rows


def test_every_exported_family_is_documented(exported: Mapping[str, Family]) -> None:
    missing = sorted(set(exported) - set(documented()))
    assert not missing, f"exported but not in docs/metrics.md: {missing}"


def test_every_documented_family_is_exported(exported: Mapping[str, Family]) -> None:
    ghosts = sorted(set(documented()) - set(exported))
    assert not ghosts, f"in docs/metrics.md but exported by no code: {ghosts}"


# --- the contract as code (exporter.metrics_contract) against the document --------------

def test_every_documented_metric_is_declared_in_the_module() -> None:
    undeclared = sorted(set(documented()) - set(contract.METRICS))
    assert not undeclared, f"in docs/metrics.md but not in exporter.metrics_contract: {undeclared}"


def test_every_declared_metric_is_documented() -> None:
    undocumented = sorted(set(contract.METRICS) - set(documented()))
    assert not undocumented, f"in exporter.metrics_contract but not in docs/metrics.md: {undocumented}"


def test_the_module_and_the_document_agree_on_types_and_labels() -> None:
    rows = documented()
    wrong = [f"{name}: documented {rows[name].type} {sorted(rows[name].labels)}, declared "
             f"{metric.type} {sorted(metric.labels)}"
             for name, metric in sorted(contract.METRICS.items()) if name in rows
             and (rows[name].type != metric.type or rows[name].labels != set(metric.labels))]
    assert not wrong, "\n".join(wrong)


def test_declared_label_order_is_the_sli_exposition_order() -> None:
    """The SLI engine's renderer writes labels in the declared order (flow-derived SLIs start
    with the context); prometheus_client sorts the others' labels, so only names count there."""
    order = _label_order(_pipeline_text())
    checked = [name for name in contract.METRICS if order.get(name)]
    assert contract.SERVICE_CONNECT_DURATION.name in checked and len(checked) >= 8
    wrong = [f"{name}: declared {contract.METRICS[name].labels}, exported {order[name]}"
             for name in checked if contract.METRICS[name].labels != order[name]]
    assert not wrong, "\n".join(wrong)
    flow_derived = [m for m in contract.METRICS.values() if m.name.startswith("kpr_service_")]
    assert flow_derived and all(m.labels[:3] == contract.SLI_CONTEXT for m in flow_derived)


def test_histograms_declare_the_documented_buckets() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text[text.index("## 5. Histogram buckets"):]
    for metric in (contract.SERVICE_CONNECT_DURATION, contract.SERVICE_REQUEST_DURATION):
        listed = re.search(rf"`{metric.name}`:\n`([^`]+)`", section)
        assert listed, f"no bucket list for {metric.name} in docs/metrics.md §5"
        assert tuple(float(b) for b in listed.group(1).split(",")) == metric.buckets
    assert contract.PROBE_DURATION.buckets == contract.SERVICE_CONNECT_DURATION.buckets


_SAMPLE = re.compile(r"^([a-z_:][a-z0-9_:]*)\{(.*)\} ")
_LABEL = re.compile(r'([a-z_][a-z0-9_]*)="(?:[^"\\]|\\.)*"')


def _label_order(text: str) -> dict[str, tuple[str, ...]]:
    """Each family's label names in the order its first sample line spells them (``le``
    aside), from the text itself: the parser hands labels back sorted."""
    families = {}
    for metric in contract.METRICS.values():
        suffixes = ("_bucket", "_sum", "_count") if metric.type == contract.HISTOGRAM else ("",)
        families.update({metric.name + suffix: metric.name for suffix in suffixes})
    order: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        name = families.get(match.group(1)) if match else None
        if match and name and name not in order:
            order[name] = tuple(k for k in _LABEL.findall(match.group(2)) if k != "le")
    return order


#: Families with no sample in the in-process build, and why; their label names are checked
#: by their producer's own tests.
NO_SAMPLE_HERE = {
    "kpr_hubble_nodes": "relay peers are exported only while a GetFlows stream is up",
}


def test_types_and_label_names_match(exported: Mapping[str, Family]) -> None:
    rows = documented()
    wrong = []
    for name, fam in sorted(exported.items()):
        row = rows.get(name)
        if row is None:
            continue
        if name in NO_SAMPLE_HERE:
            assert not fam.samples, f"{name} has samples now: remove it from NO_SAMPLE_HERE"
            if row.type != fam.type:
                wrong.append(f"{name}: documented {row.type}, exported {fam.type}")
            continue
        assert fam.samples, f"{name}: the in-process build produced no sample; feed it one"
        if row.type != fam.type or row.labels != fam.labels:
            wrong.append(f"{name}: documented {row.type} {sorted(row.labels)}, "
                         f"exported {fam.type} {sorted(fam.labels)}")
    assert not wrong, "\n".join(wrong)


#: (metric, label, values the code defines). Values must appear, in backticks, in the
#: metric's row or in a "- `label`: ..." line of its section.
LABEL_VALUES = [
    ("kpr_service_connect_attempts_total", "result", CONNECT_RESULTS),
    ("kpr_service_flows_total", "verdict", tuple(model.VERDICT_NAMES.values())),
    ("kpr_service_drops_total", "reason", tuple(sorted(model.KPR_SENSITIVE_DROP_REASONS))),
    ("kpr_agent_scrape_errors_total", "kind", (*ERROR_KINDS, "internal")),
    ("kpr_kube_proxy_scrape_errors_total", "kind", (*ERROR_KINDS, "internal")),
    ("kpr_probes_scrape_errors_total", "kind", (*ERROR_KINDS, "internal")),
    ("kpr_node_service_datapath_cpu_seconds_total", "source", DATAPATH_SOURCES),
    ("kpr_node_process_cpu_seconds_total", "process", DATAPATH_SOURCES),
    ("kpr_node_datapath_info", "source", decide.SOURCES),
    ("kpr_node_datapath_disagreement", "kind", decide.PROBLEM_KINDS),
    ("kpr_migration_phase", "phase", decide.PHASES),
    ("kpr_migration_step", "step", MIGRATION_STEPS),
    ("kpr_migration_nodes", "datapath", (model.EBPF, model.KUBE_PROXY)),
    ("kpr_migration_gate", "gate", KNOWN_GATES),
    ("kpr_migration_gate", "result", GATE_RESULTS),
    ("kpr_baseline_connect_duration_seconds", "q", tuple(str(q) for q in QUANTILES)),
    ("kpr_verdict", "sli", jv.SLIS),
    ("kpr_verdict", "comparison", jv.COMPARISONS),
    ("kpr_judge_source_errors_total", "kind", JUDGE_SOURCE_ERRORS),
    ("kpr_config_owner_info", "owner", (*OWNERS, OWNER_UNKNOWN)),
    ("kpr_rollback_persisted", "evidence", (BY_HELM_RELEASE, BY_FIELD_MANAGER)),
    ("kpr_hubble_lost_events_total", "source", tuple(model.LOST_SOURCE_NAMES.values())),
    ("kpr_hubble_nodes", "state", tuple(model.NODE_STATE_NAMES.values())),
    ("kpr_connection_table_entries", "table", TABLES),
    ("kpr_connection_table_evictions_total", "reason", tuple({r for _, r in EVICTIONS})),
    ("kpr_handler_errors_total", "handler", (*HANDLERS, ATTRIBUTION)),
    ("kpr_backend_map_entries", "map", ("backend", "frontend")),
    ("kpr_webhook_requests_total", "outcome", OUTCOMES),
    ("kpr_rollbacks_total", "result", rollback_api.RESULTS),
    ("kpr_rollbacks_total", "mode", rollback_api.MODES),
    ("kpr_probe_checks_total", "check", probe.CHECKS),
    ("kpr_probe_checks_total", "result", probe.RESULTS),
    ("kpr_probe_load_connections_total", "result", probe.RESULTS),
    ("kpr_probe_load_streams_total", "result", probe.RESULTS),
]


@pytest.mark.parametrize(("metric", "label", "values"), LABEL_VALUES,
                         ids=[f"{m}-{lbl}" for m, lbl, _ in LABEL_VALUES])
def test_label_values_are_documented(metric: str, label: str, values: tuple[str, ...]) -> None:
    row = documented()[metric]
    assert label in row.labels
    bullets = re.findall(rf"^- `{label}`:.*(?:\n  .*)*", row.section, re.MULTILINE)
    where = row.text + "\n".join(bullets)
    missing = [v for v in values if f"`{v}`" not in where]
    assert not missing, f"{metric}{{{label}}}: values {missing} are not in docs/metrics.md"


def test_label_values_seen_in_the_exposition_are_known() -> None:
    """The pre-initialised children match the code's value lists (so the table above is fed
    by the same values the exporter shows before any event)."""
    seen: dict[tuple[str, str], set[str]] = {}
    for text in (_pipeline_text(), _registry_text()):
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                for label, value in s.labels.items():
                    seen.setdefault((s.name, label), set()).add(value)
    assert seen[("kpr_webhook_requests_total", "outcome")] == set(OUTCOMES)
    assert seen[("kpr_rollbacks_total", "result")] == set(rollback_api.RESULTS)
    assert seen[("kpr_migration_phase", "phase")] == set(decide.PHASES)
    assert seen[("kpr_hubble_lost_events_total", "source")] == set(model.LOST_SOURCE_NAMES.values())
    assert seen[("kpr_handler_errors_total", "handler")] == {*HANDLERS, ATTRIBUTION}
    assert seen[("kpr_backend_map_entries", "map")] == {"backend", "frontend"}
    assert seen[("kpr_node_datapath_disagreement", "kind")] == set(decide.PROBLEM_KINDS)


_METRIC_LITERAL = re.compile(r"""["'](kpr_[a-z0-9_]+)["']""")


def test_every_metric_name_in_producer_code_is_built_here(exported: Mapping[str, Family]) -> None:
    """A module that imports prometheus_client and names a ``kpr_*`` family must be one of
    the producers above; otherwise its family would escape the contract check."""
    known = set(exported) | {n.removesuffix("_total") for n in exported}
    strays = []
    for path in sorted((ROOT / "exporter").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if not re.search(r"^\s*(from|import) prometheus_client", source, re.MULTILINE):
            continue
        for name in _METRIC_LITERAL.findall(source):
            if name not in known:
                strays.append(f"{path.relative_to(ROOT)}: {name}")
    assert not strays, f"metric names not exported by the producers this test builds: {strays}"
