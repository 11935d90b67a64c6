"""``LocalServer``: the lifecycle both local binaries share.

Start on a free 127.0.0.1 port with a directory of its own for configuration and data,
wait until ``/-/ready`` answers (retrying on a fresh port when the port was taken
meanwhile), offer JSON GET/POST helpers, stop the process by its pid. An async context
manager. ``Prometheus`` and ``Alertmanager`` fill in the configuration and command line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import aiohttp
import yaml

from exporter.demo.processes import LocalStackError, ManagedProcess, binary_path, free_port, wait_until


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
