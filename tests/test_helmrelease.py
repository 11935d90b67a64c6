"""Helm release Secrets in Helm's storage format (gzip, base64, base64 again through the API)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from exporter import helmrelease as hr


def release_secret(name: str, revision: int, *, status: str = "deployed",
                   values: dict[str, Any] | None = None, compress: bool = True,
                   namespace: str = "kube-system") -> dict[str, Any]:
    """A Secret exactly as the API returns Helm's release record."""
    doc = {"name": name, "namespace": namespace, "version": revision,
           "info": {"status": status},
           "chart": {"metadata": {"name": "cilium", "version": "1.18.3", "appVersion": "1.18.3"},
                     "values": {"kubeProxyReplacement": False}},
           "config": values if values is not None else {"kubeProxyReplacement": True},
           "manifest": "---\n"}
    stored = json.dumps(doc).encode()
    if compress:
        stored = gzip.compress(stored)
    helm_string = base64.b64encode(stored)  # what Helm puts in data.release
    return {"apiVersion": "v1", "kind": "Secret", "type": hr.SECRET_TYPE,
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "status": status,
                                    "version": str(revision)}},
            "data": {"release": base64.b64encode(helm_string).decode()}}


@pytest.mark.parametrize("compress", [True, False])
def test_release_is_decoded_with_its_user_values(compress: bool) -> None:
    release = hr.decode_secret(release_secret("cilium", 7, compress=compress))
    assert release.summary() == {"name": "cilium", "namespace": "kube-system", "revision": 7,
                                 "status": "deployed", "chart": "cilium",
                                 "chartVersion": "1.18.3", "appVersion": "1.18.3"}
    assert release.values == {"kubeProxyReplacement": True}, "config, not the chart's defaults"


@pytest.mark.parametrize("data", [{}, {"release": ""}, {"release": "%%%"},
                                  {"release": base64.b64encode(b"bm90IGpzb24=").decode()},
                                  {"release": base64.b64encode(base64.b64encode(b"[1]")).decode()}])
def test_garbage_is_a_format_error_naming_the_secret(data: dict[str, str]) -> None:
    secret = {"metadata": {"name": "sh.helm.release.v1.cilium.v2"}, "data": data}
    with pytest.raises(hr.ReleaseFormatError, match=r"sh\.helm\.release\.v1\.cilium\.v2"):
        hr.decode_secret(secret)


def test_revision_comes_from_the_secret_name_of_that_release_only() -> None:
    assert hr.secret_revision(release_secret("cilium", 12), "cilium") == 12
    assert hr.secret_revision(release_secret("cilium-extra", 3), "cilium") is None
    assert hr.secret_revision({"metadata": {"name": "other"}}, "cilium") is None


def test_latest_deployed_ignores_superseded_and_failed_revisions() -> None:
    releases = [hr.decode_secret(release_secret("cilium", n, status=s))
                for n, s in ((1, "superseded"), (2, "deployed"), (3, "failed"))]
    latest = hr.latest_deployed(releases)
    assert latest is not None and latest.revision == 2
    assert hr.latest_deployed(releases[:1]) is None
