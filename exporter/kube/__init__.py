"""Kubernetes access: the client wrapper and its errors, and the watchers that feed the
datapath tracker and the backend map. Only this package imports ``kubernetes``."""
