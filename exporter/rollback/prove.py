"""Proof on the datapath that a node is back on kube-proxy, not just configured to be.

Configuration and pod readiness prove little: kubeadm's kube-proxy DaemonSet has no
readiness probe, and an agent keeps what it started with until it restarts. So a node
counts as restored only when

* ``kube-proxy-health``: kube-proxy's own health endpoint on the node
  (``http://<node address>:10256/healthz``, port configurable) answers 200 and its
  ``lastUpdated`` is fresh — compared with the ``currentTime`` of the same answer, so the
  node's clock and ours need not agree;
* ``kpr-off``: the restarted agent's feature gauge
  ``cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled`` reads 0. Agents
  before Cilium 1.17 do not export it: the proof is then "not available" (``ok`` None)
  and configuration decides, which the plan says.

``kpr_gauge`` reads that gauge once; the migration's proof that a node runs the
replacement (:mod:`exporter.migrate.prove`) asks it the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

import aiohttp

from exporter.sources.agent_text import AgentScrapeError, ExpositionFilter

KUBE_PROXY_HEALTH: Final = "kube-proxy-health"
KPR_OFF: Final = "kpr-off"
NO_GAUGE: Final = "the agent exports no KPR feature gauge (Cilium < 1.17): configuration decides"
_GO_TIME: Final = re.compile(
    r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?")
_BODY_LIMIT: Final = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Proof:
    node: str
    check: str
    ok: bool | None  # None: the node cannot tell (no feature gauge); configuration decides
    detail: str


@dataclass(frozen=True, slots=True)
class GaugeReading:
    """The agent's KPR feature gauge: ``enabled`` (None: the agent exports none), or
    ``problem``, why it could not be read (unreachable, an error status, unreadable)."""

    enabled: bool | None
    problem: str = ""


def parse_go_time(text: str) -> float | None:
    """Seconds since the epoch from Go's ``time.Time`` text or RFC 3339; None if unreadable."""
    match = _GO_TIME.match((text or "").strip())
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    stamp = datetime.fromisoformat(f"{day}T{clock}{zone}")
    return stamp.astimezone(timezone.utc).timestamp() + float(fraction or 0.0)


class DatapathProver:
    """Asks the node itself; every answer, including "unreachable", is a Proof."""

    def __init__(self, session: aiohttp.ClientSession, *, health_port: int = 10256,
                 max_age_seconds: float = 60.0, timeout_seconds: float = 5.0,
                 clock: Callable[[], float]) -> None:
        self._session = session
        self._port = health_port
        self._max_age = max_age_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock

    async def kube_proxy(self, node: str, address: str) -> Proof:
        host = f"[{address}]" if ":" in address else address
        url = f"http://{host}:{self._port}/healthz"
        try:
            async with self._session.get(url, timeout=self._timeout) as resp:
                status = resp.status
                body = await resp.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return Proof(node, KUBE_PROXY_HEALTH, False, f"{url} unreachable: {type(exc).__name__}: {exc}")
        if status != 200:
            return Proof(node, KUBE_PROXY_HEALTH, False, f"{url} answered {status}: rules not synced")
        return self._fresh(node, url, body if isinstance(body, dict) else {})

    def _fresh(self, node: str, url: str, body: dict) -> Proof:
        updated = parse_go_time(str(body.get("lastUpdated", "")))
        if updated is None:
            return Proof(node, KUBE_PROXY_HEALTH, False, f"{url}: no readable lastUpdated")
        now = parse_go_time(str(body.get("currentTime", "")))
        age = (now if now is not None else self._clock()) - updated
        if age > self._max_age:
            return Proof(node, KUBE_PROXY_HEALTH, False,
                         f"{url}: rules last synced {age:.0f} s ago (limit {self._max_age:.0f} s)")
        return Proof(node, KUBE_PROXY_HEALTH, True, f"{url}: rules synced {max(age, 0.0):.0f} s ago")

    async def kpr_gauge(self, metrics_url: str) -> GaugeReading:
        """The agent's ``cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled``
        from its ``/metrics`` at ``metrics_url`` (the body read in chunks, 16 MiB at most)."""
        reader = ExpositionFilter(max_series=4096)
        try:
            async with self._session.get(metrics_url, timeout=self._timeout) as resp:
                if resp.status != 200:
                    return GaugeReading(None, f"{metrics_url} answered {resp.status}")
                read = 0
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    read += len(chunk)
                    if read > _BODY_LIMIT:
                        return GaugeReading(None, f"{metrics_url}: body over 16 MiB")
                    reader.feed(chunk)
            return GaugeReading(reader.finish().kpr_enabled)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return GaugeReading(None, f"{metrics_url} unreachable: {type(exc).__name__}: {exc}")
        except AgentScrapeError as exc:
            return GaugeReading(None, f"{metrics_url}: unreadable metrics ({exc})")

    async def kpr_off(self, node: str, metrics_url: str) -> Proof:
        gauge = await self.kpr_gauge(metrics_url)
        if gauge.problem:
            return Proof(node, KPR_OFF, False, gauge.problem)
        if gauge.enabled is None:
            return Proof(node, KPR_OFF, None, NO_GAUGE)
        if gauge.enabled:
            return Proof(node, KPR_OFF, False, "the agent still reports kube-proxy replacement on")
        return Proof(node, KPR_OFF, True, "the agent reports kube-proxy replacement off")
