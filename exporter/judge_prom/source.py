"""``PrometheusEvidence``: the judge's evidence from Prometheus' HTTP API.

One evaluation opens a client session (bearer token or basic-auth password read from their
files then, so rotated secrets are picked up; TLS with a CA bundle or, for tests, without
verification), runs the window and health queries concurrently at the evaluation time,
and assembles an ``Evidence``. Nothing raises out of ``evidence``: an unreachable or slow
Prometheus, an error answer, response warnings (a partial answer from Thanos or Mimir) or
a secret that cannot be read become ``Evidence.problem`` and every verdict is
inconclusive with the reason; ``kpr_judge_source_errors_total{kind}`` counts them.

The lost-events gate (``exporter.judge.losses``): each window's per-node flows and lost
events are read by exporter instance; the window queries of a window where an instance
lost too much are sent again without that instance, and ``Evidence.left_out`` names the
nodes. ``window_at`` reads one window the same way for the baseline and raises
``EvidenceUnavailable`` instead of returning a problem.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from exporter.judge.evidence import PROMETHEUS, Evidence, window_services
from exporter.judge.history import Window
from exporter.judge.losses import NodeLoss
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import LONG, SHORT
from exporter.judge_prom import assemble, queries
from exporter.metrics_contract import CONNECT_BUCKETS
from exporter.report.client import PrometheusClient, PrometheusError, PrometheusUnreachable
from exporter.report.data import Sample

log = logging.getLogger(__name__)

#: ``kind`` label values of ``kpr_judge_source_errors_total``.
ERROR_KINDS = ("unreachable", "query_error", "warnings", "partial", "config")

#: The name of the one window ``window_at`` reads.
WINDOW = "window"


class EvidenceUnavailable(Exception):
    """Prometheus could not give trustworthy counts for a window (the reason is the text)."""


@dataclass(frozen=True)
class _Fetched:
    problem: str | None
    built: Mapping[str, assemble.Assembled]
    services: frozenset[tuple[str, str]]
    left_out: Mapping[str, tuple[NodeLoss, ...]]


class SecretError(Exception):
    """A secret the Prometheus connection needs could not be read."""


class PrometheusEvidence:
    """Evidence for the judge from Prometheus (``judge.source: prometheus``)."""

    name = PROMETHEUS

    def __init__(self, settings: JudgeSettings, *, registry: CollectorRegistry | None = None,
                 default_bounds: tuple[float, ...] = CONNECT_BUCKETS) -> None:
        self.settings = settings
        self.prom = settings.prometheus
        self.default_bounds = tuple(default_bounds)
        self.queries = 0  # queries sent so far (for benchmarks and logs)
        self._known: frozenset[tuple[str, str]] = frozenset()  # services of the last success
        self._errors = Counter(
            "kpr_judge_source_errors_total",
            "Evaluations whose evidence source failed or returned partial data, by kind "
            "(unreachable, query_error, warnings, partial, config)",
            ["kind"], registry=registry)
        for kind in ERROR_KINDS:
            self._errors.labels(kind)

    async def evidence(self, now: float) -> Evidence:
        """The evidence at ``now``; a failure is an ``Evidence`` with a ``problem``."""
        s = self.settings
        fetched = await self._fetched(now, {SHORT: s.short_window_seconds,
                                            LONG: s.long_window_seconds})
        if isinstance(fetched, tuple):
            return self._failed(*fetched)
        short, long = fetched.built[SHORT], fetched.built[LONG]
        partial = {**assemble.missing_in_long(short.window, long.window), **long.partial,
                   **short.partial}
        evidence = Evidence(short.window, long.window, fetched.services | frozenset(partial),
                            fetched.problem, partial, fetched.left_out)
        if evidence.partial:
            self._errors.labels("partial").inc()
        self._known = evidence.services
        return evidence

    async def window_at(self, end: float, seconds: float) -> Window:
        """The counts of the ``seconds`` before ``end`` as the judge reads them (the same
        queries, health checks and lost-events gate), for the baseline; services with
        partial data are left out. Raises ``EvidenceUnavailable`` with the reason."""
        fetched = await self._fetched(end, {WINDOW: seconds})
        if isinstance(fetched, tuple):
            self._errors.labels(fetched[0]).inc()
            raise EvidenceUnavailable(fetched[1])
        if fetched.problem:
            raise EvidenceUnavailable(fetched.problem)
        built = fetched.built[WINDOW]
        w = built.window
        keep = {k: c for k in w.keys()
                if (k.namespace, k.service) not in built.partial and (c := w.cohort(k))}
        return Window.of_cohorts(w.start, w.end, w.bounds, keep, w.partial)

    async def _fetched(self, now: float, windows: Mapping[str, float]) -> _Fetched | tuple[str, str]:
        """The windows at ``now``, or ``(error kind, reason)``."""
        try:
            async with self.session() as session:
                client = PrometheusClient(self.prom.url, session)
                fetched = await self._fetch(client, now, windows)
        except (SecretError, ValueError) as err:
            return "config", f"no evidence from Prometheus: {err}"
        except PrometheusUnreachable as err:
            return "unreachable", f"Prometheus unreachable: {err}"
        except PrometheusError as err:
            return "query_error", f"Prometheus query failed: {err}"
        except Exception as err:  # noqa: BLE001 - an answer this code cannot read
            log.exception("cannot read Prometheus' answer")
            return "query_error", ("Prometheus' answer could not be read: "
                                   f"{type(err).__name__}: {err}")
        if client.warnings:
            return "warnings", ("Prometheus answered with warnings, the data may be partial: "
                                + "; ".join(client.warnings[:3]))
        return fetched

    def _failed(self, kind: str, reason: str) -> Evidence:
        self._errors.labels(kind).inc()
        log.warning("judge evidence from Prometheus failed",
                    extra={"kv": {"kind": kind, "reason": reason}})
        # The services judged last time stay, inconclusive, instead of vanishing.
        return Evidence(None, None, self._known, reason)

    async def _fetch(self, client: PrometheusClient, now: float,
                     windows: Mapping[str, float]) -> _Fetched:
        s = self.settings
        exprs: dict[str, str] = {
            "up": queries.up(), "newest": queries.newest_sample(),
            "vanished": queries.vanished(s.short_window_seconds),
        }
        for name, seconds in windows.items():
            exprs[f"{name}.late"] = queries.late_starters(seconds)
            for part, expr in queries.window_queries(seconds).items():
                exprs[f"{name}.{part}"] = expr
            for part, expr in queries.probe_queries(seconds).items():
                exprs[f"{name}.probe.{part}"] = expr
            for part, expr in queries.loss_queries(seconds).items():
                exprs[f"{name}.loss.{part}"] = expr
        got = await self._run(client, exprs, now)
        problem = assemble.health(now, got["up"], got["newest"], got["vanished"],
                                  s.stale_after_seconds)
        built = {name: self._window(got, name, now, seconds) for name, seconds in windows.items()}
        # Services come from every exporter's series, so a lossy one's services stay judged.
        services = window_services(*(b.window for b in built.values()))
        left_out: dict[str, tuple[NodeLoss, ...]] = {}
        for name, seconds in windows.items():
            lossy = assemble.lossy({p: got[f"{name}.loss.{p}"] for p in queries.LOSS_METRICS},
                                   s.max_lost_share)
            if lossy:
                left_out[name] = lossy
                gone = {n.unit for n in lossy}
                again = {f"{name}.{p}": queries.without_instances(e, gone)
                         for p, e in queries.window_queries(seconds).items()}
                got.update(await self._run(client, again, now))
                built[name] = self._window(got, name, now, seconds)
        return _Fetched(problem, built, services, left_out)

    async def _run(self, client: PrometheusClient, exprs: Mapping[str, str],
                   now: float) -> dict[str, Sequence[Sample]]:
        self.queries += len(exprs)
        results = await asyncio.gather(*(client.query(e, now) for e in exprs.values()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return dict(zip(exprs, results))  # type: ignore[arg-type]

    def _window(self, got: Mapping[str, Sequence[Sample]], name: str, now: float,
                seconds: float) -> assemble.Assembled:
        return assemble.window(now - seconds, now, bool(got[f"{name}.late"]), _parts(got, name),
                               self.default_bounds)

    def session(self) -> aiohttp.ClientSession:
        """A session with this Prometheus' auth and TLS (one home for both)."""
        prom = self.prom
        headers: dict[str, str] = {}
        if prom.bearer_token_file:
            headers["Authorization"] = "Bearer " + _secret(prom.bearer_token_file, "bearer token")
        elif prom.basic_auth.username:
            headers["Authorization"] = aiohttp.encode_basic_auth(
                prom.basic_auth.username, _secret(prom.basic_auth.password_file, "password"))
        connector = aiohttp.TCPConnector(ssl=self._ssl())
        timeout = aiohttp.ClientTimeout(total=prom.timeout_seconds)
        return aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout)

    def _ssl(self) -> ssl.SSLContext | bool:
        tls = self.prom.tls
        if tls.insecure_skip_verify:
            return False
        try:
            return ssl.create_default_context(cafile=tls.ca_file or None)
        except (OSError, ssl.SSLError) as err:
            raise SecretError(f"cannot load the CA bundle {tls.ca_file!r}: {err}") from err


def _parts(got: Mapping[str, Sequence[Sample]], window: str) -> dict[str, Sequence[Sample]]:
    """A window's service samples with the probes' pseudo-services' added."""
    return {part: [*got[f"{window}.{part}"], *got.get(f"{window}.probe.{part}", ())]
            for part in queries.WINDOW_PARTS}


def _secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except (OSError, UnicodeDecodeError) as err:
        raise SecretError(f"cannot read the {what} file {path!r}: {err}") from err
    if not value:
        raise SecretError(f"the {what} file {path!r} is empty")
    return value
