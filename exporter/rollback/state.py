"""Rollback progress persisted in an annotation of a ConfigMap, so a restart resumes.

The annotation ``kpr-exporter.io/rollback-state`` of ConfigMap
``<rollback.namespace>/<rollback.state_configmap>`` holds JSON: the plan being run, the
indices of the actions already done, the old agent pod per node being restarted,
and the status (running, succeeded, failed, refused). ``kpr-exporter.io/rollback-history``
keeps the end times of recent completed rollbacks (succeeded or failed, never one that was
interrupted), so cooldown and cap survive restarts too.

Writes are compare-and-swap: ``save`` replaces the ConfigMap at the ``resourceVersion``
this store last read or wrote, so a replica writing from stale progress gets
``StateConflict`` and stops instead of overwriting what the Lease holder recorded.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.kube.client import KubeClient
from exporter.kube.errors import Conflict, NotFound
from exporter.kube.resources import CONFIGMAPS
from exporter.rollback.actions import Plan

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


class StateConflict(Exception):
    """The state ConfigMap changed since this store read it: another replica wrote it."""


class StateStore:
    """Loads and saves ``RollbackState`` and the rollback history (compare-and-swap)."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self._kube, self._namespace, self._name = kube, namespace, name
        self.location = f"ConfigMap {namespace}/{name}"
        self._seen: dict[str, Any] | None = None  # the ConfigMap as we last read or wrote it

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self._kube.get(CONFIGMAPS, self._name, self._namespace)
        except NotFound:
            return None

    async def load(self) -> RollbackState | None:
        """Read the state; later saves are conditional on the version read here."""
        self._seen = await self._read()
        text = _annotations(self._seen).get(STATE_ANNOTATION)
        if not text:
            return None
        try:
            return RollbackState.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{self.location}: annotation {STATE_ANNOTATION} is unreadable: {exc}") from exc

    async def history(self) -> list[float]:
        """End times of recent completed rollbacks (a read only: ``save`` is not affected)."""
        return _history(_annotations(await self._read()))

    async def save(self, state: RollbackState, *, ended_at: float | None = None) -> None:
        """Write ``state`` (and ``ended_at`` into the history); ``StateConflict`` when stale."""
        annotations = _annotations(self._seen)
        annotations[STATE_ANNOTATION] = json.dumps(state.to_dict(), sort_keys=True)
        if ended_at is not None:
            annotations[HISTORY_ANNOTATION] = json.dumps(
                [*_history(annotations), ended_at][-HISTORY_LIMIT:])
        try:
            if self._seen is None:
                self._seen = await self._kube.create(CONFIGMAPS, self._new(annotations), self._namespace)
            else:
                body = copy.deepcopy(self._seen)
                body["metadata"]["annotations"] = annotations  # keeps resourceVersion: CAS
                self._seen = await self._kube.replace(CONFIGMAPS, body, self._namespace)
        except Conflict as exc:
            raise self._conflict(exc) from exc
        except NotFound as exc:
            if self._seen is None:
                raise  # the namespace itself is missing
            raise self._conflict(exc) from exc

    def _conflict(self, exc: Exception) -> StateConflict:
        return StateConflict(f"{self.location} was changed by another replica since it was "
                             f"read ({exc}); stopped without overwriting it")

    def _new(self, annotations: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": self._name, "namespace": self._namespace,
                             "labels": {"app.kubernetes.io/name": "kpr-exporter",
                                        "app.kubernetes.io/component": "rollback-state"},
                             "annotations": annotations}}


def _annotations(cm: dict[str, Any] | None) -> dict[str, str]:
    return dict(((cm or {}).get("metadata") or {}).get("annotations") or {})


def _history(annotations: dict[str, str]) -> list[float]:
    text = annotations.get(HISTORY_ANNOTATION)
    try:
        return [float(t) for t in json.loads(text)] if text else []
    except (ValueError, TypeError):
        return []
