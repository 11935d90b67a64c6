"""Making a rollback durable through Helm: the new release revision, planned (pure).

The fast rollback patches ``cilium-config`` directly; the Helm release still says
``kubeProxyReplacement: true``, so the next ``helm upgrade --reuse-values`` (or Helm 4's
server-side apply, or a GitOps sync) turns KPR back on. ``plan_persist`` takes the deployed
release record (as :func:`exporter.helmrelease.decode_document` returns it) and computes the
revision that makes the rollback stick: the release's own stored chart, its user-supplied
values, and ``kubeProxyReplacement`` set to false — the same result as
``helm upgrade <release> <chart> --version <deployed> --reuse-values --set
kubeProxyReplacement=false``, without a chart repository. The Helm call itself is the thin
edge in :mod:`exporter.rollback.helm_edge`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

KPR_VALUE: Final = "kubeProxyReplacement"
#: The Helm release description of the revision ``rollback --persist`` makes.
PERSIST_DESCRIPTION: Final = "kpr-exporter rollback --persist: kubeProxyReplacement=false"


class PersistError(Exception):
    """The release cannot be persisted as asked; the message says why and what to do."""


@dataclass(frozen=True)
class PersistPlan:
    release: str
    namespace: str
    revision: int  # the deployed revision the new one follows
    chart: str
    chart_version: str
    values_before: Mapping[str, Any]
    values_after: Mapping[str, Any]
    diff: tuple[str, ...] = field(default=())

    @property
    def needed(self) -> bool:
        return self.values_before != self.values_after

    def command(self) -> str:
        """The Helm CLI command an operator would type for the same change."""
        return (f"helm upgrade {self.release} <{self.chart} chart> --version {self.chart_version} "
                f"-n {self.namespace} --reuse-values --set {KPR_VALUE}=false")

    def render(self) -> str:
        head = (f"Helm release {self.namespace}/{self.release}: revision {self.revision} "
                f"({self.chart} {self.chart_version}) -> revision {self.revision + 1}")
        if not self.needed:
            return f"{head}: nothing to change ({KPR_VALUE} is already off)"
        return "\n".join([head, "values (user-supplied):", *self.diff,
                          f"same as: {self.command()}"])


def plan_persist(document: Mapping[str, Any]) -> PersistPlan:
    """The new revision for the deployed release ``document``; PersistError when impossible."""
    chart = document.get("chart") or {}
    meta = chart.get("metadata") or {}
    status = (document.get("info") or {}).get("status", "")
    name = str(document.get("name") or "")
    if status != "deployed":
        raise PersistError(f"Helm release {name!r} revision {document.get('version')} is "
                           f"{status or 'of unknown status'}, not deployed; persist the deployed one")
    if not chart.get("templates"):
        raise PersistError(f"Helm release {name!r} stores no chart templates; use "
                           f"`helm upgrade ... --set {KPR_VALUE}=false` with the chart itself")
    if meta.get("dependencies"):
        raise PersistError(f"chart {meta.get('name')} has dependencies, which a release record does "
                           "not store; upgrade with the chart itself")
    before = dict(document.get("config") or {})
    after = with_kpr_off(before)
    return PersistPlan(
        release=name, namespace=str(document.get("namespace") or ""),
        revision=int(document.get("version") or 0), chart=str(meta.get("name") or ""),
        chart_version=str(meta.get("version") or ""), values_before=before, values_after=after,
        diff=tuple(values_diff(before, after)),
    )


def with_kpr_off(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with ``kubeProxyReplacement`` off, in the type the values already use."""
    out = copy.deepcopy(dict(values))
    current = out.get(KPR_VALUE)
    out[KPR_VALUE] = "false" if isinstance(current, str) else False
    return out


def values_diff(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``-``/``+`` lines for every dotted key whose value differs."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        path = f"{prefix}{key}"
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines += values_diff(old, new, f"{path}.")
        elif old != new:
            if old is not _ABSENT:
                lines.append(f"  - {path}: {json.dumps(old)}")
            if new is not _ABSENT:
                lines.append(f"  + {path}: {json.dumps(new)}")
    return lines


_ABSENT: Final = object()
