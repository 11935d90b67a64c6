"""The real Prometheus and Alertmanager binaries on loopback, for the demo and the real-stack tests.

``Prometheus`` and ``Alertmanager`` each start one binary on a free 127.0.0.1 port with
their own directory for configuration and data, wait until ``/-/ready`` answers (polling
against a deadline), offer the few HTTP API calls their users need, and stop the process
they started by its pid (SIGTERM, then SIGKILL). Both are async context managers.

``LocalStack`` wires the pair to one exporter the way a cluster would: Prometheus scrapes
the exporter at the profile's scrape interval and evaluates the rules rendered from that
profile (``fast`` by default); Alertmanager routes ``kpr_action="rollback"`` alerts to the
exporter's webhook with the bearer token. Configuration uses only what Prometheus 2.42 and
Alertmanager 0.25 (Debian's packages) accept: no webhook ``url_file``, ``timeout`` or
``http_headers``; the token goes in ``http_config.authorization``.

A binary that is not installed raises ``MissingBinaryError`` naming the Debian package.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import aiohttp
import yaml

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
ALERTMANAGER = "prometheus-alertmanager"
AMTOOL = "amtool"

# binary -> the Debian package that ships it
DEBIAN_PACKAGES = {PROMETHEUS: "prometheus", PROMTOOL: "prometheus",
                   ALERTMANAGER: "prometheus-alertmanager", AMTOOL: "prometheus-alertmanager"}

ROLLBACK_MATCHER = 'kpr_action="rollback"'

T = TypeVar("T")


class LocalStackError(RuntimeError):
    """A local component did not start, did not become ready, or answered with an error."""


class MissingBinaryError(LocalStackError):
    """A binary is not installed; the message says which Debian package ships it."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.package = DEBIAN_PACKAGES.get(binary, binary)
        super().__init__(f"{binary} is not installed (Debian package {self.package}: "
                         f"apt-get install {self.package})")


def find_binary(name: str) -> str | None:
    """The path of ``name`` on PATH or in the usual Debian locations, or None."""
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def binary_path(name: str) -> str:
    """The path of ``name``; raises ``MissingBinaryError`` when it is not installed."""
    path = find_binary(name)
    if path is None:
        raise MissingBinaryError(name)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the binaries cannot report port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(check: Callable[[], Awaitable[T | None]], *, timeout: float, what: str,
                     interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something other than None or False; raise at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = await check()
            if result is not None and result is not False:
                return result
        except (aiohttp.ClientError, OSError) as err:  # not listening yet, connection reset
            last_error = err
        if time.monotonic() >= deadline:
            suffix = f" (last error: {last_error})" if last_error else ""
            raise LocalStackError(f"timed out after {timeout:g}s waiting for {what}{suffix}")
        await asyncio.sleep(interval)


@dataclass
class ManagedProcess:
    """One started binary: its Popen handle and the file its output goes to."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # A session of its own: Ctrl-C in the terminal reaches only our process, which then
        # still has its Prometheus (e.g. for the demo's report) and stops it by pid.
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def exited(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to our own pid, then SIGKILL to it if it does not exit in time."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            await asyncio.to_thread(self.popen.wait, timeout)


class LocalServer:
    """Shared lifecycle: start on a free port, poll /-/ready, JSON helpers, stop by pid."""

    name = "server"
    binary_name = ""

    def __init__(self, workdir: Path, *, binary: str | None = None,
                 ready_timeout: float = 30.0) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or self.locate()
        self.ready_timeout = ready_timeout
        self.port = 0
        self._process: ManagedProcess | None = None
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def locate(cls) -> str:
        """The binary's path when none is given; raises ``MissingBinaryError`` if it is missing."""
        return binary_path(cls.binary_name)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def argv(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def config(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.name}.yml"

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False), encoding="utf-8")

    async def start(self, attempts: int = 3) -> None:
        """Start and wait for readiness; retries on a fresh port if the port was taken meanwhile."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        for attempt in range(attempts):
            self.port = free_port()
            self.write_config()
            self._process = ManagedProcess(self.name, self.argv(), self.workdir / f"{self.name}.log")
            try:
                self._process.start()
            except OSError as err:
                await self.close_session()
                raise LocalStackError(f"{self.name} ({self.binary}) cannot start: {err}") from err
            try:
                await wait_until(self._ready, timeout=self.ready_timeout, what=f"{self.name} ready")
                return
            except LocalStackError as err:
                log = self._process.log_tail()
                await self._process.stop()
                if "address already in use" in log and attempt + 1 < attempts:
                    continue
                await self.close_session()
                raise LocalStackError(f"{self.name} did not start: {err}\n--- log ---\n{log}") from err

    async def _ready(self) -> bool:
        assert self._process is not None and self._session is not None
        code = self._process.exited()
        if code is not None:
            raise LocalStackError(f"{self.name} exited with code {code}")
        async with self._session.get(f"{self.url}/-/ready") as response:
            return response.status == 200

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop()
        await self.close_session()

    async def close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def log_tail(self, lines: int = 30) -> str:
        return self._process.log_tail(lines) if self._process else ""

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        if self._session is None:
            raise LocalStackError(f"{self.name} is not started")
        try:
            async with self._session.get(f"{self.url}{path}", params=params) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
            raise LocalStackError(f"GET {self.url}{path}: {err or type(err).__name__}") from err
        if status >= 400:
            raise LocalStackError(f"GET {path} -> {status}: {body}")
        return body

    async def post_json(self, path: str, payload: Any) -> int:
        if self._session is None:
            raise LocalStackError(f"{self.name} is not started")
        try:
            async with self._session.post(f"{self.url}{path}", json=payload) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise LocalStackError(f"POST {self.url}{path}: {err or type(err).__name__}") from err
        if status >= 400:
            raise LocalStackError(f"POST {path} -> {status}: {text}")
        return status

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


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


class LocalStack:
    """Alertmanager and Prometheus for one exporter, on the rules of one profile.

    ``exporter_address`` is the ``host:port`` Prometheus scrapes; ``webhook_url`` and
    ``token`` are where and how Alertmanager delivers rollback alerts.
    """

    def __init__(self, workdir: Path, *, exporter_address: str, webhook_url: str, token: str,
                 profile: str = "fast", ready_timeout: float = 30.0) -> None:
        from exporter.rulegen import load_spec

        self.workdir = Path(workdir)
        self.profile = load_spec().profile(profile)
        self.exporter_address = exporter_address
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
        prometheus_binary, alertmanager_binary = self._binaries
        self.alertmanager = Alertmanager(self.workdir / "alertmanager", AlertmanagerOptions(
            receiver=WebhookReceiver(self.webhook_url, token=self.token),
            group_wait=format_duration(p.group_wait),
            group_interval=format_duration(max(p.evaluation_interval, 5)),
            matchers=(ROLLBACK_MATCHER,)), binary=alertmanager_binary,
            ready_timeout=self.ready_timeout)
        self.prometheus = Prometheus(self.workdir / "prometheus", PrometheusOptions(
            rule_files=(rules,), jobs=(ScrapeJob("kpr-exporter", (self.exporter_address,)),),
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
                if a.get("labels", {}).get("kpr_action") == "rollback"]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
