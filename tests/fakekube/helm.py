"""Helm release records in Helm's real storage format, for seeding the fake API."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

SECRET_TYPE = "helm.sh/release.v1"


def release_secret(name: str, revision: int, *, status: str = "deployed",
                   values: dict[str, Any] | None = None, compress: bool = True,
                   namespace: str = "kube-system", chart_version: str = "1.18.3") -> dict[str, Any]:
    """A Secret exactly as the API returns Helm's release record: data.release is base64 of
    Helm's own base64 of gzip of the release JSON."""
    doc = {"name": name, "namespace": namespace, "version": revision,
           "info": {"status": status},
           "chart": {"metadata": {"name": "cilium", "version": chart_version,
                                  "appVersion": chart_version},
                     "values": {"kubeProxyReplacement": False}},
           "config": values if values is not None else {"kubeProxyReplacement": True},
           "manifest": "---\n"}
    stored = json.dumps(doc).encode()
    if compress:
        stored = gzip.compress(stored)
    helm_string = base64.b64encode(stored)
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "status": status,
                                    "version": str(revision)}},
            "data": {"release": base64.b64encode(helm_string).decode()}}
