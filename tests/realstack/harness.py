"""Helpers that run the real Prometheus and Alertmanager binaries on loopback for tests.

Not tests themselves: ``Prometheus`` and ``Alertmanager`` start Debian's binaries with a
temporary data directory on a free 127.0.0.1 port, wait until the readiness endpoint answers
(polling against a deadline), offer the HTTP API calls the tests need, and stop the process
they started by its pid. Both are async context managers, so a test can serve scrape targets
or webhook receivers from the same event loop while it waits.

``require_binary`` decides what a missing binary means: a skip with the reason, or a failure
when ``KPR_REQUIRE_REAL_COMPONENTS=1`` (as ``make test`` and CI set it).
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
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

REQUIRE_ENV = "KPR_REQUIRE_REAL_COMPONENTS"
PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
ALERTMANAGER = "prometheus-alertmanager"
AMTOOL = "amtool"

T = TypeVar("T")


class HarnessError(RuntimeError):
    """A real component did not start, did not become ready, or answered with an error."""


def components_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


def find_binary(name: str) -> str | None:
    """The path of ``name`` on PATH or in the Debian locations, or None."""
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_binary(name: str) -> str:
    """The binary's path; skips the test when missing, or fails it when components are required."""
    path = find_binary(name)
    if path is not None:
        return path
    reason = (f"{name} is not installed (Debian packages prometheus / prometheus-alertmanager; "
              "`make system-deps` installs them)")
    if components_required():
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires the real components")
    pytest.skip(reason)
    raise AssertionError("unreachable")  # pragma: no cover


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the binaries cannot report port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(check: Callable[[], Awaitable[T | None]], *, timeout: float, what: str,
                     interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something other than None (or False), or fail at the deadline."""
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
            raise HarnessError(f"timed out after {timeout:g}s waiting for {what}{suffix}")
        await asyncio.sleep(interval)


@dataclass
class _Process:
    """One started binary: its Popen handle and log file."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("wb")
        try:
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        finally:
            log.close()

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


class _Server:
    """Shared lifecycle: start on a free port, poll /-/ready, JSON helpers, stop by pid."""

    name = "server"
    binary_name = ""

    def __init__(self, workdir: Path, *, binary: str | None, ready_timeout: float) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or require_binary(self.binary_name)
        self.ready_timeout = ready_timeout
        self.port = 0
        self._process: _Process | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _argv(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def write_config(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def start(self, attempts: int = 3) -> None:
        """Start and wait for readiness; retries on a fresh port if the port was taken meanwhile."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        for attempt in range(attempts):
            self.port = free_port()
            self.write_config()
            self._process = _Process(self.name, self._argv(), self.workdir / f"{self.name}.log")
            self._process.start()
            try:
                await wait_until(self._ready, timeout=self.ready_timeout, what=f"{self.name} ready")
                return
            except HarnessError as err:
                log = self._process.log_tail()
                await self._process.stop()
                if "address already in use" in log and attempt + 1 < attempts:
                    continue
                await self.close_session()
                raise HarnessError(f"{self.name} did not start: {err}\n--- log ---\n{log}") from err

    async def _ready(self) -> bool:
        assert self._process is not None and self._session is not None
        code = self._process.exited()
        if code is not None:
            raise HarnessError(f"{self.name} exited with code {code}")
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
        assert self._session is not None, f"{self.name} is not started"
        async with self._session.get(f"{self.url}{path}", params=params) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise HarnessError(f"GET {path} -> {response.status}: {body}")
            return body

    async def post_json(self, path: str, payload: Any) -> int:
        assert self._session is not None, f"{self.name} is not started"
        async with self._session.post(f"{self.url}{path}", json=payload) as response:
            if response.status >= 400:
                raise HarnessError(f"POST {path} -> {response.status}: {await response.text()}")
            return response.status

    async def __aenter__(self) -> _Server:
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
    """What the test Prometheus evaluates and scrapes."""

    rule_files: Sequence[Path] = ()
    jobs: Sequence[ScrapeJob] = ()
    alertmanagers: Sequence[str] = ()  # host:port
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    external_labels: Mapping[str, str] = field(default_factory=dict)


class Prometheus(_Server):
    """Debian's prometheus 2.42 on 127.0.0.1 with a temporary TSDB."""

    name = "prometheus"
    binary_name = PROMETHEUS

    def __init__(self, workdir: Path, options: PrometheusOptions | None = None, *,
                 binary: str | None = None, ready_timeout: float = 30.0) -> None:
        super().__init__(workdir, binary=binary, ready_timeout=ready_timeout)
        self.options = options or PrometheusOptions()
        self.config_path = self.workdir / "prometheus.yml"

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

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False), encoding="utf-8")

    def _argv(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address={self.address}",
            f"--web.external-url={self.url}/",
            "--web.enable-lifecycle",
        ]

    async def _api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        body = await self.get_json(f"/api/v1/{path}", params)
        if body.get("status") != "success":
            raise HarnessError(f"/api/v1/{path}: {body}")
        return body["data"]

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result vector (each item has ``metric`` and ``value``)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self._api("query", params)
        return list(data["result"])

    async def query_value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when the result is empty."""
        result = await self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise HarnessError(f"{expr} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    async def rule_groups(self, kind: str | None = None) -> list[dict[str, Any]]:
        """``/api/v1/rules`` groups (``kind`` = ``alert`` or ``record`` filters)."""
        data = await self._api("rules", {"type": kind} if kind else None)
        return list(data["groups"])

    async def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) from ``/api/v1/alerts``."""
        data = await self._api("alerts")
        return list(data["alerts"])

    async def targets(self) -> list[dict[str, Any]]:
        data = await self._api("targets", {"state": "active"})
        return list(data["activeTargets"])

    async def reload(self) -> None:
        self.write_config()
        await self.post_json("/-/reload", None)

    async def wait_for_targets_up(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Until every configured target has been scraped successfully."""
        expected = sum(len(j.targets) for j in self.options.jobs)

        async def check() -> list[dict[str, Any]] | None:
            targets = await self.targets()
            up = [t for t in targets if t.get("health") == "up"]
            return targets if expected and len(up) == expected else None

        return await wait_until(check, timeout=timeout, what="every scrape target up")

    async def wait_for_rules_evaluated(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Until every rule has been evaluated at least once; raises on any rule error."""

        async def check() -> list[dict[str, Any]] | None:
            groups = await self.rule_groups()
            rules = [r for g in groups for r in g["rules"]]
            broken = [r for r in rules if r.get("health") == "err" or r.get("lastError")]
            if broken:
                details = "; ".join(f"{r['name']}: {r.get('lastError')}" for r in broken)
                raise AssertionError(f"rules failed to evaluate: {details}")
            done = rules and all(r.get("health") == "ok" for r in rules)
            return groups if done else None

        return await wait_until(check, timeout=timeout, what="every rule evaluated")

    async def wait_for_alert(self, name: str, state: str = "firing", timeout: float = 60.0,
                             labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            for alert in await self.alerts():
                lab = alert.get("labels", {})
                if lab.get("alertname") == name and alert.get("state") == state and all(
                        lab.get(k) == v for k, v in (labels or {}).items()):
                    return alert
            return None

        return await wait_until(check, timeout=timeout, what=f"alert {name} {state}", interval=0.2)


@dataclass
class WebhookReceiver:
    """Where Alertmanager delivers: the receiver's URL and the bearer token it must send."""

    url: str
    token: str = ""
    token_file: Path | None = None  # use authorization.credentials_file instead of credentials
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
    matchers: Sequence[str] = ()  # e.g. 'kpr_action="rollback"'; empty routes everything


class Alertmanager(_Server):
    """Debian's prometheus-alertmanager 0.25 with clustering off and a temporary store.

    The configuration uses only fields 0.25 accepts: no ``url_file``, ``timeout`` or
    ``http_headers`` on the webhook; the bearer token goes in ``http_config.authorization``.
    """

    name = "alertmanager"
    binary_name = ALERTMANAGER

    def __init__(self, workdir: Path, options: AlertmanagerOptions, *, binary: str | None = None,
                 ready_timeout: float = 30.0) -> None:
        super().__init__(workdir, binary=binary, ready_timeout=ready_timeout)
        self.options = options
        self.config_path = self.workdir / "alertmanager.yml"

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

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False), encoding="utf-8")

    def _argv(self) -> list[str]:
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


def check_alertmanager_config(path: Path, *, amtool: str | None = None) -> subprocess.CompletedProcess[str]:
    """``amtool check-config`` on a written configuration (never raises; read ``returncode``)."""
    binary = amtool or require_binary(AMTOOL)
    return subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True,
                          timeout=30, check=False)


def promtool(*args: str, binary: str | None = None, cwd: Path | None = None,
             timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run promtool (never raises; read ``returncode``, ``stdout``, ``stderr``)."""
    path = binary or require_binary(PROMTOOL)
    return subprocess.run([path, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False)
