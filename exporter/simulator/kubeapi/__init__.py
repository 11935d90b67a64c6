"""A simulated Kubernetes API server and the parts of a cluster around it.

``server.FakeKube`` serves objects in memory with the API's semantics (resourceVersion,
404/409/403, merge and strategic-merge patches, watches, eviction) to any real client;
``cluster`` plays what the API server alone does not: a DaemonSet controller, garbage
collector and kubelet, and each node's health and agent endpoints on its own loopback
address. The demo runs the product's controllers against it; tests use it the same way.
"""

from exporter.simulator.kubeapi.kinds import ApiError, Hold, LoggedRequest, ResourceType
from exporter.simulator.kubeapi.server import FakeKube

__all__ = ["ApiError", "FakeKube", "Hold", "LoggedRequest", "ResourceType"]
