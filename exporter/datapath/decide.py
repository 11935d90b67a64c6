"""The rules that turn a node's signals into its datapath, its problems and the phase.

Signals, most authoritative first (brief §4):

1. the agent's feature gauge ``cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled``
   (what the running agent does; Cilium >= 1.17);
2. a ``CiliumNodeConfig`` in the Cilium namespace whose ``nodeSelector`` selects the node
   and whose ``defaults`` set ``kube-proxy-replacement`` (what the agent gets at its next
   start);
3. the ``kube-proxy-replacement`` key of ConfigMap ``cilium-config`` (absent: Cilium's
   default, ``false``);
4. whether a kube-proxy pod runs on the node.

Where signals disagree the most authoritative one wins and the disagreement becomes a
``Problem``; so do values Cilium does not honour (``strict`` on Cilium >= 1.14 leaves
the replacement off, #32711). What a value means, which CiliumNodeConfig selects a node
and the phase names come from ``exporter.cilium``, shared with the rollback planner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from exporter.cilium import (
    AFTER,
    BEFORE,
    CANARY,
    INVALID_VALUE,
    LEGACY_VALUE,
    PHASE_UNKNOWN,
    ROLLED_BACK,
    STRICT_NOT_HONOURED,
    Problem,
    read_kpr_value,
)
from exporter.cilium import PHASES as PHASES  # re-exported: the kpr_migration_phase values
from exporter.model import EBPF, KUBE_PROXY, UNKNOWN

# Which signal decided (the ``source`` label of kpr_node_datapath_info).
SOURCE_FEATURE_GAUGE: Final = "feature-gauge"
SOURCE_NODE_CONFIG: Final = "cilium-node-config"
SOURCE_CILIUM_CONFIG: Final = "cilium-config"
SOURCE_KUBE_PROXY_POD: Final = "kube-proxy-pod"
SOURCE_NONE: Final = "none"
SOURCES: Final = (SOURCE_FEATURE_GAUGE, SOURCE_NODE_CONFIG, SOURCE_CILIUM_CONFIG,
                  SOURCE_KUBE_PROXY_POD, SOURCE_NONE)

# Disagreements and misconfigurations (the ``kind`` label of kpr_node_datapath_disagreement).
RESTART_PENDING: Final = "restart-pending"
KUBE_PROXY_ON_EBPF_NODE: Final = "kube-proxy-on-ebpf-node"
KUBE_PROXY_MISSING: Final = "kube-proxy-missing"
CONFLICTING_NODE_CONFIGS: Final = "conflicting-node-configs"
PROBLEM_KINDS: Final = (RESTART_PENDING, KUBE_PROXY_ON_EBPF_NODE, KUBE_PROXY_MISSING,
                        STRICT_NOT_HONOURED, LEGACY_VALUE, INVALID_VALUE,
                        CONFLICTING_NODE_CONFIGS)


@dataclass(frozen=True, slots=True)
class NodeSignals:
    """Everything known about one node; ``None`` means "not known", never "off"."""

    feature_gauge: float | None = None
    node_config: str | None = None  # the value from the CiliumNodeConfig that applies
    node_config_ref: str = ""  # "kube-system/kpr-canary"
    node_config_conflicts: tuple[str, ...] = ()  # other selecting configs with other values
    cilium_config: str | None = None  # the cilium-config value (absent key: "false")
    kube_proxy_running: bool | None = None
    cilium_version: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A node's datapath, the signal that decided it, what configuration asks for and
    every problem found on the way."""

    datapath: str
    source: str
    configured: str = UNKNOWN
    problems: tuple[Problem, ...] = ()

    @property
    def problem_kinds(self) -> frozenset[str]:
        return frozenset(p.kind for p in self.problems)


