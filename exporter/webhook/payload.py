"""Alertmanager webhook payload (version "4"), parsed strictly into our own frozen types.

Pure: no I/O, no HTTP. ``parse(body)`` either returns a ``Notification`` or raises
``PayloadError`` with a message that says which field was wrong. Unknown keys are
tolerated (newer Alertmanagers add ``notification_reason`` and ``routeLabels``);
known keys must have the documented type. Firing alerts carry the Go zero time
``0001-01-01T00:00:00Z`` as ``endsAt``: that becomes ``ends_at=None`` ("no end").
Timestamps of any fractional precision (none, ms, ns) are accepted; they must
carry a zone (``Z`` or an offset).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Final

FIRING: Final = "firing"
RESOLVED: Final = "resolved"
_STATUSES: Final = frozenset({FIRING, RESOLVED})
SUPPORTED_VERSION: Final = "4"

_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$"
)
_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


class PayloadError(ValueError):
    """The body is not a version-4 Alertmanager webhook payload; the message says why."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of a notification (Alertmanager ``template.Alert``)."""

    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None: no end yet (the year-1 zero time)
    generator_url: str
    fingerprint: str

    @property
    def firing(self) -> bool:
        return self.status == FIRING

    def dedup_key(self) -> tuple[str, float, str]:
        """``(fingerprint, startsAt, status)``: identical for every re-send of the same alert."""
        return (self.fingerprint, self.starts_at.timestamp(), self.status)


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook delivery (Alertmanager ``notify/webhook.Message``)."""

    version: str
    group_key: str
    truncated_alerts: int
    status: str
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]


def parse(body: bytes | str) -> Notification:
    """Parse a webhook body; raise ``PayloadError`` when it is not a version-4 payload."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    return from_document(doc)


def from_document(doc: Any) -> Notification:
    """Build a ``Notification`` from already decoded JSON."""
    if not isinstance(doc, dict):
        raise PayloadError(f"payload must be a JSON object, got {_json_type(doc)}")
    version = _string(doc, "version", "payload")
    if version != SUPPORTED_VERSION:
        raise PayloadError(f'unsupported payload version {version!r} (expected "4")')
    raw_alerts = doc.get("alerts")
    if not isinstance(raw_alerts, list):
        raise PayloadError(f"'alerts' must be a list, got {_json_type(raw_alerts)}")
    alerts = tuple(_alert(item, index) for index, item in enumerate(raw_alerts))
    truncated = doc.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("'truncatedAlerts' must be a non-negative integer")
    return Notification(
        version=version,
        group_key=_string(doc, "groupKey", "payload"),
        truncated_alerts=truncated,
        status=_status(doc, "payload"),
        receiver=_string(doc, "receiver", "payload", default=""),
        group_labels=_labels(doc, "groupLabels", "payload"),
        common_labels=_labels(doc, "commonLabels", "payload"),
        common_annotations=_labels(doc, "commonAnnotations", "payload"),
        external_url=_string(doc, "externalURL", "payload", default=""),
        alerts=alerts,
    )


def parse_timestamp(value: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; the Go zero time (year 1) is ``None``."""
    if not _TIMESTAMP.match(value):
        raise PayloadError(f"not an RFC 3339 timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"not an RFC 3339 timestamp: {value!r}") from exc
    if parsed.year == 1:
        return None
    return parsed.astimezone(timezone.utc)


def _alert(item: Any, index: int) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(item, dict):
        raise PayloadError(f"{where} must be an object, got {_json_type(item)}")
    starts_at = parse_timestamp(_string(item, "startsAt", where))
    if starts_at is None:
        raise PayloadError(f"{where}.startsAt is the zero time")
    fingerprint = _string(item, "fingerprint", where)
    if not fingerprint:
        raise PayloadError(f"{where}.fingerprint is empty")
    ends_raw = item.get("endsAt")
    if ends_raw is None:
        ends_at = None
    elif isinstance(ends_raw, str):
        ends_at = parse_timestamp(ends_raw)
    else:
        raise PayloadError(f"{where}.endsAt must be a string, got {_json_type(ends_raw)}")
    return Alert(
        status=_status(item, where),
        labels=_labels(item, "labels", where),
        annotations=_labels(item, "annotations", where),
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=_string(item, "generatorURL", where, default=""),
        fingerprint=fingerprint,
    )


def _status(doc: dict[str, Any], where: str) -> str:
    status = _string(doc, "status", where)
    if status not in _STATUSES:
        raise PayloadError(f"{where}.status must be 'firing' or 'resolved', got {status!r}")
    return status


_REQUIRED = object()


def _string(doc: dict[str, Any], key: str, where: str, default: Any = _REQUIRED) -> str:
    value = doc.get(key)
    if value is None:
        if default is _REQUIRED:
            raise PayloadError(f"{where}.{key} is missing")
        return default
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{key} must be a string, got {_json_type(value)}")
    return value


def _labels(doc: dict[str, Any], key: str, where: str) -> Mapping[str, str]:
    value = doc.get(key)
    if value is None:
        return _EMPTY
    if not isinstance(value, dict):
        raise PayloadError(f"{where}.{key} must be an object, got {_json_type(value)}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{where}.{key}[{name!r}] must be a string, got {_json_type(item)}")
    return MappingProxyType(dict(value))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
