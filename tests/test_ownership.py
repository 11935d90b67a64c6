"""Owner detection on objects as each owner leaves them (fixtures under tests/data/owners)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter import ownership as own

FIXTURES = Path(__file__).parent / "data" / "owners"

#: fixture -> (owner, owning kind, owner_name, Helm release or None)
EXPECTED = {
    "cilium-config.helm.yaml": (own.HELM, "release", "kube-system/cilium", "cilium"),
    "cilium-config.flux-helmrelease.yaml":
        (own.FLUX, "HelmRelease", "flux-system/cilium", "kube-system-cilium"),
    "kube-proxy.flux-kustomization.yaml": (own.FLUX, "Kustomization", "flux-system/infra", None),
    "cilium-config.argocd-annotation.yaml": (own.ARGOCD, "Application", "argocd/cilium", None),
    "cilium-config.argocd-label.yaml": (own.ARGOCD, "Application", "cilium", None),
    "kube-proxy.kubeadm.yaml": (own.NONE, "", "", None),
}


def test_every_fixture_has_an_expectation() -> None:
    names = sorted(p.name for p in FIXTURES.glob("*.yaml"))
    assert names and names == sorted(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_owner_is_detected_from_its_markers(fixture: str) -> None:
    obj = yaml.safe_load((FIXTURES / fixture).read_text())
    found = own.detect_owner(obj)
    owner, kind, name, helm = EXPECTED[fixture]
    assert (found.owner, found.kind, found.owner_name) == (owner, kind, name)
    assert (found.helm.name if found.helm else None) == helm
    assert found.gitops is (owner in (own.FLUX, own.ARGOCD))
    if owner != own.NONE:
        assert found.evidence, "the deciding marker is quoted"


def test_managed_by_helm_label_alone_is_not_a_helm_release() -> None:
    obj = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}}
    assert own.detect_owner(obj).owner == own.NONE


def test_gitops_owner_wins_over_the_helm_release_it_drives() -> None:
    obj = yaml.safe_load((FIXTURES / "cilium-config.flux-helmrelease.yaml").read_text())
    described = own.detect_owner(obj).describe()
    assert described.startswith("flux HelmRelease flux-system/cilium")
    assert "Helm release kube-system/kube-system-cilium" in described


def test_helm_release_namespace_defaults_to_the_objects() -> None:
    obj = {"metadata": {"namespace": "kube-system",
                        "annotations": {"meta.helm.sh/release-name": "cilium"}}}
    assert own.detect_owner(obj).owner_name == "kube-system/cilium"


def test_no_metadata_means_no_owner() -> None:
    assert own.detect_owner({}) == own.Owner(own.NONE)
    assert own.detect_owner({}).describe().startswith("no owner")