def decide(signals: NodeSignals) -> Decision:
    """Apply the precedence rules to one node's signals."""
    problems: list[Problem] = []
    configured = UNKNOWN
    config_source = SOURCE_NONE
    config_where = ""
    if signals.node_config is not None:
        config_where = f"CiliumNodeConfig {signals.node_config_ref}"
        config_source = SOURCE_NODE_CONFIG
        reading = read_kpr_value(signals.node_config, signals.cilium_version, config_where)
    elif signals.cilium_config is not None:
        config_where = "ConfigMap cilium-config"
        config_source = SOURCE_CILIUM_CONFIG
        reading = read_kpr_value(signals.cilium_config, signals.cilium_version, config_where)
    else:
        reading = None
    if reading is not None:
        configured = reading.datapath
        if reading.problem is not None:
            problems.append(reading.problem)
    if signals.node_config_conflicts:
        problems.append(Problem(CONFLICTING_NODE_CONFIGS, (
            f"CiliumNodeConfigs {', '.join(signals.node_config_conflicts)} also select the "
            f"node with another kube-proxy-replacement; {signals.node_config_ref} is assumed "
            f"to win (last by name)")))

    if signals.feature_gauge is not None:
        datapath, source = (EBPF if signals.feature_gauge >= 0.5 else KUBE_PROXY,
                            SOURCE_FEATURE_GAUGE)
        if configured != UNKNOWN and configured != datapath:
            problems.append(Problem(RESTART_PENDING, (
                f"{config_where} asks for {configured} but the agent runs {datapath}: the "
                f"change applies when the Cilium agent on the node restarts")))
    elif configured != UNKNOWN:
        datapath, source = configured, config_source
    elif signals.kube_proxy_running is not None:
        datapath = KUBE_PROXY if signals.kube_proxy_running else EBPF
        source = SOURCE_KUBE_PROXY_POD
    else:
        datapath, source = UNKNOWN, SOURCE_NONE

    if signals.kube_proxy_running and datapath == EBPF:
        problems.append(Problem(KUBE_PROXY_ON_EBPF_NODE, (
            "kube-proxy still runs on a node where Cilium replaces it: both NAT tables are "
            "live; exclude the node from the kube-proxy DaemonSet")))
    elif signals.kube_proxy_running is False and datapath == KUBE_PROXY:
        problems.append(Problem(KUBE_PROXY_MISSING, (
            "no kube-proxy pod runs on a node that relies on kube-proxy: NodePort and "
            "LoadBalancer Services are not programmed there")))
    return Decision(datapath, source, configured, tuple(problems))


def migration_phase(datapaths: Iterable[str], last_switch_to: str | None) -> str:
    """``before`` (no eBPF node), ``canary`` (mixed), ``after`` (all eBPF) or
    ``rolled-back`` (the latest switch went back to kube-proxy and not every node is on
    eBPF); ``unknown`` while no node's datapath is known."""
    known = [d for d in datapaths if d in (KUBE_PROXY, EBPF)]
    if not known:
        return PHASE_UNKNOWN
    ebpf = sum(1 for d in known if d == EBPF)
    if ebpf == len(known):
        return AFTER
    if last_switch_to == KUBE_PROXY:
        return ROLLED_BACK
    return BEFORE if ebpf == 0 else CANARY


_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def parse_version(text: str | None) -> tuple[int, int] | None:
    """``(major, minor)`` from ``1.16.3``, ``v1.17.0-rc.1`` or an image reference such as
    ``quay.io/cilium/cilium:v1.16.3@sha256:...``; None when there is none."""
    if not text:
        return None
    tag = text.rsplit("@", 1)[0]
    if "/" in tag or ":" in tag:
        tag = tag.rsplit(":", 1)[-1] if ":" in tag.rsplit("/", 1)[-1] else ""
    match = _VERSION.match(tag.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def unique_by_name(objects: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One object per (namespace, name), first wins (CiliumNodeConfigs seen through two
    API versions are the same objects)."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if key not in seen:
            seen.add(key)
            unique.append(obj)
    return unique
