"""Scrape every Cilium agent's ``/metrics`` and export its per-node datapath counters.

``AgentScraper`` fetches the agents concurrently (aiohttp), each with its own
timeout and body limit, and keeps per node the last good ``AgentSnapshot`` plus
whether the last attempt worked and why not. One agent failing never touches the
others. Targets come from an injected ``discover()`` coroutine: the static
``--agents.static`` list (``static_discovery``) or the Kubernetes side's agent pods.

``AgentCollector`` turns the last scrape into metrics; ``collect()`` does no I/O::

    kpr_node_drops_total{node="worker-1",datapath="ebpf",reason="Service backend not found",direction="EGRESS"} 47
    kpr_node_forwards_total{node="worker-1",datapath="ebpf",direction="INGRESS"} 1509230446
    kpr_agent_up{node="worker-1"} 1
    kpr_agent_scrape_duration_seconds{node="worker-1"} 0.012
    kpr_agent_scrape_errors_total{node="worker-1",kind="timeout"} 0

Counter values are the agent's own (its BPF metrics map survives agent restarts),
so ``rate()`` works on them; nothing is accumulated here. A node whose last
scrape failed shows ``kpr_agent_up 0`` and no drop/forward series: a stale copy
would read as "no drops", and no data must never look like zero.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter.roles import Clock, DatapathResolver, system_clock
from exporter.sources.agents_settings import AgentSettings
from exporter.sources.errors import SourceError

log = logging.getLogger(__name__)

#: Returns the agents to scrape now: node name -> metrics URL.
Discover = Callable[[], Awaitable[dict[str, str]]]
#: Receives each node's KPR feature gauge after a scrape (None: unknown).
KprGaugeSink = Callable[[str, float | None], None]

#: Values of the ``kind`` label of ``kpr_agent_scrape_errors_total`` (pre-initialised at 0).
ERROR_KINDS = ("timeout", "connect", "http", "oversize", "parse")

# Metric spellings, preferred first. The ``cilium_datapath_*`` names existed briefly on
# Cilium's main branch (PR #27370, reverted by #29226); accepting them costs nothing.
DROP_COUNT_NAMES = ("cilium_drop_count_total", "cilium_datapath_drop_count_total")
FORWARD_COUNT_NAMES = ("cilium_forward_count_total", "cilium_datapath_forward_count_total")
#: 0/1 gauge, Cilium >= 1.17 only.
KPR_FEATURE_NAME = "cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled"
VERSION_NAME = "cilium_version"

_WANTED = (*DROP_COUNT_NAMES, *FORWARD_COUNT_NAMES, KPR_FEATURE_NAME, VERSION_NAME)
_ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"


class AgentScrapeError(SourceError):
    """One agent could not be scraped; ``kind`` is one of ``ERROR_KINDS`` (or ``internal``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """What one good scrape of an agent said. Absent families are empty / None, not zero."""

    drops: dict[tuple[str, str], float]  # (reason, direction) -> dropped packets
    forwards: dict[str, float]  # direction -> forwarded packets
    kpr_enabled: float | None  # None: the agent has no feature gauge (Cilium < 1.17)
    version: str = ""  # the cilium_version label, "" when absent


def parse_agent_metrics(text: str) -> AgentSnapshot:
    """Read the families this project uses from an agent's exposition text.

    Only the sample lines of those families go through the parser: an agent's body
    has thousands of lines and parsing all of them costs ~25 µs a line on the event
    loop. Samples are matched by their own name, so a missing ``# TYPE`` line does
    not matter. Raises ``AgentScrapeError("parse")`` when a line read is not valid
    exposition, or when the body holds no ``cilium_`` sample at all (not an agent).
    """
    lines = text.split("\n")
    wanted = "\n".join(line for line in lines if line.startswith(_WANTED))
    if not wanted and not any(line.startswith("cilium_") for line in lines):
        raise AgentScrapeError("parse", "no Cilium agent metrics in the body")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        for family in text_string_to_metric_families(wanted):
            for sample in family.samples:
                if sample.name in _WANTED:
                    found.setdefault(sample.name, []).append((sample.labels, sample.value))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        why = str(exc)
        why = why if len(why) <= 160 else why[:160] + "..."  # the parser quotes whole lines
        raise AgentScrapeError("parse", f"not Prometheus text exposition: {why}") from exc

    drops: dict[tuple[str, str], float] = {}
    for labels, value in _first_spelling(found, DROP_COUNT_NAMES):
        key = (labels.get("reason", ""), labels.get("direction", "UNKNOWN"))
        drops[key] = drops.get(key, 0.0) + value  # extra labels, if any, are summed away
    forwards: dict[str, float] = {}
    for labels, value in _first_spelling(found, FORWARD_COUNT_NAMES):
        direction = labels.get("direction", "UNKNOWN")
        forwards[direction] = forwards.get(direction, 0.0) + value
    kpr = found.get(KPR_FEATURE_NAME)
    version = found.get(VERSION_NAME)
    return AgentSnapshot(
        drops=drops,
        forwards=forwards,
        kpr_enabled=max(v for _, v in kpr) if kpr else None,
        version=version[0][0].get("version", "") if version else "",
    )


def _first_spelling(
    found: Mapping[str, list[tuple[dict[str, str], float]]], names: tuple[str, ...]
) -> list[tuple[dict[str, str], float]]:
    for name in names:
        if name in found:
            return found[name]
    return []


@dataclass(frozen=True, slots=True)
class AgentState:
    """One node's scrape state. Published whole and never mutated afterwards."""

    node: str
    url: str
    up: bool
    duration_seconds: float  # of the last attempt, failed or not
    last_attempt: float  # wall clock
    last_success: float | None = None
    snapshot: AgentSnapshot | None = None  # the last good one (may predate a failure)
    error_kind: str = ""
    error: str = ""
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))


