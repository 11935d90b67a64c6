"""Scrape every Cilium agent's ``/metrics`` and export its per-node datapath counters.

``AgentScraper`` fetches the agents concurrently (aiohttp), each with its own
timeout and body limit, and keeps per node the last good ``AgentSnapshot`` plus
whether the last attempt worked and why not. One agent failing never touches the
others. Targets come from an injected ``discover()`` coroutine: the static
``--agents.static`` list (``static_discovery``) or the Kubernetes side's agent pods.

A body is never held whole: each chunk, as it arrives, goes to an ``ExpositionFilter``
(``exporter.sources.agent_text``) in a worker thread, which keeps only the samples of
the families read, up to ``max_series`` series. The body limit counts the bytes as
they come. The event loop only moves chunks, so a big or hostile body costs it little,
and a failed scrape leaves nothing behind: the error is kept as its kind and text,
never as an exception whose traceback would hold the scrape's frames.

``AgentCollector`` (``exporter.sources.agent_collector``) turns the last scrape into
metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import aiohttp

from exporter.roles import Clock, system_clock
from exporter.sources.agent_collector import (
    ERROR_KINDS,
    AgentCollector,
    AgentState,
    AgentStateSource,
)
from exporter.sources.agent_text import (
    DROP_COUNT_NAMES,
    FORWARD_COUNT_NAMES,
    KPR_FEATURE_NAME,
    VERSION_NAME,
    AgentScrapeError,
    AgentSnapshot,
    ExpositionFilter,
    Families,
    ScrapeError,
    parse_agent_metrics,
)
from exporter.sources.agents_settings import AgentSettings

if TYPE_CHECKING:
    from exporter.sources.kube_proxy_settings import KubeProxySettings
    from exporter.sources.probes_settings import ProbeSourceSettings

__all__ = [
    "DROP_COUNT_NAMES", "ERROR_KINDS", "FORWARD_COUNT_NAMES", "KPR_FEATURE_NAME",
    "VERSION_NAME", "AgentCollector", "AgentScrapeError", "AgentScraper", "AgentSnapshot",
    "AgentState", "AgentStateSource", "Discover", "KprGaugeSink", "parse_agent_metrics",
    "static_discovery",
]

log = logging.getLogger(__name__)

#: Returns the agents to scrape now: node name -> metrics URL.
Discover = Callable[[], Awaitable[dict[str, str]]]
#: Receives each node's KPR feature gauge after a scrape (None: unknown).
KprGaugeSink = Callable[[str, float | None], None]

_ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"
#: Bytes handed to the worker thread at a time.
_CHUNK = 256 * 1024


def static_discovery(targets: Mapping[str, str]) -> Discover:
    """A ``Discover`` that always answers the fixed ``node -> URL`` mapping."""
    fixed = dict(targets)

    async def discover() -> dict[str, str]:
        return dict(fixed)

    return discover


class AgentScraper:
    """Scrapes all agents once per ``scrape_once()``; ``run()`` repeats it every interval.

    Another component's scraper (kube-proxy, ``exporter.sources.kube_proxy``) subclasses it
    with its own ``component`` words for the logs and its own ``families``.
    """

    component = "agent"
    components = "agents"
    #: What one body is read for (None: the agent's families).
    families: Families | None = None

    def __init__(
        self,
        *,
        settings: AgentSettings | KubeProxySettings | ProbeSourceSettings,
        discover: Discover,
        on_kpr_gauge: KprGaugeSink | None = None,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
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
        # One worker of its own: the filter is CPU work under the GIL (more threads would
        # not make it faster), and the shared default pool can be full of blocking calls.
        self._worker: ThreadPoolExecutor | None = None  # started by the first body

    def states(self) -> Mapping[str, AgentState]:
        """Node -> state of its last scrape (a snapshot safe to read from any thread)."""
        return self._states

    def readiness(self) -> str | None:
        """None once a first round of scrapes has finished, else why not (for /readyz)."""
        return None if self._rounds else f"no {self.component} scrape has completed yet"

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
            log.info(f"{self.component} target removed",
                     extra={"kv": {"node": node, "url": previous[node].url}})
            self._notify(node, None)
        if self._on_kpr_gauge is None:
            return
        for state in results:
            snapshot = state.snapshot if state.up else None
            self._notify(state.node, snapshot.kpr_enabled if snapshot else None)

    async def aclose(self) -> None:
        """Stop the filter's worker thread; close the HTTP session if this scraper created it."""
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None
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
                    f"{self.component} discovery failed; scraping the last known {self.components}",
                    extra={"kv": {"error": error, self.components: len(self._targets)}},
                )
            self._discovery_error = error
            return self._targets
        if self._discovery_error:
            log.info(f"{self.component} discovery recovered",
                     extra={"kv": {self.components: len(targets)}})
            self._discovery_error = ""
        self._targets = targets
        return targets

    async def _scrape(self, node: str, url: str) -> AgentState:
        previous = self._states.get(node)
        snapshot: AgentSnapshot | None = None
        async with self._semaphore:
            started = self._monotonic()
            # Keep the failure as text: an exception kept in this frame would keep its
            # traceback, and with it this frame, alive until the cycle collector runs.
            try:
                snapshot = await self._fetch(url)
                kind = message = ""
            except ScrapeError as exc:
                kind, message = exc.kind, str(exc)
            except Exception as exc:  # never let one agent end the round
                kind, message = "internal", f"{type(exc).__name__}: {exc}"
            duration = self._monotonic() - started
        state = self._next_state(previous, node, url, duration, snapshot, kind, message)
        self._log_change(previous, state)
        return state

    def _next_state(
        self, previous: AgentState | None, node: str, url: str, duration: float,
        snapshot: AgentSnapshot | None, kind: str, message: str,
    ) -> AgentState:
        now = self._clock()
        errors = dict(previous.errors) if previous else dict.fromkeys(ERROR_KINDS, 0)
        dropped = previous.series_dropped if previous else 0
        duplicates = previous.duplicate_samples if previous else 0
        if snapshot is not None:
            return AgentState(
                node, url, True, duration, now, now, snapshot, errors=errors,
                series_dropped=dropped + snapshot.series_dropped,
                duplicate_samples=duplicates + snapshot.duplicates,
            )
        errors[kind] = errors.get(kind, 0) + 1
        return AgentState(
            node, url, False, duration, now,
            previous.last_success if previous else None,
            previous.snapshot if previous else None,
            kind, message, errors, dropped, duplicates,
        )

    async def _fetch(self, url: str) -> AgentSnapshot:
        timeout = self._settings.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                async with self._client().get(url, headers={"Accept": _ACCEPT}) as response:
                    return await self._read(response)
        except TimeoutError as exc:
            raise AgentScrapeError("timeout", f"no complete answer within {timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise AgentScrapeError("connect", f"{type(exc).__name__}: {exc}") from exc

    async def _read(self, response: aiohttp.ClientResponse) -> AgentSnapshot:
        """Stream the body through the filter, in a worker thread, chunk by chunk."""
        limit = self._settings.max_body_bytes
        if response.status != 200:
            raise AgentScrapeError(
                "http", f"HTTP {response.status} {response.reason or ''}".rstrip())
        if response.content_length is not None and response.content_length > limit:
            raise _oversize(limit, f"Content-Length {response.content_length}")
        reader = self._filter(response.charset or "utf-8")
        loop = asyncio.get_running_loop()
        if self._worker is None:
            self._worker = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"{self.component}-filter")
        worker = self._worker
        received = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            received += len(chunk)
            if received > limit:
                raise _oversize(limit, "body")
            await loop.run_in_executor(worker, reader.feed, chunk)
        return await loop.run_in_executor(worker, reader.finish)

    def _filter(self, charset: str) -> ExpositionFilter:
        """The streaming reader of one body (this component's ``families``)."""
        return ExpositionFilter(max_series=self._settings.max_series, charset=charset,
                                families=self.families)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._settings.concurrency),
                timeout=aiohttp.ClientTimeout(total=None),  # asyncio.timeout bounds each request
            )
        return self._session

    def _log_change(self, previous: AgentState | None, state: AgentState) -> None:
        self._log_cap(previous, state)
        if previous is not None and (previous.up, previous.error_kind) == (
            state.up, state.error_kind
        ):
            return
        if state.up:
            log.info(
                f"{self.component} scrape recovered" if previous
                else f"{self.component} scrape ok",
                extra={"kv": {"node": state.node, "url": state.url}},
            )
        else:
            log.warning(
                f"{self.component} scrape failed",
                extra={"kv": {"node": state.node, "url": state.url,
                              "kind": state.error_kind, "error": state.error}},
            )

    def _log_cap(self, previous: AgentState | None, state: AgentState) -> None:
        """Warn when an agent's series start to exceed the cap (once, until they fit again)."""
        now = state.snapshot.series_dropped if state.up and state.snapshot else 0
        before = previous.snapshot.series_dropped if previous and previous.snapshot else 0
        if now and not before:
            log.warning(
                f"{self.component} series over the limit dropped",
                extra={"kv": {"node": state.node, "url": state.url, "dropped": now,
                              "max_series": self._settings.max_series}},
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
