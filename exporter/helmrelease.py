"""Helm's release records, as Helm 3 and 4 store them in Secrets, decoded.

A release revision lives in Secret ``sh.helm.release.v1.<release>.v<revision>`` of type
``helm.sh/release.v1`` (labels ``owner=helm``, ``name``, ``status``, ``version``). Its
``data.release`` is base64 of gzip of the release JSON; the API base64-encodes Secret data
once more, so a Secret read through the API holds it base64 twice. Helm writes plain JSON
when it does not compress, so both are accepted. The JSON's ``config`` is what
``helm get values`` prints: the user-supplied values only.

Pure: a Secret (dict) in, a :class:`Release` out, or :class:`ReleaseFormatError`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

SECRET_TYPE: Final = "helm.sh/release.v1"
_SECRET_NAME: Final = re.compile(r"^sh\.helm\.release\.v1\.(?P<name>.+)\.v(?P<revision>\d+)$")
_GZIP_MAGIC: Final = b"\x1f\x8b"


class ReleaseFormatError(ValueError):
    """A Secret that should hold a Helm release does not decode as one."""


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str
    values: Mapping[str, Any] = field(default_factory=dict)  # user-supplied (helm get values)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "revision": self.revision,
                "status": self.status, "chart": self.chart, "chartVersion": self.chart_version,
                "appVersion": self.app_version}


def secret_revision(secret: Mapping[str, Any], release: str) -> int | None:
    """The revision a release Secret holds, from its name; None when it is another's."""
    match = _SECRET_NAME.match((secret.get("metadata") or {}).get("name", ""))
    if match is None or match["name"] != release:
        return None
    return int(match["revision"])


def decode_secret(secret: Mapping[str, Any]) -> Release:
    """The release a ``helm.sh/release.v1`` Secret (as read through the API) holds."""
    return _release(decode_document(secret), secret.get("metadata") or {})


def decode_document(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The whole release record (chart, values, manifest) a release Secret holds."""
    meta = secret.get("metadata") or {}
    name = meta.get("name", "?")
    raw = (secret.get("data") or {}).get("release")
    if not isinstance(raw, str) or not raw:
        raise ReleaseFormatError(f"Secret {name} has no data.release")
    try:
        stored = base64.b64decode(base64.b64decode(raw, validate=True), validate=True)
        if stored[:2] == _GZIP_MAGIC:
            stored = gzip.decompress(stored)
        doc = json.loads(stored)
    except (binascii.Error, OSError, EOFError, ValueError) as exc:
        raise ReleaseFormatError(f"Secret {name}: data.release is not a Helm release "
                                 f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(doc, dict):
        raise ReleaseFormatError(f"Secret {name}: the release is not a JSON object")
    return doc


def latest_deployed(releases: Iterable[Release]) -> Release | None:
    """The deployed revision (the highest, should several claim it)."""
    deployed = [r for r in releases if r.status == "deployed"]
    return max(deployed, key=lambda r: r.revision) if deployed else None


def _release(doc: Mapping[str, Any], meta: Mapping[str, Any]) -> Release:
    chart = (doc.get("chart") or {}).get("metadata") or {}
    info = doc.get("info") or {}
    labels = meta.get("labels") or {}
    values = doc.get("config") or {}
    if not isinstance(values, dict):
        raise ReleaseFormatError(f"Secret {meta.get('name', '?')}: config is not an object")
    try:
        revision = int(doc.get("version") or labels.get("version") or 0)
    except (TypeError, ValueError) as exc:
        raise ReleaseFormatError(f"Secret {meta.get('name', '?')}: bad version") from exc
    return Release(
        name=str(doc.get("name") or labels.get("name") or ""),
        namespace=str(doc.get("namespace") or meta.get("namespace") or ""),
        revision=revision,
        status=str(info.get("status") or labels.get("status") or ""),
        chart=str(chart.get("name") or ""),
        chart_version=str(chart.get("version") or ""),
        app_version=str(chart.get("appVersion") or ""),
        values=values,
    )
