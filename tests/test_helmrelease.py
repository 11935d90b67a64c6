"""Helm release Secrets in Helm's storage format (gzip, base64, base64 again through the API)."""

from __future__ import annotations

import base64

import pytest

from exporter import helmrelease as hr
from tests.fakekube.helm import SECRET_TYPE, release_secret


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


def test_the_fixture_writes_helms_secret_type() -> None:
    assert SECRET_TYPE == hr.SECRET_TYPE


def test_latest_deployed_ignores_superseded_and_failed_revisions() -> None:
    releases = [hr.decode_secret(release_secret("cilium", n, status=s))
                for n, s in ((1, "superseded"), (2, "deployed"), (3, "failed"))]
    latest = hr.latest_deployed(releases)
    assert latest is not None and latest.revision == 2
    assert hr.latest_deployed(releases[:1]) is None
