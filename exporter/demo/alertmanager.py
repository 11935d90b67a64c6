"""Debian's prometheus-alertmanager 0.25 on loopback, delivering to one webhook receiver.

Configuration uses only what Alertmanager 0.25 accepts: no webhook ``url_file``, ``timeout``
or ``http_headers``; the bearer token goes in ``http_config.authorization``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.demo.processes import ALERTMANAGER
from exporter.demo.servers import LocalServer


@dataclass
class WebhookReceiver:
    """Where Alertmanager delivers: the receiver's URL and the bearer token it must send."""

    url: str
    token: str = ""
    token_file: Path | None = None  # authorization.credentials_file instead of credentials
    send_resolved: bool = True
    max_alerts: int = 0


@dataclass
class AlertmanagerOptions:
    receiver: WebhookReceiver
    receiver_name: str = "kpr-exporter"
    group_by: Sequence[str] = ("alertname", "namespace", "service", "node")
    group_wait: str = "1s"
    group_interval: str = "5s"
    repeat_interval: str = "1h"
    matchers: Sequence[str] = ()  # e.g. ROLLBACK_MATCHER; empty routes everything to the receiver


class Alertmanager(LocalServer):
    """Debian's prometheus-alertmanager 0.25 with clustering off and its own storage directory."""

    name = "alertmanager"
    binary_name = ALERTMANAGER

    def __init__(self, workdir: Path, options: AlertmanagerOptions, *, binary: str | None = None,
                 ready_timeout: float = 30.0) -> None:
        super().__init__(workdir, binary=binary, ready_timeout=ready_timeout)
        self.options = options

    def config(self) -> dict[str, Any]:
        o, r = self.options, self.options.receiver
        authorization: dict[str, str] = {"type": "Bearer"}
        if r.token_file is not None:
            authorization["credentials_file"] = str(r.token_file)
        elif r.token:
            authorization["credentials"] = r.token
        webhook: dict[str, Any] = {"url": r.url, "send_resolved": r.send_resolved,
                                   "max_alerts": r.max_alerts}
        if len(authorization) > 1:
            webhook["http_config"] = {"authorization": authorization}
        route: dict[str, Any] = {
            "receiver": "blackhole" if o.matchers else o.receiver_name,
            "group_by": list(o.group_by),
            "group_wait": o.group_wait,
            "group_interval": o.group_interval,
            "repeat_interval": o.repeat_interval,
        }
        receivers: list[dict[str, Any]] = [{"name": o.receiver_name, "webhook_configs": [webhook]}]
        if o.matchers:
            route["routes"] = [{"receiver": o.receiver_name, "matchers": list(o.matchers)}]
            receivers.append({"name": "blackhole"})
        return {"route": route, "receivers": receivers}

    def argv(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            f"--web.external-url={self.url}/",
            "--cluster.listen-address=",
        ]

    async def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """``POST /api/v2/alerts`` (labels, annotations, optional startsAt/endsAt/generatorURL)."""
        await self.post_json("/api/v2/alerts", list(alerts))

    async def alerts(self) -> list[dict[str, Any]]:
        return list(await self.get_json("/api/v2/alerts"))

    async def status(self) -> dict[str, Any]:
        return dict(await self.get_json("/api/v2/status"))
