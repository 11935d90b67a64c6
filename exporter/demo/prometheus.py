"""Debian's prometheus 2.42 on loopback: its configuration, command line and HTTP API calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from exporter.demo.processes import PROMETHEUS, LocalStackError
from exporter.demo.servers import LocalServer


@dataclass(frozen=True)
class ScrapeJob:
    """One scrape job: the targets' ``host:port`` addresses and their metrics path."""

    name: str
    targets: tuple[str, ...]
    metrics_path: str = "/metrics"

    @classmethod
    def from_urls(cls, name: str, urls: Iterable[str]) -> ScrapeJob:
        """From ``http://127.0.0.1:1234/metrics``-style URLs (all with the same path)."""
        parts = [urlsplit(u) for u in urls]
        paths = {p.path or "/metrics" for p in parts}
        if len(paths) != 1:
            raise ValueError(f"job {name}: all URLs need the same path, got {sorted(paths)}")
        return cls(name, tuple(p.netloc for p in parts), paths.pop())


@dataclass
class PrometheusOptions:
    """What the local Prometheus evaluates and scrapes."""

    rule_files: Sequence[Path] = ()
    jobs: Sequence[ScrapeJob] = ()
    alertmanagers: Sequence[str] = ()  # host:port
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    external_labels: Mapping[str, str] = field(default_factory=dict)
    retention: str = "1d"


class Prometheus(LocalServer):
    """Debian's prometheus 2.42 on 127.0.0.1 with its own TSDB directory."""

    name = "prometheus"
    binary_name = PROMETHEUS

    def __init__(self, workdir: Path, options: PrometheusOptions | None = None, *,
                 binary: str | None = None, ready_timeout: float = 30.0) -> None:
        super().__init__(workdir, binary=binary, ready_timeout=ready_timeout)
        self.options = options or PrometheusOptions()

    def config(self) -> dict[str, Any]:
        o = self.options
        doc: dict[str, Any] = {
            "global": {
                "scrape_interval": o.scrape_interval,
                "scrape_timeout": o.scrape_interval,
                "evaluation_interval": o.evaluation_interval,
            },
            "rule_files": [str(Path(f).resolve()) for f in o.rule_files],
            "scrape_configs": [
                {"job_name": j.name, "metrics_path": j.metrics_path,
                 "static_configs": [{"targets": list(j.targets)}]}
                for j in o.jobs
            ],
        }
        if o.external_labels:
            doc["global"]["external_labels"] = dict(o.external_labels)
        if o.alertmanagers:
            doc["alerting"] = {"alertmanagers": [
                {"api_version": "v2", "static_configs": [{"targets": list(o.alertmanagers)}]}
            ]}
        return doc

    def argv(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--storage.tsdb.retention.time={self.options.retention}",
            f"--web.listen-address={self.address}",
            f"--web.external-url={self.url}/",
            "--web.enable-lifecycle",
        ]

    async def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """``/api/v1/<path>``'s ``data``; raises LocalStackError unless the status is success."""
        body = await self.get_json(f"/api/v1/{path}", params)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise LocalStackError(f"/api/v1/{path}: {body}")
        return body["data"]

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result vector (each item has ``metric`` and ``value``)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self.api("query", params)
        return list(data["result"])

    async def rule_groups(self, kind: str | None = None) -> list[dict[str, Any]]:
        """``/api/v1/rules`` groups (``kind`` = ``alert`` or ``record`` filters)."""
        data = await self.api("rules", {"type": kind} if kind else None)
        return list(data["groups"])

    async def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) from ``/api/v1/alerts``."""
        data = await self.api("alerts")
        return list(data["alerts"])

    async def targets(self) -> list[dict[str, Any]]:
        data = await self.api("targets", {"state": "active"})
        return list(data["activeTargets"])
