"""``POST /webhook/alertmanager``: authenticate, parse, decide, answer, act in the background.

Glue only: ``payload.parse`` and ``decision.decide`` do the thinking; the rollback
runner does the work in a background task, so the answer leaves within
milliseconds (Alertmanager counts a 200 slower than max(group_interval, 10s) as a
failure and re-sends).

Status codes, chosen for Alertmanager 0.25's retry behaviour (it retries 5xx and
transport errors with backoff inside one flush; it never retries a 4xx inside the
flush but, because the notification log is not updated, sends the same
notification again every ``group_interval``; a 2xx ends delivery until the group
changes or ``repeat_interval`` elapses):

====  =========================  =============================================================
code  outcome label              when
====  =========================  =============================================================
200   accepted                   a rollback (or, in dry-run, its plan) was started
200   duplicate                  every matching alert was already acted on
200   ignored                    no firing alert carries the match labels (resolved, other alerts)
200   nothing_to_do              every node in scope already uses kube-proxy
200   cooldown                   a rollback ran less than ``rollback.cooldown_seconds`` ago;
                                 working as intended, not an error
200   refused                    kill switch, cap per window, or an invalid scope label;
                                 the reason is logged and returned; re-sending would not help
400   malformed                  the body is not a version-4 payload (bad JSON, wrong version,
                                 wrong field types). Deliberately a 4xx, not a 2xx: no real
                                 Alertmanager sends this, so the sender is misconfigured, and
                                 the failure must stay visible on its side
                                 (``alertmanager_notifications_failed_total``); AM re-posts it
                                 once per group_interval, which is cheap.
401   unauthorized               no ``Authorization: Bearer`` header, or one with non-ASCII
                                 bytes (``WWW-Authenticate`` set)
403   forbidden                  a bearer token that does not match
408   body_timeout               the body did not arrive within ``webhook.body_timeout_seconds``;
                                 the connection is closed after the answer
413   too_large                  body above ``webhook.max_body_bytes``
415   unsupported_media_type     Content-Type is not application/json
503   deferred                   retry wanted: the migration phase is not known yet, or a
                                 rollback is running (the retry is decided afresh afterwards)
503   unavailable                the token file cannot be read right now
500   error                      a bug; logged with its traceback (AM retries)
-     client_disconnected        the sender hung up before its body was complete: its failure,
                                 logged at INFO; nobody is left to read an answer
====  =========================  =============================================================

Concurrent identical deliveries: deciding and remembering happen with no ``await``
in between, so exactly one of them starts a rollback; the others are duplicates.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from exporter.rollback.roles import (
    ENFORCE, FAILED, PLANNED, SUCCEEDED, ClusterView, Result, Scope, Trigger,
)
from exporter.webhook import decision as dec
from exporter.webhook.payload import Notification, PayloadError, parse
from exporter.webhook.settings import WebhookSettings, WebhookTlsSettings

log = logging.getLogger(__name__)

PATH: Final = "/webhook/alertmanager"

OUTCOMES: Final = (
    "accepted", "duplicate", "ignored", "nothing_to_do", "cooldown", "refused", "malformed",
    "unauthorized", "forbidden", "body_timeout", "too_large", "unsupported_media_type",
    "deferred", "unavailable", "error", "client_disconnected",
)
_ACTION_OUTCOME: Final = {
    dec.ROLLBACK: ("accepted", 200),
    dec.DUPLICATE: ("duplicate", 200),
    dec.IGNORE: ("ignored", 200),
    dec.NOTHING_TO_DO: ("nothing_to_do", 200),
    dec.COOLDOWN: ("cooldown", 200),
    dec.REFUSE: ("refused", 200),
    dec.DEFER: ("deferred", 503),
}


#: Results that count for cooldown and cap: the rollback ran (or, in dry-run, was planned).
#: Refused (kill switch, another replica's Lease) and nothing-to-do runs do not.
COUNTED_RESULTS: Final = frozenset({SUCCEEDED, FAILED, PLANNED})


class WebhookConfigError(Exception):
    """The receiver cannot start safely with this configuration (e.g. enforce without a token)."""


class RollbackStarter(Protocol):
    """What the receiver needs from the rollback runner."""

    @property
    def busy(self) -> bool: ...

    def start(self, scope: Scope, trigger: Trigger) -> asyncio.Task[Result]: ...


class TokenFile:
    """The expected bearer token, read from a file and re-read when the file changes.

    Mounted from a Secret, the file is replaced on rotation; ``stat`` per request is cheap.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._token = b""

    def token(self) -> bytes:
        """The token bytes; raises ``OSError`` when unreadable, ``WebhookConfigError`` when empty."""
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            with open(self.path, "rb") as fh:
                token = fh.read().strip()
            self._token, self._stamp = token, stamp
        if not self._token:
            raise WebhookConfigError(f"token file {self.path} is empty")
        return self._token


def token_source(settings: WebhookSettings, mode: str) -> TokenFile | None:
    """The token source for ``mode``; refuses enforce mode without a readable, non-empty token."""
    if not settings.token_file:
        if mode == ENFORCE:
            raise WebhookConfigError(
                "rollback mode enforce needs --webhook.token-file: an unauthenticated "
                "endpoint must not be able to roll the cluster back"
            )
        log.warning("webhook accepts unauthenticated requests (no --webhook.token-file); "
                    "acceptable only in dry-run mode")
        return None
    source = TokenFile(settings.token_file)
    try:
        source.token()
    except OSError as exc:
        raise WebhookConfigError(f"cannot read webhook token file {settings.token_file}: "
                                 f"{exc.strerror or exc}") from exc
    return source


