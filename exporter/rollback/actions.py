"""The typed rollback plan: its actions, steps and serialisation (pure).

Each action is a small frozen dataclass with a ``KIND`` (its name in the persisted plan)
and ``describe()``; ``action_to_dict``/``action_from_dict`` round-trip them through the
state ConfigMap, so a resumed rollback runs exactly the persisted actions. The planner is
:mod:`exporter.rollback.plan`; the appliers that carry actions out against the API are
:mod:`exporter.rollback.appliers`. A new action is one dataclass here, one line in
``_ACTION_TYPES``, one applier and one test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Final

from exporter.rollback.roles import NOOP, REFUSED, Scope, Trigger

STEP_OWNERS: Final = "owners"
STEP_KUBE_PROXY: Final = "kube-proxy"
STEP_KPR_OFF: Final = "kpr-off"
STEP_RESTART: Final = "restart-agents"
STEP_PROVE: Final = "prove"
STEP_TITLES: Final = {
    STEP_OWNERS: "stop GitOps owners from reverting the change (before anything changes)",
    STEP_KUBE_PROXY: "bring kube-proxy back on the affected nodes",
    STEP_KPR_OFF: "turn the kube-proxy replacement off",
    STEP_RESTART: "restart the Cilium agents, one node at a time",
    STEP_PROVE: "prove each node on its datapath",
}
READY: Final = "ready"


# --- actions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreObject:
    """Create an object from the backup unless it exists (an existing one is left alone)."""

    KIND: ClassVar[str] = "restore-object"
    api_version: str
    kind: str
    namespace: str
    name: str
    manifest: dict[str, Any]
    backup_taken_at: str = ""

    def describe(self) -> str:
        return (f"create {self.kind} {self.namespace}/{self.name} from the backup taken "
                f"{self.backup_taken_at or '(unknown time)'} (kept as is if it exists)")


@dataclass(frozen=True)
class RemoveNodeLabel:
    """Remove a label from a node (the migration label)."""

    KIND: ClassVar[str] = "remove-node-label"
    node: str
    label: str

    def describe(self) -> str:
        return f"remove label {self.label} from node {self.node}"


@dataclass(frozen=True)
class UnexcludeNodes:
    """Drop values from a DaemonSet's required ``key NotIn [...]`` node affinity."""

    KIND: ClassVar[str] = "unexclude-nodes"
    namespace: str
    name: str
    key: str
    values: tuple[str, ...]

    def describe(self) -> str:
        return (f"remove {', '.join(self.values)} from the {self.key} NotIn affinity of "
                f"DaemonSet {self.namespace}/{self.name}")


@dataclass(frozen=True)
class WaitKubeProxyReady:
    """Wait until a ready kube-proxy pod runs on every one of ``nodes``."""

    KIND: ClassVar[str] = "wait-kube-proxy"
    nodes: tuple[str, ...]

    def describe(self) -> str:
        return f"wait until kube-proxy is ready on {', '.join(self.nodes)}"


@dataclass(frozen=True)
class SetConfigValues:
    """Set keys of a ConfigMap's data (cilium-config)."""

    KIND: ClassVar[str] = "set-config"
    namespace: str
    name: str
    values: dict[str, str]

    def describe(self) -> str:
        shown = ", ".join(f'{k}: "{v}"' for k, v in sorted(self.values.items()))
        return f"set {shown} in ConfigMap {self.namespace}/{self.name}"


@dataclass(frozen=True)
class StripNodeConfig:
    """Remove KPR keys from a CiliumNodeConfig; delete it when no default is left."""

    KIND: ClassVar[str] = "strip-node-config"
    namespace: str
    name: str
    keys: tuple[str, ...]
    delete: bool  # whether nothing else is left (informational; decided again on apply)

    def describe(self) -> str:
        if self.delete:
            return f"delete CiliumNodeConfig {self.namespace}/{self.name} (it only switched KPR)"
        return f"remove {', '.join(self.keys)} from CiliumNodeConfig {self.namespace}/{self.name}"


@dataclass(frozen=True)
class VerifyKprOff:
    """Re-read cilium-config, CiliumNodeConfigs and node labels: KPR must be off for ``nodes``."""

    KIND: ClassVar[str] = "verify-kpr-off"
    nodes: tuple[str, ...]

    def describe(self) -> str:
        return f"verify the effective kube-proxy-replacement is off for {', '.join(self.nodes)}"


@dataclass(frozen=True)
class RestartAgent:
    """Delete the Cilium agent pod on ``node`` and wait for a ready replacement."""

    KIND: ClassVar[str] = "restart-agent"
    node: str

    def describe(self) -> str:
        return f"restart the Cilium agent on {self.node} and wait until it is ready"


@dataclass(frozen=True)
class ProveNode:
    """Ask the node itself: kube-proxy's health endpoint fresh, the agent's KPR gauge off."""

    KIND: ClassVar[str] = "prove-node"
    node: str

    def describe(self) -> str:
        return (f"prove {self.node} is on kube-proxy: its /healthz synced recently and the "
                "agent's KPR feature gauge reads 0")


