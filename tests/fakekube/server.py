"""The simulated API server lives in ``exporter.simulator.kubeapi``; tests keep importing it
from here."""

from exporter.simulator.kubeapi.kinds import (
    DEFAULT_TYPES, VERBS, ApiError, Hold, LoggedRequest, ResourceType,
)
from exporter.simulator.kubeapi.server import FakeKube

__all__ = ["DEFAULT_TYPES", "VERBS", "ApiError", "Hold", "LoggedRequest", "ResourceType", "FakeKube"]
