"""The exporter's HTTP surface (aiohttp): ``/metrics``, ``/healthz``, ``/readyz`` and ``/``.

Other components add their routes to the same application (the webhook
receiver, the verdicts API). ``/metrics`` renders the project's own registry and
negotiates OpenMetrics with Prometheus.

``/readyz`` runs every named readiness check and answers 503 with the reasons
when any fails *now* (a Hubble outage included); ``/readyz/<name>`` runs one
check. The Pod's readiness probe uses ``/readyz/webhook`` only, so an ingestion
outage never takes the webhook (or the metrics telling of the outage) out of the
Service; see "Health endpoints" in docs/install.md.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from exporter import __version__
from exporter.config_values import parse_listen

#: A named readiness check: returns None when ready, else the reason it is not.
ReadinessCheck = Callable[[], str | None]


@dataclass
class Surface:
    """What the HTTP surface serves; built by the composition root."""

    registry: CollectorRegistry
    #: Extra text-format renderers appended to the registry's exposition (the SLI
    #: pipeline writes its tens of thousands of samples itself, much faster).
    text_renderers: list[Callable[[], bytes]] = field(default_factory=list)
    #: Registries holding the same samples as ``text_renderers``, for OpenMetrics.
    openmetrics_registries: list[CollectorRegistry] = field(default_factory=list)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)  # extra (path, title) on /


SURFACE = web.AppKey("surface", Surface)


def build_app(surface: Surface) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[SURFACE] = surface
    app.router.add_get("/", _landing)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/readyz/{check}", _readyz_one)
    return app


TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def wants_only_openmetrics(accept: str) -> bool:
    """True when the client accepts OpenMetrics but not the classic text format.

    Prometheus lists both (OpenMetrics first, text as a fallback); it gets the
    text format, which the fast SLI renderer writes. A client that can read
    nothing else gets OpenMetrics.
    """
    types = [part.split(";")[0].strip() for part in accept.split(",") if part.strip()]
    return "application/openmetrics-text" in types and not any(
        t in ("text/plain", "*/*", "text/*") for t in types
    )


async def _metrics(request: web.Request) -> web.Response:
    surface: Surface = request.app[SURFACE]
    if wants_only_openmetrics(request.headers.get("Accept", "")):
        parts = [openmetrics.generate_latest(r).removesuffix(b"# EOF\n")
                 for r in (surface.registry, *surface.openmetrics_registries)]
        return web.Response(body=b"".join(parts) + b"# EOF\n",
                            headers={"Content-Type": openmetrics.CONTENT_TYPE_LATEST})
    body = generate_latest(surface.registry) + b"".join(r() for r in surface.text_renderers)
    return web.Response(body=body, headers={"Content-Type": TEXT_FORMAT})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    surface: Surface = request.app[SURFACE]
    return _readiness_answer(surface.readiness)


async def _readyz_one(request: web.Request) -> web.Response:
    surface: Surface = request.app[SURFACE]
    name = request.match_info["check"]
    if name not in surface.readiness:
        known = ", ".join(sorted(surface.readiness)) or "none"
        return web.Response(status=404, text=f"no readiness check {name!r} (known: {known})\n")
    return _readiness_answer({name: surface.readiness[name]})


def _readiness_answer(checks: dict[str, ReadinessCheck]) -> web.Response:
    reasons = {name: why for name, check in checks.items() if (why := check())}
    if reasons:
        text = "".join(f"{name}: {why}\n" for name, why in sorted(reasons.items()))
        return web.Response(status=503, text="not ready\n" + text)
    return web.Response(text="ready\n")


async def _landing(request: web.Request) -> web.Response:
    surface: Surface = request.app[SURFACE]
    links = [("/metrics", "Metrics"), ("/healthz", "Health"), ("/readyz", "Readiness"), *surface.links]
    items = "".join(f'<li><a href="{path}">{title}</a></li>' for path, title in links)
    page = (
        "<!doctype html><html><head><title>kpr-exporter</title></head><body>"
        f"<h1>kpr-exporter {__version__}</h1>"
        "<p>Service SLIs for the kube-proxy to Cilium eBPF switch.</p>"
        f"<ul>{items}</ul></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


class ListenError(Exception):
    """A listener cannot bind its address; the message names the address and the flag to change."""

    def __init__(self, address: str, flag: str, reason: str) -> None:
        self.address, self.flag = address, flag
        super().__init__(
            f"cannot listen on {address}: {reason}; choose another address with {flag}")


def listen_error(address: str, flag: str, exc: BaseException) -> ListenError:
    """The ``ListenError`` for a failed bind (``OSError`` from asyncio, RuntimeError from gRPC)."""
    if isinstance(exc, OSError) and exc.errno:
        return ListenError(address, flag, os.strerror(exc.errno).lower())
    return ListenError(address, flag, str(exc).split(";")[0])


def probe_listen(address: str, flag: str) -> None:
    """Raise ``ListenError`` when ``address`` cannot be bound right now.

    For listeners whose library reports a failed bind only in its own log (gRPC): binding
    a probe socket first gives the one-line error; port 0 always binds.
    """
    host, port = parse_listen(address)
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(address, flag, exc.strerror or str(exc)) from exc
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise listen_error(address, flag, exc) from exc


class Server:
    """Runs an aiohttp application on one listen address; reports the bound port.

    ``stop()`` waits about ``shutdown_timeout`` seconds at most for requests in flight, then
    cancels them (aiohttp's own default, 60 s, is past a pod's usual grace period).
    """

    def __init__(self, app: web.Application, listen_address: str, *, ssl_context=None,
                 flag: str = "--web.listen-address", shutdown_timeout: float = 15.0) -> None:
        self._app = app
        self._listen = listen_address
        self._flag = flag
        self._ssl = ssl_context
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self.port: int = 0
        self.host: str = ""
        self.serving = False

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False,
                                     shutdown_timeout=self._shutdown_timeout)
        await self._runner.setup()
        host, port = parse_listen(self._listen)
        site = web.TCPSite(self._runner, host, port, ssl_context=self._ssl, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise listen_error(self._listen, self._flag, exc) from exc
        server = site._server
        # the bound port when asked for 0
        sockets = getattr(server, "sockets", None) or [] if server is not None else []
        self.host = host
        self.port = sockets[0].getsockname()[1] if sockets else port
        self.serving = True

    def readiness(self) -> str | None:
        """A readiness check: None while this listener accepts requests."""
        return None if self.serving else f"not listening on {self._listen}"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        self.serving = False
        if self._runner is not None:
            await asyncio.shield(self._runner.cleanup())
            self._runner = None
