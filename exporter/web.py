"""The exporter's HTTP surface (aiohttp): ``/metrics``, ``/healthz``, ``/readyz`` and ``/``.

Other components add their routes to the same application (the webhook
receiver, the verdicts API). ``/metrics`` renders the project's own registry and
negotiates OpenMetrics with Prometheus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from exporter import __version__

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
    reasons = {name: why for name, check in surface.readiness.items() if (why := check())}
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


def split_listen(address: str) -> tuple[str, int]:
    """``:9977`` -> ("0.0.0.0", 9977); ``127.0.0.1:0`` -> ("127.0.0.1", 0); ``[::1]:80`` works too."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Server:
    """Runs an aiohttp application on one listen address; reports the bound port."""

    def __init__(self, app: web.Application, listen_address: str, *, ssl_context=None) -> None:
        self._app = app
        self._listen = listen_address
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self.port: int = 0
        self.host: str = ""

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        host, port = split_listen(self._listen)
        site = web.TCPSite(self._runner, host, port, ssl_context=self._ssl, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # bound port when asked for 0
        self.host = host
        self.port = sockets[0].getsockname()[1] if sockets else port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await asyncio.shield(self._runner.cleanup())
            self._runner = None
