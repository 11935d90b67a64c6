"""Kubernetes Events this product records for every change it makes to a cluster."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.kube.resources import EVENTS

log = logging.getLogger(__name__)
COMPONENT = "kpr-exporter"


@dataclass(frozen=True)
class Regarding:
    """The object an Event is about."""

    kind: str
    namespace: str
    name: str
    api_version: str = "v1"


def event_body(regarding: Regarding, *, reason: str, message: str, action: str,
               instance: str, now: float, warning: bool = False,
               prefix: str = "kpr-exporter.") -> dict[str, Any]:
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": prefix, "namespace": regarding.namespace},
        "involvedObject": {"apiVersion": regarding.api_version, "kind": regarding.kind,
                           "namespace": regarding.namespace, "name": regarding.name},
        "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "reportingInstance": instance, "action": action,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


async def record_event(kube: KubeClient, body: Mapping[str, Any]) -> bool:
    """Create the Event; a failure is logged (the change itself already happened)."""
    try:
        await kube.create(EVENTS, body, body["metadata"]["namespace"])
    except KubeError as exc:
        log.warning("cannot record event", extra={"kv": {
            "reason": body.get("reason"), "message": body.get("message"), "error": str(exc)}})
        return False
    return True
