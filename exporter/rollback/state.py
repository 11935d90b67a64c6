"""Rollback progress persisted in an annotation of a ConfigMap, so a restart resumes.

The annotation ``kpr-exporter.io/rollback-state`` of ConfigMap
``<rollback.namespace>/<rollback.state_configmap>`` holds JSON: the plan being run, the
indices of the actions already done, the old agent pod per node being restarted,
and the status (running, succeeded, failed, refused). ``kpr-exporter.io/rollback-history``
keeps the start times of recent rollbacks, so cooldown and cap survive restarts too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.kube.client import MERGE_PATCH, KubeClient
from exporter.kube.errors import Conflict, NotFound
from exporter.kube.resources import CONFIGMAPS
from exporter.rollback.plan import Plan

STATE_ANNOTATION: Final = "kpr-exporter.io/rollback-state"
HISTORY_ANNOTATION: Final = "kpr-exporter.io/rollback-history"
RUNNING: Final = "running"
HISTORY_LIMIT: Final = 50


@dataclass
class RollbackState:
    """Where a rollback stands."""

    plan: Plan
    status: str = RUNNING
    done: list[int] = field(default_factory=list)
    restarting: dict[str, str] = field(default_factory=dict)  # node -> uid of the pod deleted
    started_at: float = 0.0
    updated_at: float = 0.0
    message: str = ""
    holder: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(), "status": self.status, "done": self.done,
                "restarting": self.restarting, "startedAt": self.started_at,
                "updatedAt": self.updated_at, "message": self.message, "holder": self.holder}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RollbackState:
        return cls(Plan.from_dict(doc["plan"]), str(doc.get("status", RUNNING)),
                   [int(i) for i in doc.get("done") or []],
                   {str(k): str(v) for k, v in (doc.get("restarting") or {}).items()},
                   float(doc.get("startedAt", 0.0)), float(doc.get("updatedAt", 0.0)),
                   str(doc.get("message", "")), str(doc.get("holder", "")))


class StateError(Exception):
    """The persisted state is unreadable."""


class StateStore:
    """Loads and saves ``RollbackState`` and the rollback history."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self._kube, self._namespace, self._name = kube, namespace, name
        self.location = f"ConfigMap {namespace}/{name}"

    async def _annotations(self) -> dict[str, str]:
        try:
            cm = await self._kube.get(CONFIGMAPS, self._name, self._namespace)
        except NotFound:
            return {}
        return dict((cm.get("metadata") or {}).get("annotations") or {})

    async def load(self) -> RollbackState | None:
        text = (await self._annotations()).get(STATE_ANNOTATION)
        if not text:
            return None
        try:
            return RollbackState.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{self.location}: annotation {STATE_ANNOTATION} is unreadable: {exc}") from exc

    async def history(self) -> list[float]:
        text = (await self._annotations()).get(HISTORY_ANNOTATION)
        try:
            return [float(t) for t in json.loads(text)] if text else []
        except (ValueError, TypeError):
            return []

    async def save(self, state: RollbackState, *, history: list[float] | None = None) -> None:
        annotations = {STATE_ANNOTATION: json.dumps(state.to_dict(), sort_keys=True)}
        if history is not None:
            annotations[HISTORY_ANNOTATION] = json.dumps(history[-HISTORY_LIMIT:])
        await self._write(annotations)

    async def _write(self, annotations: dict[str, str]) -> None:
        try:
            await self._kube.patch(CONFIGMAPS, self._name, {"metadata": {"annotations": annotations}},
                                   self._namespace, patch_type=MERGE_PATCH)
            return
        except NotFound:
            pass
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": self._name, "namespace": self._namespace,
                             "labels": {"app.kubernetes.io/name": "kpr-exporter",
                                        "app.kubernetes.io/component": "rollback-state"},
                             "annotations": annotations}}
        try:
            await self._kube.create(CONFIGMAPS, body, self._namespace)
        except Conflict as exc:
            if not exc.already_exists:
                raise
            await self._kube.patch(CONFIGMAPS, self._name, {"metadata": {"annotations": annotations}},
                                   self._namespace, patch_type=MERGE_PATCH)
