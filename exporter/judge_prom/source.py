"""``PrometheusEvidence``: the judge's evidence from Prometheus' HTTP API.

One evaluation opens a client session (bearer token or basic-auth password read from their
files then, so rotated secrets are picked up; TLS with a CA bundle or, for tests, without
verification), runs the window and health queries concurrently at the evaluation time,
and assembles an ``Evidence``. Nothing raises out of ``evidence``: an unreachable or slow
Prometheus, an error answer, response warnings (a partial answer from Thanos or Mimir) or
a secret that cannot be read become ``Evidence.problem`` and every verdict is
inconclusive with the reason; ``kpr_judge_source_errors_total{kind}`` counts them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from exporter.judge.evidence import PROMETHEUS, Evidence, window_services
from exporter.judge.settings import JudgeSettings
from exporter.judge_prom import assemble, queries
from exporter.report.client import PrometheusClient, PrometheusError, PrometheusUnreachable
from exporter.report.data import Sample
from exporter.sli.series import CONNECT_BUCKETS

log = logging.getLogger(__name__)

#: ``kind`` label values of ``kpr_judge_source_errors_total``.
ERROR_KINDS = ("unreachable", "query_error", "warnings", "partial", "config")


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
        try:
            async with self._session() as session:
                client = PrometheusClient(self.prom.url, session)
                evidence = await self._fetch(client, now)
        except (SecretError, ValueError) as err:
            return self._failed("config", f"no evidence from Prometheus: {err}")
        except PrometheusUnreachable as err:
            return self._failed("unreachable", f"Prometheus unreachable: {err}")
        except PrometheusError as err:
            return self._failed("query_error", f"Prometheus query failed: {err}")
        except Exception as err:  # noqa: BLE001 - an answer this code cannot read
            log.exception("cannot read Prometheus' answer")
            return self._failed("query_error", "Prometheus' answer could not be read: "
                                               f"{type(err).__name__}: {err}")
        if client.warnings:
            return self._failed("warnings", "Prometheus answered with warnings, the data may "
                                            "be partial: " + "; ".join(client.warnings[:3]))
        if evidence.partial:
            self._errors.labels("partial").inc()
        self._known = evidence.services
        return evidence

    def _failed(self, kind: str, reason: str) -> Evidence:
        self._errors.labels(kind).inc()
        log.warning("judge evidence from Prometheus failed",
                    extra={"kv": {"kind": kind, "reason": reason}})
        # The services judged last time stay, inconclusive, instead of vanishing.
        return Evidence(None, None, self._known, reason)

    async def _fetch(self, client: PrometheusClient, now: float) -> Evidence:
        s = self.settings
        windows = {"short": s.short_window_seconds, "long": s.long_window_seconds}
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
        self.queries += len(exprs)
        results = await asyncio.gather(*(client.query(e, now) for e in exprs.values()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        got: dict[str, Sequence[Sample]] = dict(zip(exprs, results))  # type: ignore[arg-type]
        problem = assemble.health(now, got["up"], got["newest"], got["vanished"],
                                  s.stale_after_seconds)
        built = {name: assemble.window(now - seconds, now, bool(got[f"{name}.late"]),
                                       _parts(got, name), self.default_bounds)
                 for name, seconds in windows.items()}
        short, long = built["short"].window, built["long"].window
        partial = {**assemble.missing_in_long(short, long), **built["long"].partial,
                   **built["short"].partial}
        return Evidence(short, long, window_services(short, long) | frozenset(partial),
                        problem, partial)

    def _session(self) -> aiohttp.ClientSession:
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
