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
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__

#: A named readiness check: returns None when ready, else the reason it is not.
ReadinessCheck = Callable[[], str | None]


@dataclass
class Surface:
    """What the HTTP surface serves; built by the composition root."""

    registry: CollectorRegistry
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)  # extra (path, title) on /


def build_app(surface: Surface) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app["surface"] = surface
    app.router.add_get("/", _landing)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


async def _metrics(request: web.Request) -> web.Response:
    surface: Surface = request.app["surface"]
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(surface.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    surface: Surface = request.app["surface"]
    reasons = {name: why for name, check in surface.readiness.items() if (why := check())}
    if reasons:
        text = "".join(f"{name}: {why}\n" for name, why in sorted(reasons.items()))
        return web.Response(status=503, text="not ready\n" + text)
    return web.Response(text="ready\n")


async def _landing(request: web.Request) -> web.Response:
    surface: Surface = request.app["surface"]
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