def static_discovery(targets: Mapping[str, str]) -> Discover:
    """A ``Discover`` that always answers the fixed ``node -> URL`` mapping."""
    fixed = dict(targets)

    async def discover() -> dict[str, str]:
        return dict(fixed)

    return discover


class AgentScraper:
    """Scrapes all agents once per ``scrape_once()``; ``run()`` repeats it every interval."""

    def __init__(
        self,
        *,
        settings: AgentSettings,
        discover: Discover,
        on_kpr_gauge: KprGaugeSink | None = None,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._discover = discover
        self._on_kpr_gauge = on_kpr_gauge
        self._session = session
        self._own_session = session is None
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._states: dict[str, AgentState] = {}
        self._targets: dict[str, str] = {}
        self._discovery_error = ""
        self._rounds = 0
        self._semaphore = asyncio.Semaphore(settings.concurrency)

    def states(self) -> Mapping[str, AgentState]:
        """Node -> state of its last scrape (a snapshot safe to read from any thread)."""
        return self._states

    def readiness(self) -> str | None:
        """None once a first round of scrapes has finished, else why not (for /readyz)."""
        return None if self._rounds else "no agent scrape has completed yet"

    async def run(self) -> None:
        """Scrape forever, one round per ``interval_seconds``; stops only when cancelled."""
        interval = self._settings.interval_seconds
        while True:
            started = self._monotonic()
            await self.scrape_once()
            await self._sleep(max(0.0, interval - (self._monotonic() - started)))

    async def scrape_once(self) -> None:
        """Scrape every current target concurrently, publish the states, hand off the gauges."""
        targets = await self._current_targets()
        results = await asyncio.gather(*(self._scrape(n, u) for n, u in targets.items()))
        previous, self._states = self._states, {s.node: s for s in results}
        self._rounds += 1
        for node in previous.keys() - self._states.keys():
            log.info("agent target removed", extra={"kv": {"node": node, "url": previous[node].url}})
            self._notify(node, None)
        for state in results:
            snapshot = state.snapshot if state.up else None
            self._notify(state.node, snapshot.kpr_enabled if snapshot else None)

    async def aclose(self) -> None:
        """Close the HTTP session if this scraper created it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AgentScraper:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- internals --------------------------------------------------------------------

    async def _current_targets(self) -> dict[str, str]:
        try:
            targets = dict(await self._discover())
        except Exception as exc:  # the Kubernetes side may fail; keep the last known list
            error = f"{type(exc).__name__}: {exc}"
            if error != self._discovery_error:
                log.warning(
                    "agent discovery failed; scraping the last known agents",
                    extra={"kv": {"error": error, "agents": len(self._targets)}},
                )
            self._discovery_error = error
            return self._targets
        if self._discovery_error:
            log.info("agent discovery recovered", extra={"kv": {"agents": len(targets)}})
            self._discovery_error = ""
        self._targets = targets
        return targets

    async def _scrape(self, node: str, url: str) -> AgentState:
        previous = self._states.get(node)
        async with self._semaphore:
            started = self._monotonic()
            try:
                snapshot = parse_agent_metrics(await self._fetch(url))
                error: AgentScrapeError | None = None
            except AgentScrapeError as exc:
                error = exc
            except Exception as exc:  # never let one agent end the round
                error = AgentScrapeError("internal", f"{type(exc).__name__}: {exc}")
            duration = self._monotonic() - started
        now = self._clock()
        errors = dict(previous.errors) if previous else dict.fromkeys(ERROR_KINDS, 0)
        if error is None:
            state = AgentState(node, url, True, duration, now, now, snapshot, errors=errors)
        else:
            errors[error.kind] = errors.get(error.kind, 0) + 1
            state = AgentState(
                node, url, False, duration, now,
                previous.last_success if previous else None,
                previous.snapshot if previous else None,
                error.kind, str(error), errors,
            )
        self._log_change(previous, state)
        return state

    async def _fetch(self, url: str) -> str:
        limit = self._settings.max_body_bytes
        timeout = self._settings.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                async with self._client().get(url, headers={"Accept": _ACCEPT}) as response:
                    if response.status != 200:
                        raise AgentScrapeError(
                            "http", f"HTTP {response.status} {response.reason or ''}".rstrip()
                        )
                    if response.content_length is not None and response.content_length > limit:
                        raise _oversize(limit, f"Content-Length {response.content_length}")
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(1 << 16):
                        body += chunk
                        if len(body) > limit:
                            raise _oversize(limit, "body")
                    charset = response.charset or "utf-8"
        except TimeoutError as exc:
            raise AgentScrapeError("timeout", f"no complete answer within {timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise AgentScrapeError("connect", f"{type(exc).__name__}: {exc}") from exc
        try:
            return body.decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise AgentScrapeError("parse", f"body is not {charset} text: {exc}") from exc

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._settings.concurrency),
                timeout=aiohttp.ClientTimeout(total=None),  # asyncio.timeout bounds each request
            )
        return self._session

    def _log_change(self, previous: AgentState | None, state: AgentState) -> None:
        if previous is not None and (previous.up, previous.error_kind) == (
            state.up, state.error_kind
        ):
            return
        if state.up:
            log.info(
                "agent scrape recovered" if previous else "agent scrape ok",
                extra={"kv": {"node": state.node, "url": state.url}},
            )
        else:
            log.warning(
                "agent scrape failed",
                extra={"kv": {"node": state.node, "url": state.url,
                              "kind": state.error_kind, "error": state.error}},
            )

    def _notify(self, node: str, value: float | None) -> None:
        if self._on_kpr_gauge is None:
            return
        try:
            self._on_kpr_gauge(node, value)
        except Exception:
            log.exception("KPR feature gauge consumer failed", extra={"kv": {"node": node}})


def _oversize(limit: int, what: str) -> AgentScrapeError:
    return AgentScrapeError("oversize", f"{what} exceeds the limit of {limit} bytes")


class AgentStateSource(Protocol):
    """Anything that knows the last scrape state per node (the scraper, or a test double)."""

    def states(self) -> Mapping[str, AgentState]: ...


class AgentCollector:
    """prometheus_client collector over the last scrape of each agent (no I/O in collect)."""

    def __init__(self, *, source: AgentStateSource, resolver: DatapathResolver) -> None:
        self._source = source
        self._resolver = resolver

    def describe(self) -> Iterator[Metric]:
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        drops, forwards, up, duration, errors = _families()
        for node, state in self._source.states().items():
            up.add_metric([node], 1.0 if state.up else 0.0)
            duration.add_metric([node], state.duration_seconds)
            for kind, count in state.errors.items():
                errors.add_metric([node, kind], count)
            if not state.up or state.snapshot is None:
                continue
            datapath = self._resolver.datapath(node)
            for (reason, direction), value in state.snapshot.drops.items():
                drops.add_metric([node, datapath, reason, direction], value)
            for direction, value in state.snapshot.forwards.items():
                forwards.add_metric([node, datapath, direction], value)
        yield from (drops, forwards, up, duration, errors)


def _families() -> tuple[
    CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
    CounterMetricFamily,
]:
    return (
        CounterMetricFamily(
            "kpr_node_drops_total",
            "Packets the node's Cilium datapath dropped, as its agent reports them.",
            labels=("node", "datapath", "reason", "direction"),
        ),
        CounterMetricFamily(
            "kpr_node_forwards_total",
            "Packets the node's Cilium datapath forwarded, as its agent reports them.",
            labels=("node", "datapath", "direction"),
        ),
        GaugeMetricFamily(
            "kpr_agent_up", "1 when the last scrape of the node's Cilium agent worked.",
            labels=("node",),
        ),
        GaugeMetricFamily(
            "kpr_agent_scrape_duration_seconds",
            "Duration of the last scrape of the node's Cilium agent, failed or not.",
            labels=("node",),
        ),
        CounterMetricFamily(
            "kpr_agent_scrape_errors_total",
            "Failed scrapes of the node's Cilium agent, by kind of failure.",
            labels=("node", "kind"),
        ),
    )
