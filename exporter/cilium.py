"""Cilium's configuration semantics, in one place: label selectors, CiliumNodeConfig, the
``kube-proxy-replacement`` key and its values, the per-node migration label, which
configuration sets it on a node, and the names of the migration phases.

The datapath tracker (``exporter.datapath``), the rollback planner (``exporter.rollback``)
and the preflight checks all read the cluster's configuration through this module, so they
agree on which nodes a CiliumNodeConfig selects and on what a value means.

Label selectors follow ``metav1.LabelSelectorAsSelector`` exactly: a missing (nil) selector
selects nothing, an empty one selects everything, ``matchLabels`` and ``matchExpressions``
are ANDed, and a selector the API server would reject (``In``/``NotIn`` without values,
``Exists``/``DoesNotExist`` with values, an unknown operator, a malformed key or value)
selects nothing; ``selector_problem`` says why. Pure module: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.model import EBPF, KUBE_PROXY, UNKNOWN

# --- migration phases (the ``phase`` label of kpr_migration_phase) -----------------------

BEFORE: Final = "before"
CANARY: Final = "canary"
AFTER: Final = "after"
ROLLED_BACK: Final = "rolled-back"
PHASE_UNKNOWN: Final = "unknown"
PHASES: Final = (BEFORE, CANARY, AFTER, ROLLED_BACK, PHASE_UNKNOWN)

# --- label selectors -------------------------------------------------------------------------

IN: Final = "In"
NOT_IN: Final = "NotIn"
EXISTS: Final = "Exists"
DOES_NOT_EXIST: Final = "DoesNotExist"
GT: Final = "Gt"
LT: Final = "Lt"
#: Operators of a ``LabelSelectorRequirement``.
LABEL_OPERATORS: Final = (IN, NOT_IN, EXISTS, DOES_NOT_EXIST)
#: Operators of a ``NodeSelectorRequirement`` (node affinity) add the integer comparisons.
NODE_OPERATORS: Final = (*LABEL_OPERATORS, GT, LT)

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class InvalidSelector(ValueError):
    """A selector or requirement the API server would reject."""


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidSelector(f"label key {key!r} is not a non-empty string")
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise InvalidSelector(f"label key {key!r}: the prefix must be a DNS subdomain")
    if len(name) > 63 or not _NAME.match(name):
        raise InvalidSelector(f"label key {key!r}: the name must be 1-63 alphanumerics, "
                              "'-', '_' or '.', starting and ending alphanumeric")
    return key


def _check_value(value: object) -> str:
    if not isinstance(value, str) or (value and (len(value) > 63 or not _NAME.match(value))):
        raise InvalidSelector(f"label value {value!r} is not a valid label value")
    return value


def check_requirement(expr: object, operators: Sequence[str] = LABEL_OPERATORS
                      ) -> tuple[str, str, tuple[str, ...]]:
    """``(key, operator, values)`` of one requirement; ``InvalidSelector`` when invalid."""
    if not isinstance(expr, Mapping):
        raise InvalidSelector(f"requirement {expr!r} is not an object")
    key = _check_key(expr.get("key"))
    op = expr.get("operator")
    raw = expr.get("values")
    if raw is not None and not isinstance(raw, list | tuple):
        raise InvalidSelector(f"{key}: values must be a list")
    values = tuple(raw or ())
    if op not in operators:
        raise InvalidSelector(f"{key}: {op!r} is not a valid operator ({', '.join(operators)})")
    if op in (IN, NOT_IN) and not values:
        raise InvalidSelector(f"{key} {op}: values must be non-empty")
    if op in (EXISTS, DOES_NOT_EXIST) and values:
        raise InvalidSelector(f"{key} {op}: values must be empty")
    if op in (GT, LT) and (len(values) != 1 or not re.fullmatch(r"[+-]?\d+", str(values[0]))):
        raise InvalidSelector(f"{key} {op}: needs exactly one integer value")
    return key, str(op), tuple(_check_value(v) for v in values)


def requirement_matches(key_op_values: tuple[str, str, tuple[str, ...]], value: str | None) -> bool:
    """Does a checked requirement hold for a label ``value`` (None: the label is absent)?"""
    _, op, values = key_op_values
    if op == IN:
        return value is not None and value in values
    if op == NOT_IN:
        return value is None or value not in values
    if op == EXISTS:
        return value is not None
    if op == DOES_NOT_EXIST:
        return value is None
    try:  # Gt / Lt: an absent or non-integer label does not match
        number, bound = int(value or ""), int(values[0])
    except ValueError:
        return False
    return number > bound if op == GT else number < bound


def _requirements(selector: Mapping[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    if not isinstance(selector, Mapping):
        raise InvalidSelector(f"selector {selector!r} is not an object")
    match_labels = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(exprs, list | tuple):
        raise InvalidSelector("matchLabels must be a map and matchExpressions a list")
    out = [(_check_key(k), IN, (_check_value(v),)) for k, v in match_labels.items()]
    return out + [check_requirement(e) for e in exprs]


def selector_problem(selector: Mapping[str, Any] | None) -> str | None:
    """Why the API server would reject ``selector``; None when it is valid (or nil)."""
    if selector is None:
        return None
    try:
        _requirements(selector)
    except InvalidSelector as exc:
        return str(exc)
    return None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Does ``selector`` select an object carrying ``labels``? Nil and invalid: never."""
    if selector is None:
        return False
    try:
        requirements = _requirements(selector)
    except InvalidSelector:
        return False
    return all(requirement_matches(r, labels.get(r[0])) for r in requirements)


