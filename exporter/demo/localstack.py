"""``LocalStack``: the real Prometheus and Alertmanager wired to one exporter, for the demo.

Prometheus scrapes the exporter at the profile's scrape interval and evaluates the rules
rendered from that profile (``fast`` by default); Alertmanager routes
``kpr_action="rollback"`` alerts to the exporter's webhook with the bearer token. Both
binaries are resolved before anything starts, so a missing one raises
``MissingBinaryError`` (naming the Debian package) and nothing is left running.

The pieces live next to this module: ``processes`` (binaries, ports, processes),
``servers`` (the shared lifecycle), ``prometheus`` and ``alertmanager``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from exporter.demo.alertmanager import Alertmanager, AlertmanagerOptions, WebhookReceiver
from exporter.demo.processes import (
    ALERTMANAGER, PROMETHEUS, ROLLBACK_MATCHER, LocalStackError, binary_path,
)
from exporter.demo.prometheus import Prometheus, PrometheusOptions, ScrapeJob
from exporter.metrics_contract import ROLLBACK_ALERT_LABEL, ROLLBACK_ALERT_VALUE


class LocalStack:
    """Alertmanager and Prometheus for one exporter, on the rules of one profile.

    ``exporter_address`` is the ``host:port`` Prometheus scrapes; ``probe_addresses``, the
    verification probes' listeners it scrapes too (job ``kpr-probe``); ``webhook_url`` and
    ``token`` are where and how Alertmanager delivers rollback alerts.
    """

    def __init__(self, workdir: Path, *, exporter_address: str, webhook_url: str, token: str,
                 profile: str = "fast", ready_timeout: float = 30.0,
                 probe_addresses: tuple[str, ...] = ()) -> None:
        from exporter.rulegen import load_spec

        self.workdir = Path(workdir)
        self.profile = load_spec().profile(profile)
        self.exporter_address = exporter_address
        self.probe_addresses = probe_addresses
        self.webhook_url = webhook_url
        self.token = token
        self.ready_timeout = ready_timeout
        # Resolve both binaries first: a missing one fails before anything starts.
        self._binaries = (binary_path(PROMETHEUS), binary_path(ALERTMANAGER))
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url if self.prometheus else ""

    @property
    def alertmanager_url(self) -> str:
        return self.alertmanager.url if self.alertmanager else ""

    def write_rules(self) -> Path:
        """The profile's rule file, rendered into the work directory."""
        from exporter.rulegen import rule_file_text

        path = self.workdir / f"rules-{self.profile.name}.yaml"
        path.write_text(rule_file_text(self.profile.name), encoding="utf-8")
        return path

    async def start(self) -> None:
        from exporter.rulegen.profiles import format_duration

        self.workdir.mkdir(parents=True, exist_ok=True)
        rules = self.write_rules()
        p = self.profile
        jobs = [ScrapeJob("kpr-exporter", (self.exporter_address,))]
        if self.probe_addresses:
            jobs.append(ScrapeJob("kpr-probe", self.probe_addresses))
        prometheus_binary, alertmanager_binary = self._binaries
        self.alertmanager = Alertmanager(self.workdir / "alertmanager", AlertmanagerOptions(
            receiver=WebhookReceiver(self.webhook_url, token=self.token),
            group_wait=format_duration(p.group_wait),
            group_interval=format_duration(max(p.evaluation_interval, 5)),
            matchers=(ROLLBACK_MATCHER,)), binary=alertmanager_binary,
            ready_timeout=self.ready_timeout)
        self.prometheus = Prometheus(self.workdir / "prometheus", PrometheusOptions(
            rule_files=(rules,), jobs=tuple(jobs),
            alertmanagers=(), scrape_interval=format_duration(p.scrape_interval),
            evaluation_interval=format_duration(p.evaluation_interval)),
            binary=prometheus_binary, ready_timeout=self.ready_timeout)
        try:
            await self.alertmanager.start()
            self.prometheus.options.alertmanagers = (self.alertmanager.address,)
            await self.prometheus.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for server in (self.prometheus, self.alertmanager):
            if server is not None:
                await server.stop()

    async def rollback_alerts(self) -> list[dict[str, Any]]:
        """Prometheus's active alerts (pending and firing) labelled ``kpr_action="rollback"``."""
        if self.prometheus is None:
            raise LocalStackError("prometheus is not started")
        return [a for a in await self.prometheus.alerts()
                if a.get("labels", {}).get(ROLLBACK_ALERT_LABEL) == ROLLBACK_ALERT_VALUE]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
