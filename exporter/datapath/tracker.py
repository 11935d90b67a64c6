"""Per-node datapath state: fed by the agent scraper and the Kubernetes watchers, read
by the SLI handlers (``datapath(node)`` on the hot path) and exported as metrics.

Example output::

    kpr_node_datapath_info{node="worker-1",datapath="ebpf",source="feature-gauge"} 1
    kpr_node_datapath_switch_timestamp_seconds{node="worker-1"} 1.7640e+09
    kpr_migration_phase{phase="canary"} 1
    kpr_node_datapath_disagreement{node="worker-2",kind="restart-pending"} 1
    kpr_node_config_invalid_selectors 0

Inputs may arrive from any subset of signals: with only the agents' feature gauges (the
demo, or no Kubernetes access) the tracker still decides. ``None`` inputs mean "not
known" and never count as "off". Decisions are recomputed on every input change; the
``datapath`` lookup is a plain dict read of a mapping replaced wholesale on change.
Switch times come from the injected clock; disagreements are logged once when they
appear and once when they clear. Pure module: no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.cilium import KPR_KEY, PHASES, NodeConfig, invalid_node_configs, node_config_for
from exporter.datapath.decide import (
    PROBLEM_KINDS,
    Decision,
    NodeSignals,
    decide,
    migration_phase,
    parse_version,
)
from exporter.model import EBPF, KUBE_PROXY, UNKNOWN
from exporter.roles import Clock, system_clock

log = logging.getLogger(__name__)

Listener = Callable[[], None]


class DatapathTracker:
    """Implements ``exporter.roles.DatapathResolver`` and is a Prometheus collector."""

    def __init__(self, *, clock: Clock = system_clock) -> None:
        self._clock = clock
        # inputs
        self._gauges: dict[str, float | None] = {}
        self._versions: dict[str, tuple[int, int] | None] = {}
        self._node_labels: dict[str, Mapping[str, str]] | None = None
        self._cilium_config: Mapping[str, str] | None = None
        self._node_configs: tuple[NodeConfig, ...] | None = None
        self._invalid_configs: dict[str, str] = {}
        self._kube_proxy_nodes: frozenset[str] | None = None
        # outputs
        self._decisions: dict[str, Decision] = {}
        self._datapaths: dict[str, str] = {}
        self._last_known: dict[str, str] = {}
        self._switched_at: dict[str, float] = {}
        self._last_switch_to: str | None = None
        self._phase = migration_phase((), None)
        self._listeners: list[Listener] = []

    # --- inputs ----------------------------------------------------------------------

    def observe_agent_gauge(self, node: str, value: float | None) -> None:
        """The agent's KPR feature gauge after a scrape; None: scrape failed or the agent
        has no such gauge (Cilium < 1.17)."""
        if node in self._gauges and self._gauges[node] == value:
            return
        self._gauges[node] = value
        self._recompute((node,))

    def observe_agent_version(self, node: str, version: str | None) -> None:
        """The Cilium version on a node (``1.16.3``, or an agent image reference)."""
        parsed = parse_version(version)
        if self._versions.get(node, ...) == parsed:
            return
        self._versions[node] = parsed
        self._recompute((node,))

    def set_nodes(self, labels: Mapping[str, Mapping[str, str]] | None) -> None:
        """Every Node's labels (None: not known, e.g. no Kubernetes access)."""
        self._node_labels = None if labels is None else {n: dict(v) for n, v in labels.items()}
        self._recompute()

    def set_cilium_config(self, data: Mapping[str, str] | None) -> None:
        """The data of ConfigMap cilium-config (None: not known)."""
        self._cilium_config = None if data is None else dict(data)
        self._recompute()

    def set_node_configs(self, configs: Iterable[NodeConfig] | None) -> None:
        """The CiliumNodeConfigs of the Cilium namespace (None: not known). A config whose
        selector the API server would reject selects no node and is logged once."""
        self._node_configs = None if configs is None else tuple(configs)
        invalid = invalid_node_configs(self._node_configs or ())
        for ref in sorted(invalid.keys() - self._invalid_configs.keys()):
            log.warning("invalid CiliumNodeConfig selector: it selects no node",
                        extra={"kv": {"config": ref, "detail": invalid[ref]}})
        for ref in sorted(self._invalid_configs.keys() - invalid.keys()):
            log.info("CiliumNodeConfig selector valid again or gone",
                     extra={"kv": {"config": ref}})
        self._invalid_configs = invalid
        self._recompute()

    def set_kube_proxy_nodes(self, nodes: Iterable[str] | None) -> None:
        """The nodes with a running kube-proxy pod (None: not known)."""
        self._kube_proxy_nodes = None if nodes is None else frozenset(nodes)
        self._recompute()

    def forget_node(self, node: str) -> None:
        """Drop everything about a node that left the cluster."""
        self._gauges.pop(node, None)
        self._versions.pop(node, None)
        if self._node_labels is not None:
            self._node_labels.pop(node, None)
        self._recompute()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` after every change of a decision or of the phase."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # --- outputs ---------------------------------------------------------------------

    def datapath(self, node: str) -> str:
        return self._datapaths.get(node, UNKNOWN)

    def decision(self, node: str) -> Decision | None:
        return self._decisions.get(node)

    def decisions(self) -> dict[str, Decision]:
        return dict(self._decisions)

    @property
    def phase(self) -> str:
        return self._phase

    def invalid_node_configs(self) -> dict[str, str]:
        """CiliumNodeConfig (namespace/name) -> why its selector is invalid (selects nothing)."""
        return dict(self._invalid_configs)

    def switch_times(self) -> dict[str, float]:
        """Node -> when its datapath last changed between kube-proxy and eBPF."""
        return dict(self._switched_at)

    def state(self) -> dict[str, Any]:
        """What must survive a restart (switch history), as plain JSON data."""
        return {"last_known": dict(self._last_known), "switched_at": dict(self._switched_at),
                "last_switch_to": self._last_switch_to}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load ``state()`` saved by an earlier run (before any input arrives)."""
        self._last_known = {str(k): str(v) for k, v in (state.get("last_known") or {}).items()
                            if v in (KUBE_PROXY, EBPF)}
        self._switched_at = {str(k): float(v)
                             for k, v in (state.get("switched_at") or {}).items()}
        last = state.get("last_switch_to")
        self._last_switch_to = last if last in (KUBE_PROXY, EBPF) else None
        self._recompute()

    # --- collector ---------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        decisions = self._decisions  # replaced wholesale on change: a consistent view
        switched = self._switched_at
        phase = self._phase
        info, switch, phases, disagreement, invalid = self._families()
        for node, decision in sorted(decisions.items()):
            info.add_metric([node, decision.datapath, decision.source], 1)
            for kind in PROBLEM_KINDS:  # every kind pre-initialised: 0 is "agrees"
                disagreement.add_metric([node, kind], 1 if kind in decision.problem_kinds else 0)
        for node, when in sorted(switched.items()):
            switch.add_metric([node], when)
        for name in PHASES:
            phases.add_metric([name], 1 if name == phase else 0)
        invalid.add_metric([], len(self._invalid_configs))
        yield from (info, switch, phases, disagreement, invalid)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("kpr_node_datapath_info",
                              "Datapath translating Services on the node, and the signal "
                              "that decided it.", labels=["node", "datapath", "source"]),
            GaugeMetricFamily("kpr_node_datapath_switch_timestamp_seconds",
                              "When the node last switched between kube-proxy and eBPF.",
                              labels=["node"]),
            GaugeMetricFamily("kpr_migration_phase",
                              "The cluster's migration phase (1 for the current one).",
                              labels=["phase"]),
            GaugeMetricFamily("kpr_node_datapath_disagreement",
                              "Signals about the node's datapath disagree, or a value is "
                              "not honoured as meant (1 while it lasts).",
                              labels=["node", "kind"]),
            GaugeMetricFamily("kpr_node_config_invalid_selectors",
                              "CiliumNodeConfigs whose nodeSelector the API server would "
                              "reject: they select no node."),
        )

    # --- internals ---------------------------------------------------------------------

    def _signals(self, node: str) -> NodeSignals:
        version = self._versions.get(node)
        node_config = conflicts = None
        config_value: str | None = None
        ref = ""
        labels = self._node_labels.get(node) if self._node_labels is not None else None
        if self._node_configs is not None and labels is not None:
            node_config, conflicts = node_config_for(self._node_configs, labels)
            if node_config is not None:
                config_value = node_config.defaults[KPR_KEY]
                ref = node_config.namespaced_name
        cilium_config = None
        if self._cilium_config is not None:
            cilium_config = self._cilium_config.get(KPR_KEY, "false")
        kube_proxy = None
        if self._kube_proxy_nodes is not None:
            kube_proxy = node in self._kube_proxy_nodes
        return NodeSignals(
            feature_gauge=self._gauges.get(node),
            node_config=config_value,
            node_config_ref=ref,
            node_config_conflicts=conflicts or (),
            cilium_config=cilium_config,
            kube_proxy_running=kube_proxy,
            cilium_version=version,
        )

    def _nodes(self) -> set[str]:
        nodes = set(self._gauges)
        if self._node_labels is not None:
            nodes.update(self._node_labels)
        if self._kube_proxy_nodes is not None:
            nodes.update(self._kube_proxy_nodes)
        return nodes

    def _recompute(self, only: Iterable[str] | None = None) -> None:
        nodes = self._nodes()
        targets = nodes if only is None else nodes.intersection(only)
        decisions = dict(self._decisions)
        for gone in set(decisions) - nodes:
            del decisions[gone]
        for node in targets:
            decisions[node] = decide(self._signals(node))
        if decisions == self._decisions and only is not None:
            return
        now = self._clock()
        for node in sorted(targets):
            self._note_switch(node, decisions[node].datapath, now)
        self._log_problems(self._decisions, decisions)
        self._log_datapaths(self._decisions, decisions)
        changed = decisions != self._decisions
        self._decisions = decisions
        self._datapaths = {node: d.datapath for node, d in decisions.items()}
        phase = migration_phase(self._datapaths.values(), self._last_switch_to)
        if phase != self._phase:
            log.info("migration phase changed",
                     extra={"kv": {"from": self._phase, "to": phase}})
            self._phase = phase
            changed = True
        if changed:
            for listener in list(self._listeners):
                listener()

    def _note_switch(self, node: str, datapath: str, now: float) -> None:
        if datapath not in (KUBE_PROXY, EBPF):
            return
        previous = self._last_known.get(node)
        self._last_known[node] = datapath
        if previous is not None and previous != datapath:
            self._switched_at[node] = now
            self._last_switch_to = datapath

    @staticmethod
    def _log_datapaths(old: Mapping[str, Decision], new: Mapping[str, Decision]) -> None:
        for node, decision in sorted(new.items()):
            before = old.get(node)
            if before is None or (before.datapath, before.source) != (
                decision.datapath, decision.source
            ):
                log.info("node datapath", extra={"kv": {
                    "node": node, "datapath": decision.datapath, "source": decision.source,
                    "previous": before.datapath if before else ""}})

    @staticmethod
    def _log_problems(old: Mapping[str, Decision], new: Mapping[str, Decision]) -> None:
        for node in sorted(set(old) | set(new)):
            before = {p.kind: p for p in old[node].problems} if node in old else {}
            after = {p.kind: p for p in new[node].problems} if node in new else {}
            for kind in sorted(after.keys() - before.keys()):
                log.warning("datapath disagreement", extra={"kv": {
                    "node": node, "kind": kind, "detail": after[kind].message}})
            for kind in sorted(before.keys() - after.keys()):
                log.info("datapath disagreement cleared",
                         extra={"kv": {"node": node, "kind": kind}})