# --- the kube-proxy-replacement key and its values -------------------------------------

#: The node label of Cilium's per-node migration procedure ("Per-node configuration",
#: example "KubeProxyReplacement Rollout"): a CiliumNodeConfig selects the labelled nodes
#: and kube-proxy's node affinity keeps it off them.
MIGRATION_LABEL: Final = "io.cilium.migration/kube-proxy-replacement"
KPR_KEY: Final = "kube-proxy-replacement"
KPR_HEALTHZ_KEY: Final = "kube-proxy-replacement-healthz-bind-address"
KPR_KEYS: Final = (KPR_KEY, KPR_HEALTHZ_KEY)
#: cilium-config keys of the replacement's sub-features that a switch may set explicitly
#: (socket LB, NodePort, hostPort, externalIPs, host-namespace-only socket LB, session
#: affinity); a full rollback puts back the values they had before the switch.
KPR_SUBFEATURE_KEYS: Final = (
    "bpf-lb-sock", "bpf-lb-sock-hostns-only", "enable-node-port", "enable-host-port",
    "enable-external-ips", "enable-session-affinity",
)
#: What an absent key means (Cilium's default).
KPR_DEFAULT: Final = "false"
#: Values that leave the replacement off on every Cilium release (``strict``, ``partial``
#: and ``probe`` turned it on, fully or partly, before 1.14).
KPR_OFF_VALUES: Final = frozenset({"false", "disabled", ""})
#: First Cilium release in which only the literal ``true`` turns the replacement on.
TRUE_FALSE_SINCE: Final = (1, 14)

# Value problems (``kind`` values of kpr_node_datapath_disagreement).
STRICT_NOT_HONOURED: Final = "strict-not-honoured"
LEGACY_VALUE: Final = "legacy-value"
INVALID_VALUE: Final = "invalid-value"


def kpr_on(value: str | None) -> bool:
    """Whether a value may turn the replacement on, on some Cilium release: what a rollback
    must clear. ``read_kpr_value`` says what it does on a given release."""
    return (value or "").strip().lower() not in KPR_OFF_VALUES


@dataclass(frozen=True, slots=True)
class Problem:
    """A disagreement between signals, or a value Cilium will not honour as meant."""

    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Reading:
    """What one ``kube-proxy-replacement`` value means for the datapath."""

    datapath: str
    problem: Problem | None = None


