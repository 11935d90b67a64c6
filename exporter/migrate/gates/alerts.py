"""The ``alerts`` gate: no rollback alert fires for the migrated nodes.

It asks an ``AlertSource`` role for the alerts firing now: Prometheus' ``/api/v1/alerts``
(``PrometheusAlerts``: state ``firing``) or Alertmanager's ``/api/v2/alerts``
(``AlertmanagerAlerts``: active, neither silenced nor inhibited, as the webhook would
receive them). An alert carrying every ``match_labels`` pair (``kpr_action="rollback"``, the
webhook's own match) counts against the migration when

* its ``node`` label names a switched node (the batch's or one migrated earlier), or
* it names no node: its scope is the eBPF nodes (``kpr_scope`` canary, cluster or none),
  which are the migrated ones, exactly as the webhook scopes it.

An alert naming only nodes still on kube-proxy is not the migration's and is listed as
evidence only. A source that cannot be read is ``inconclusive``, never a pass.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp

from exporter.migrate.gates.base import FAIL, INCONCLUSIVE, PASS, BatchContext, GateResult
from exporter.report.client import check_url

NAME = "alerts"
ROLLBACK_MATCH = {"kpr_action": "rollback"}
Labels = Mapping[str, str]


class AlertSourceError(Exception):
    """The alerts could not be read."""


class AlertSource(Protocol):
    """The alerts firing now, as label sets."""

    name: str

    async def firing(self) -> list[Labels]:
        """Raises AlertSourceError."""
        ...


Session = Callable[[], aiohttp.ClientSession]


def _session(timeout: float = 10.0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


class _HttpAlerts:
    path = ""
    name = ""

    def __init__(self, url: str, session: Session = _session) -> None:
        try:
            self.url = check_url(url)
        except ValueError as exc:
            raise AlertSourceError(f"{self.name}: {exc}") from None
        self._session = session

    async def _get(self, params: Mapping[str, str] | None = None) -> Any:
        where = f"{self.url}{self.path}"
        try:
            async with self._session() as session:
                async with session.get(where, params=params) as response:
                    status, text = response.status, await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise AlertSourceError(f"cannot read {where}: {exc or type(exc).__name__}") from None
        if status != 200:
            raise AlertSourceError(f"{where} answered HTTP {status}")
        try:
            return json.loads(text)
        except ValueError:
            raise AlertSourceError(f"{where} did not answer JSON") from None


class PrometheusAlerts(_HttpAlerts):
    """Prometheus' alerting rules in state ``firing`` (``/api/v1/alerts``)."""

    name = "prometheus"
    path = "/api/v1/alerts"

    async def firing(self) -> list[Labels]:
        body = await self._get()
        alerts = body.get("data", {}).get("alerts") if isinstance(body, dict) else None
        if not isinstance(alerts, list):
            raise AlertSourceError(f"{self.url}{self.path}: not a Prometheus alerts answer")
        return [_labels(a) for a in alerts if isinstance(a, dict) and a.get("state") == "firing"]


class AlertmanagerAlerts(_HttpAlerts):
    """Alertmanager's active alerts, not silenced or inhibited (``/api/v2/alerts``)."""

    name = "alertmanager"
    path = "/api/v2/alerts"

    async def firing(self) -> list[Labels]:
        body = await self._get({"active": "true", "silenced": "false", "inhibited": "false"})
        if not isinstance(body, list):
            raise AlertSourceError(f"{self.url}{self.path}: not an Alertmanager alerts answer")
        return [_labels(a) for a in body
                if isinstance(a, dict) and (a.get("status") or {}).get("state") == "active"]


def _labels(alert: Mapping[str, Any]) -> Labels:
    return {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}


class AlertsGate:
    """The ``alerts`` gate (see the module's docstring)."""

    name = NAME

    def __init__(self, source: AlertSource, *, match_labels: Labels | None = None,
                 node_label: str = "node") -> None:
        self.source = source
        self.match_labels = dict(ROLLBACK_MATCH if match_labels is None else match_labels)
        self.node_label = node_label

    async def evaluate(self, ctx: BatchContext) -> GateResult:
        try:
            alerts = await self.source.firing()
        except AlertSourceError as exc:
            return GateResult(NAME, INCONCLUSIVE, f"cannot read the alerts from "
                                                  f"{self.source.name}: {exc}")
        return judge(ctx, alerts, self.match_labels, self.node_label, self.source.name)


def judge(ctx: BatchContext, alerts: Sequence[Labels], match: Labels, node_label: str,
          where: str = "") -> GateResult:
    """The gate's answer from the firing alerts' label sets."""
    switched = set(ctx.switched)
    against, elsewhere = [], []
    for labels in alerts:
        if any(labels.get(k) != v for k, v in match.items()):
            continue
        node = labels.get(node_label, "")
        line = _describe(labels, node_label)
        if not node:
            against.append(f"{line}: scope {labels.get('kpr_scope') or 'canary'} (the eBPF nodes)")
        elif node in switched:
            against.append(f"{line}: a migrated node")
        else:
            elsewhere.append(f"{line}: not a migrated node, not counted")
    wanted = ", ".join(f'{k}="{v}"' for k, v in sorted(match.items()))
    if against and switched:
        return GateResult(NAME, FAIL, f"{len(against)} {wanted} alert(s) firing for the "
                          "migrated nodes", (*against, *elsewhere))
    return GateResult(NAME, PASS, f"no {wanted} alert firing for the migrated nodes"
                      + (f" ({where})" if where else ""), tuple(elsewhere))


def _describe(labels: Labels, node_label: str) -> str:
    name = labels.get("alertname", "?")
    keys = [k for k in ("namespace", "service", "sli", "comparison", node_label, "check")
            if labels.get(k)]
    return name + ("{" + ", ".join(f"{k}={labels[k]}" for k in keys) + "}" if keys else "")
