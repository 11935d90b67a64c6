"""Helm release records in Helm's real storage format, for seeding the simulated API."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

SECRET_TYPE = "helm.sh/release.v1"


CONFIG_TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: cilium-config
  namespace: {{ .Release.Namespace }}
data:
  kube-proxy-replacement: {{ .Values.kubeProxyReplacement | quote }}
  k8s-service-port: {{ .Values.k8sServicePort | quote }}
"""


def stored_chart(version: str = "1.18.3") -> dict[str, Any]:
    """A small cilium chart as Helm stores it in a release record (file data base64)."""
    def file(name: str, text: str) -> dict[str, str]:
        return {"name": name, "data": base64.b64encode(text.encode()).decode()}
    return {"metadata": {"apiVersion": "v2", "name": "cilium", "version": version,
                         "appVersion": version, "description": "eBPF networking"},
            "templates": [file("templates/cilium-configmap.yaml", CONFIG_TEMPLATE)],
            "files": [file("files/README.txt", "cilium\n")],
            "values": {"kubeProxyReplacement": False, "k8sServicePort": 6443},
            "schema": None}


def release_secret(name: str, revision: int, *, status: str = "deployed",
                   values: dict[str, Any] | None = None, compress: bool = True,
                   namespace: str = "kube-system", chart_version: str = "1.18.3") -> dict[str, Any]:
    """A Secret exactly as the API returns Helm's release record: data.release is base64 of
    Helm's own base64 of gzip of the release JSON."""
    doc = {"name": name, "namespace": namespace, "version": revision,
           "info": {"status": status},
           "chart": stored_chart(chart_version),
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
