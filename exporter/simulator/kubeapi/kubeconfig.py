"""A kubeconfig that points a real client at the simulated API (context ``fake``, a bearer
token: the simulated server accepts any)."""

from __future__ import annotations

from pathlib import Path

import yaml

TOKEN = "fake-token"


def write_kubeconfig(path: Path, url: str, *, token: str = TOKEN,
                     namespace: str = "default") -> Path:
    """Write a kubeconfig pointing at ``url`` (context ``fake``) and return its path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                  "namespace": namespace}}],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(config))
    return path