@dataclass(frozen=True)
class SuspendFlux:
    """``spec.suspend: true`` on the Flux HelmRelease or Kustomization that owns an object."""

    KIND: ClassVar[str] = "suspend-flux"
    kind: str  # HelmRelease or Kustomization
    namespace: str
    name: str
    owns: tuple[str, ...]

    def describe(self) -> str:
        return (f"suspend Flux {self.kind} {self.namespace}/{self.name} (owns "
                f"{', '.join(self.owns)}); resume it after the change is in Git")


@dataclass(frozen=True)
class DisableArgoSync:
    """Turn automated sync off on the Argo CD Application that owns an object."""

    KIND: ClassVar[str] = "disable-argo-sync"
    namespace: str
    name: str
    owns: tuple[str, ...]

    def describe(self) -> str:
        return (f"turn off automated sync of Argo CD Application {self.namespace}/{self.name} "
                f"(owns {', '.join(self.owns)}); re-enable it after the change is in Git")


Action = (RestoreObject | RemoveNodeLabel | UnexcludeNodes | WaitKubeProxyReady | SetConfigValues
          | StripNodeConfig | VerifyKprOff | RestartAgent | ProveNode | SuspendFlux
          | DisableArgoSync)
_ACTION_TYPES: Final = {cls.KIND: cls for cls in (
    RestoreObject, RemoveNodeLabel, UnexcludeNodes, WaitKubeProxyReady, SetConfigValues,
    StripNodeConfig, VerifyKprOff, RestartAgent, ProveNode, SuspendFlux, DisableArgoSync,
)}


def action_to_dict(action: Action) -> dict[str, Any]:
    return {"action": action.KIND, **asdict(action)}


def action_from_dict(doc: Mapping[str, Any]) -> Action:
    cls = _ACTION_TYPES[doc["action"]]
    args = {k: v for k, v in doc.items() if k != "action"}
    for key in ("nodes", "values", "keys", "owns"):
        if isinstance(args.get(key), list):
            args[key] = tuple(args[key])
    return cls(**args)


@dataclass(frozen=True)
class Step:
    name: str
    actions: tuple[Action, ...]

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.name, self.name)


# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """An ordered, serialisable rollback; ``refusal`` non-empty means "do nothing, here is why"."""

    id: str
    scope: Scope
    trigger: Trigger
    created_at: float
    nodes: tuple[str, ...]
    steps: tuple[Step, ...] = ()
    refusal: str = ""
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if self.refusal:
            return REFUSED
        return READY if self.steps else NOOP

    def actions(self) -> list[tuple[int, Step, Action]]:
        """Every action with its index in plan order."""
        out: list[tuple[int, Step, Action]] = []
        for step in self.steps:
            for action in step.actions:
                out.append((len(out), step, action))
        return out

    def render(self) -> str:
        """The plan as text for people: the CLI prints it, dry-run logs it."""
        head = f"Rollback plan {self.id} for {self.scope.describe()}"
        lines = [head, f"  reason: {self.trigger.reason}"]
        if self.trigger.fingerprints:
            lines.append(f"  alerts: {', '.join(self.trigger.fingerprints)}")
        if self.nodes:
            lines.append(f"  affected nodes: {', '.join(self.nodes)}")
        if self.refusal:
            lines.append(f"  REFUSED, nothing will be changed: {self.refusal}")
        elif not self.steps:
            lines.append("  nothing to do: " + ("; ".join(self.notes) or "no node uses KPR"))
        for number, step in enumerate(self.steps, 1):
            lines.append(f"  {number}. {step.title}")
            lines.extend(f"     - {a.describe()}" for a in step.actions)
        if self.steps:
            lines.append("  never: delete kube-proxy, run kube-proxy --cleanup, unset k8sServiceHost")
        for note in self.notes if self.steps else ():
            lines.append(f"  note: {note}")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope.to_dict(),
            "trigger": self.trigger.to_dict(),
            "createdAt": self.created_at,
            "nodes": list(self.nodes),
            "steps": [{"name": s.name, "actions": [action_to_dict(a) for a in s.actions]}
                      for s in self.steps],
            "refusal": self.refusal,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Plan:
        return cls(
            id=str(doc["id"]),
            scope=Scope.from_dict(doc["scope"]),
            trigger=Trigger.from_dict(doc["trigger"]),
            created_at=float(doc["createdAt"]),
            nodes=tuple(doc.get("nodes") or ()),
            steps=tuple(Step(s["name"], tuple(action_from_dict(a) for a in s["actions"]))
                        for s in doc.get("steps") or ()),
            refusal=str(doc.get("refusal", "")),
            warnings=tuple(doc.get("warnings") or ()),
            notes=tuple(doc.get("notes") or ()),
        )


