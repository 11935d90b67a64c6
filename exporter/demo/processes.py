"""Real binaries on loopback: where they are, which package ships them, and their processes.

``find_binary`` looks on PATH and in the usual Debian locations; ``binary_path`` raises
``MissingBinaryError`` naming the Debian package when one is not installed. ``free_port``
picks a free 127.0.0.1 port, ``wait_until`` polls against a deadline, and
``ManagedProcess`` starts one binary in a session of its own and stops it by its pid
(SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp

from exporter.metrics_contract import ROLLBACK_ALERT_MATCHER

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
ALERTMANAGER = "prometheus-alertmanager"
AMTOOL = "amtool"

# binary -> the Debian package that ships it
DEBIAN_PACKAGES = {PROMETHEUS: "prometheus", PROMTOOL: "prometheus",
                   ALERTMANAGER: "prometheus-alertmanager", AMTOOL: "prometheus-alertmanager"}

ROLLBACK_MATCHER = ROLLBACK_ALERT_MATCHER

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
