"""Keeps the rollback guard's view current and exports it (the effects around ``guard.py``).

Every ``interval`` seconds it reads the last rollback's state, ``cilium-config`` (its owner
and managed fields), the deployed Helm release's values when Helm's Secrets may be read
(else the backup names the chart), and the datapath tracker's eBPF nodes, then exports

* ``kpr_rollback_persisted{owner, release, namespace, chart, chart_version, evidence}``:
  1 once the Helm release agrees with the rollback, 0 until then (alert
  ``KprRollbackNotPersisted``, whose annotation carries the exact ``helm upgrade`` command);
* ``kpr_rollback_undone{node}``: 1 while a node the last rollback restored is on eBPF again
  (alert ``KprReenabledAfterRollback``). A Warning Event is recorded once per node and
  rollback. It never changes anything: fighting the owner would make things worse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter.helmrelease import ReleaseFormatError, decode_secret, latest_deployed
from exporter.kube.client import FIELD_MANAGER, KubeClient
from exporter.kube.errors import Forbidden, KubeError, NotFound
from exporter.kube.events import Regarding, event_body, record_event
from exporter.kube.resources import CONFIGMAPS, SECRETS
from exporter.model import EBPF
from exporter.ownership import detect_owner
from exporter.rollback.backup import BackupError, BackupStore
from exporter.rollback.guard import Assessment, Observed, RollbackRecord, assess, last_succeeded
from exporter.rollback.settings import RollbackSettings
from exporter.rollback.state import StateError, StateStore

log = logging.getLogger(__name__)


class UndoGuard(Collector):
    """``run()`` until cancelled; ``collect()`` exports the last assessment."""

    def __init__(self, kube: KubeClient, settings: RollbackSettings, *, store: BackupStore,
                 tracker: Any, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 interval: float = 30.0) -> None:
        self._kube, self._settings, self._store = kube, settings, store
        self._tracker, self._clock, self._sleep, self._interval = tracker, clock, sleep, interval
        self._state = StateStore(kube, settings.namespace, settings.state_configmap)
        self.last: Assessment | None = None
        self._reported: set[tuple[str, str]] = set()  # (plan, node) already recorded
        self._secrets_refused = False

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except (KubeError, StateError, BackupError) as exc:
                log.warning("rollback guard could not read the cluster", extra={"kv": {"error": str(exc)}})
            await self._sleep(self._interval)

    async def check_once(self) -> Assessment:
        state = await self._state.load()
        record = last_succeeded([state.to_dict()]) if state is not None else None
        observed = await self._observe() if record is not None else None
        self.last = assess(record, observed) if record and observed else Assessment(None, ())
        if record is not None:
            await self._report_undone(record, self.last.undone)
            await self._report_not_persisted(record)
        return self.last

    async def _observe(self) -> Observed:
        c = self._settings.cilium
        try:
            cm = await self._kube.get(CONFIGMAPS, c.configmap, c.namespace)
        except NotFound:
            cm = {}
        fields = (cm.get("metadata") or {}).get("managedFields") or []
        values, chart, version = await self._release()
        return Observed(
            owner=detect_owner(cm), release_values=values,
            our_fields=any(f.get("manager") == FIELD_MANAGER for f in fields),
            chart=chart, chart_version=version, ebpf_since=self._ebpf_since())

    async def _release(self) -> tuple[Mapping[str, Any] | None, str, str]:
        """The deployed release's user values (None when unreadable), chart and version."""
        c = self._settings.cilium
        try:
            listing = await self._kube.list(SECRETS, c.namespace,
                                            label_selector=f"owner=helm,name={c.helm_release},status=deployed")
            deployed = latest_deployed(decode_secret(s) for s in listing.items)
            if deployed is not None:
                return deployed.values, deployed.chart, deployed.chart_version
        except Forbidden:
            if not self._secrets_refused:
                log.info("Helm release not readable (listing Secrets is not granted): the "
                         "persisted check uses the field manager of cilium-config")
                self._secrets_refused = True
        except ReleaseFormatError as exc:
            log.warning("Helm release unreadable", extra={"kv": {"error": str(exc)}})
        backup = await self._store.load()
        helm = (backup.helm_release or {}) if backup is not None else {}
        return None, str(helm.get("chart", "")), str(helm.get("chartVersion", ""))

    def _ebpf_since(self) -> dict[str, float | None]:
        switched = self._tracker.switch_times()
        return {node: switched.get(node) for node in self._tracker.decisions()
                if self._tracker.datapath(node) == EBPF}

    async def _report_undone(self, record: RollbackRecord, nodes: tuple[str, ...]) -> None:
        for node in nodes:
            if (record.plan_id, node) in self._reported:
                continue
            self._reported.add((record.plan_id, node))
            message = (f"kube-proxy replacement is on again for {node} after rollback "
                       f"{record.plan_id}; no migration was started since. Not reverted: find "
                       "who re-enabled it (Helm upgrade, GitOps sync, a CiliumNodeConfig)")
            log.warning("rollback undone", extra={"kv": {"node": node, "plan": record.plan_id}})
            s = self._settings
            await record_event(self._kube, event_body(
                Regarding("ConfigMap", s.namespace, s.state_configmap), reason="KprReenabledAfterRollback",
                message=message, action="Guard", instance=s.identity or "kpr-exporter",
                now=self._clock(), warning=True))

    async def _report_not_persisted(self, record: RollbackRecord) -> None:
        persisted = self.last.persisted if self.last is not None else None
        if persisted is None or persisted.value or (record.plan_id, "") in self._reported:
            return
        self._reported.add((record.plan_id, ""))
        message = (f"rollback {record.plan_id} is not persisted: Helm release "
                   f"{persisted.namespace}/{persisted.release} still turns KPR on at its next "
                   "upgrade. Run `kpr-exporter rollback --persist`, or `helm upgrade "
                   f"{persisted.release} cilium/{persisted.chart} --version "
                   f"{persisted.chart_version} -n {persisted.namespace} --reuse-values --set "
                   "kubeProxyReplacement=false`")
        log.warning("rollback not persisted", extra={"kv": {"plan": record.plan_id,
                                                            "release": persisted.release}})
        s = self._settings
        await record_event(self._kube, event_body(
            Regarding("ConfigMap", s.namespace, s.state_configmap), reason="RollbackNotPersisted",
            message=message, action="Guard", instance=s.identity or "kpr-exporter",
            now=self._clock(), warning=True))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        persisted = GaugeMetricFamily(
            "kpr_rollback_persisted", "1 once the owner of cilium-config agrees with the last "
            "rollback, 0 while its next reconcile would undo it.",
            labels=["owner", "release", "namespace", "chart", "chart_version", "evidence"])
        undone = GaugeMetricFamily(
            "kpr_rollback_undone", "1 while a node the last rollback restored is on eBPF again.",
            labels=["node"])
        if self.last is not None and self.last.persisted is not None:
            persisted.add_metric(self.last.persisted.labels(), self.last.persisted.value)
        for node in self.last.undone if self.last is not None else ():
            undone.add_metric([node], 1.0)
        yield persisted
        yield undone
