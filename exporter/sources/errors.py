"""Exceptions raised at the boundary of ``exporter.sources``.

Library errors (gRPC, protobuf, HTTP) never escape the package bare: they are
wrapped in one of these, with the original chained as ``__cause__``.
"""

from __future__ import annotations


class SourceError(Exception):
    """A data source failed (transport, protocol or content)."""


class MalformedMessage(SourceError):
    """A message from the source could not be decoded; the stream itself may go on."""


class HubbleError(SourceError):
    """A call to Hubble (Relay or agent) failed.

    ``code`` is the gRPC status name (``UNAVAILABLE``, ``UNIMPLEMENTED`` ...),
    ``details`` the server's or the library's message.
    """

    def __init__(self, address: str, code: str, details: str = "") -> None:
        super().__init__(f"hubble {address}: {code}" + (f": {details}" if details else ""))
        self.address = address
        self.code = code
        self.details = details