def read_kpr_value(raw: str, version: tuple[int, int] | None, where: str) -> Reading:
    """The datapath a ``kube-proxy-replacement`` value gives an agent of ``version``
    (None: unknown, assumed current). ``where`` names the value's origin in messages."""
    value = raw.strip().lower()
    modern = version is None or version >= TRUE_FALSE_SINCE
    assumed = " (Cilium version unknown, assumed >= 1.14)" if version is None else ""
    if value == "true":
        return Reading(EBPF)
    if value == "false":
        return Reading(KUBE_PROXY)
    if value == "strict":
        if not modern:
            return Reading(EBPF)
        return Reading(KUBE_PROXY, Problem(STRICT_NOT_HONOURED, (
            f"{where} sets kube-proxy-replacement=strict: Cilium >= 1.14 only enables the "
            f"replacement for \"true\", so the agent runs without it{assumed}; set \"true\"")))
    if value in ("partial", "disabled", "probe"):
        if not modern:
            # partial/disabled keep kube-proxy in charge; probe depends on the kernel.
            return Reading(UNKNOWN if value == "probe" else KUBE_PROXY)
        return Reading(KUBE_PROXY, Problem(LEGACY_VALUE, (
            f"{where} sets kube-proxy-replacement={value}, a pre-1.14 value that Cilium "
            f">= 1.14 reads as off{assumed}; use \"true\" or \"false\"")))
    return Reading(UNKNOWN, Problem(INVALID_VALUE, (
        f"{where} sets kube-proxy-replacement={raw!r}, which Cilium does not know")))


# --- CiliumNodeConfig and the effective setting ---------------------------------------------

CILIUM_CONFIG_REF: Final = "ConfigMap cilium-config"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A ``CiliumNodeConfig``: a node selector and cilium-config overrides."""

    namespace: str
    name: str
    selector: Mapping[str, Any] | None
    defaults: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> NodeConfig:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        defaults = {str(k): str(v) for k, v in (spec.get("defaults") or {}).items()}
        return cls(str(meta.get("namespace", "")), str(meta.get("name", "")),
                   spec.get("nodeSelector"), defaults)

    @property
    def namespaced_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ref(self) -> str:
        return f"CiliumNodeConfig {self.namespaced_name}"

    @property
    def selector_problem(self) -> str | None:
        """Why the selector is invalid (it then selects no node); None when it is valid."""
        return selector_problem(self.selector)

    def selects(self, labels: Mapping[str, str]) -> bool:
        return selector_matches(self.selector, labels)


def node_config_for(configs: Iterable[NodeConfig], labels: Mapping[str, str]
                    ) -> tuple[NodeConfig | None, tuple[str, ...]]:
    """The CiliumNodeConfig whose ``kube-proxy-replacement`` applies to a node with
    ``labels``, and the namespaced names of other selecting configs with another value.

    When several select the node the last by (namespace, name) is taken to win (assumption:
    Cilium applies them in name order); the conflict is reported rather than trusted.
    """
    selecting = sorted((c for c in configs if KPR_KEY in c.defaults and c.selects(labels)),
                       key=lambda c: (c.namespace, c.name))
    if not selecting:
        return None, ()
    winner = selecting[-1]
    value = winner.defaults[KPR_KEY].strip().lower()
    conflicts = tuple(c.namespaced_name for c in selecting[:-1]
                      if c.defaults[KPR_KEY].strip().lower() != value)
    return winner, conflicts


def effective_kpr(labels: Mapping[str, str], cilium_config: Mapping[str, str] | None,
                  node_configs: Iterable[NodeConfig]) -> tuple[str, str]:
    """``(value, source)`` of kube-proxy-replacement for an agent started on a node with
    ``labels``: the CiliumNodeConfig ``node_config_for`` picks overrides cilium-config
    (missing ConfigMap or key: ``false``). ``source`` is the config's ``ref``."""
    winner, _ = node_config_for(node_configs, labels)
    if winner is not None:
        return winner.defaults[KPR_KEY], winner.ref
    return (cilium_config or {}).get(KPR_KEY, KPR_DEFAULT), CILIUM_CONFIG_REF


def invalid_node_configs(configs: Iterable[NodeConfig]) -> dict[str, str]:
    """Namespaced name -> why its selector is invalid, for the configs that select nothing
    because the API server would have rejected their selector."""
    out: dict[str, str] = {}
    for config in configs:
        problem = config.selector_problem
        if problem is not None:
            out[config.namespaced_name] = problem
    return out
