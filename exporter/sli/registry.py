"""The explicit handler registry: configuration name -> handler class.

Adding an SLI is one module, one line here and one test module. Unknown names
are configuration errors that list the known ones.
"""

from __future__ import annotations

from exporter.sli.drops import Drops
from exporter.sli.flows import Flows
from exporter.sli.http import Http
from exporter.sli.tcp import TcpHandshake

HANDLERS: dict[str, type] = {
    Flows.name: Flows,
    Drops.name: Drops,
    TcpHandshake.name: TcpHandshake,
    Http.name: Http,
}


def handler_class(name: str) -> type:
    """The class registered under ``name``; raises ``UnknownHandlerError`` otherwise."""
    from exporter.sli.errors import UnknownHandlerError

    try:
        return HANDLERS[name]
    except KeyError:
        raise UnknownHandlerError(
            [f"unknown SLI handler {name!r}; known: {', '.join(HANDLERS)}"]
        ) from None