def build_ssl_context(tls: WebhookTlsSettings) -> ssl.SSLContext | None:
    """A server-side TLS context (mTLS when ``client_ca_file`` is set); None when TLS is off."""
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(cafile=tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    outcome: str
    reason: str
    scope: Scope | None = None  # what a rollback (or, in dry-run, its plan) covers


class WebhookReceiver:
    """Handles Alertmanager deliveries; see the module docstring for the status codes."""

    def __init__(
        self,
        *,
        settings: WebhookSettings,
        policy: dec.Policy,
        view: ClusterView,
        runner: RollbackStarter,
        registry: CollectorRegistry,
        token: TokenFile | None,
        kill_switch: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
        memory: dec.Memory | None = None,
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._view = view
        self._runner = runner
        self._token = token
        self._kill_switch = kill_switch
        self._clock = clock
        self.memory = memory or dec.Memory(settings.dedup_entries)
        self._requests = Counter(
            "kpr_webhook_requests", "Alertmanager webhook deliveries by outcome.",
            ["outcome"], registry=registry,
        )
        self._by_outcome = {o: self._requests.labels(o) for o in OUTCOMES}

    async def handle(self, request: web.Request) -> web.Response:
        try:
            answer = await self._answer(request)
        except ConnectionError as exc:  # the sender hung up mid-body: its failure, not ours
            log.info("webhook client hung up before its body was complete", extra={"kv": {
                "peer": request.remote or "", "error": str(exc) or type(exc).__name__}})
            answer = _Answer(400, "client_disconnected", "the client hung up mid-body")
        except Exception:  # never let a bad delivery take the handler down
            log.exception("webhook handler failed")
            answer = _Answer(500, "error", "internal error; see the exporter log")
        self._by_outcome[answer.outcome].inc()
        headers = {"WWW-Authenticate": 'Bearer realm="kpr-exporter"'} if answer.status == 401 else None
        if answer.status == 503:
            headers = {"Retry-After": "10"}
        doc: dict[str, object] = {"outcome": answer.outcome, "reason": answer.reason}
        if answer.scope is not None:
            doc["scope"] = answer.scope.to_dict()
        response = web.Response(status=answer.status, text=json.dumps(doc),
                                content_type="application/json", headers=headers)
        if answer.outcome == "body_timeout":
            # The sender is stalled mid-body: answer, then close instead of lingering on the rest.
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
        return response

    async def _answer(self, request: web.Request) -> _Answer:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        if request.content_type != "application/json":
            return _Answer(415, "unsupported_media_type",
                           f"Content-Type must be application/json, got {request.content_type}")
        limit = self._settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _Answer(413, "too_large", f"body of {request.content_length} bytes exceeds {limit}")
        timeout = self._settings.body_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                body = await _read_capped(request, limit)
        except TimeoutError:
            log.warning("webhook body not received in time; closing the connection",
                        extra={"kv": {"peer": request.remote or "", "timeout_seconds": timeout}})
            return _Answer(408, "body_timeout", f"body not received within {timeout:g}s")
        if body is None:
            return _Answer(413, "too_large", f"body exceeds {limit} bytes")
        try:
            notification = parse(body)
        except PayloadError as exc:
            log.warning("webhook payload rejected", extra={"kv": {"reason": str(exc)}})
            return _Answer(400, "malformed", str(exc))
        return self._decide(notification)

    def _authenticate(self, request: web.Request) -> _Answer | None:
        if self._token is None:
            return None
        try:
            expected = self._token.token()
        except (OSError, WebhookConfigError) as exc:
            log.error("webhook token unavailable", extra={"kv": {"error": str(exc)}})
            return _Answer(503, "unavailable", "the receiver cannot read its token")
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return _Answer(401, "unauthorized", "bearer token required")
        if not presented.isascii():  # a bearer token is ASCII (RFC 6750 b64token)
            return _Answer(401, "unauthorized", "malformed bearer token: non-ASCII bytes")
        if not hmac.compare_digest(presented.strip().encode(), expected):
            return _Answer(403, "forbidden", "bearer token does not match")
        return None

    def _decide(self, notification: Notification) -> _Answer:
        # No await from here on: decide + remember + start are atomic on the event loop.
        now = self._clock()
        situation = dec.Situation.observe(
            self._view, in_progress=self._runner.busy, kill_switch=self._kill_switch()
        )
        decision = dec.decide(notification, self._policy, situation, self.memory, now)
        if decision.action == dec.ROLLBACK:
            self.memory.remember(decision, now)
            assert decision.scope is not None
            task = self._runner.start(decision.scope, Trigger(decision.reason, decision.fingerprints))
            task.add_done_callback(self._finished)
        outcome, status = _ACTION_OUTCOME[decision.action]
        log.info("webhook decision", extra={"kv": {
            "outcome": outcome, "action": decision.action, "mode": decision.mode,
            "reason": decision.reason, "fingerprints": ",".join(decision.fingerprints),
            "group_key": notification.group_key, "receiver": notification.receiver,
        }})
        return _Answer(status, outcome, decision.reason,
                       decision.scope if decision.action == dec.ROLLBACK else None)


    def _finished(self, task: asyncio.Task[Result]) -> None:
        """A rollback that ran (or, in dry-run, was planned) counts for cooldown and cap."""
        if task.cancelled() or task.exception() is not None:
            return
        if task.result().status in COUNTED_RESULTS:
            self.memory.record_rollback(self._clock())


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` (Content-Length may be absent)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def add_webhook_route(app: web.Application, receiver: WebhookReceiver, path: str = PATH) -> None:
    """Mount ``receiver`` on ``app`` at ``POST path``."""
    app.router.add_post(path, receiver.handle)
