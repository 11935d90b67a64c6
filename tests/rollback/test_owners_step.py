"""A rollback on objects each owner manages: GitOps owners are stopped before any change.

Against the fake API with the test playing the DaemonSet controller: Flux HelmRelease and
Argo CD Application owners are suspended / lose automated sync, and the request log shows
that happened before cilium-config was patched; a Helm-only owner gets no step, only the
note naming `rollback --persist`; an owner that cannot be suspended stops the rollback
before anything changed.
"""

from __future__ import annotations

from exporter.rollback.roles import FAILED, SUCCEEDED, Scope, Trigger
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.owners_step import owner_actions, written_objects
from exporter.rollback.actions import DisableArgoSync, SetConfigValues, SuspendFlux
from exporter.ownership import detect_owner
from tests.fakekube.fixtures import configmap

from .cluster import seed_full, settings
from .test_executor import planner

FLUX_MARKS = {"labels": {"helm.toolkit.fluxcd.io/name": "cilium",
                         "helm.toolkit.fluxcd.io/namespace": "flux-system"},
              "annotations": {"meta.helm.sh/release-name": "kube-system-cilium",
                              "meta.helm.sh/release-namespace": "kube-system"}}
ARGO_MARKS = {"annotations": {
    "argocd.argoproj.io/tracking-id": "argocd_cilium:/ConfigMap:kube-system/cilium-config"}}
HELM_MARKS = {"annotations": {"meta.helm.sh/release-name": "cilium",
                              "meta.helm.sh/release-namespace": "kube-system"}}


def owned_cilium_config(fake, marks: dict) -> None:
    cm = configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "true"})
    for key, values in marks.items():
        cm["metadata"].setdefault(key, {}).update(values)
    fake.seed(cm)


def patch_order(fake) -> list[str]:
    return [r.path.rsplit("/", 2)[-2] + "/" + r.path.rsplit("/", 1)[-1]
            for r in fake.requests if r.method == "PATCH"]


async def rollback(fake, kube, controller, vtime):
    controller.reconcile()
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.cluster([]), Trigger("test", ("f1",)))
    fake.clear_requests()
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    return plan, result


async def test_flux_helmrelease_is_suspended_before_the_change(fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    owned_cilium_config(fake_kube, FLUX_MARKS)
    fake_kube.seed({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                    "metadata": {"name": "cilium", "namespace": "flux-system"},
                    "spec": {"interval": "10m", "chart": {"spec": {"chart": "cilium"}}}})
    plan, result = await rollback(fake_kube, kube, controller, vtime)
    assert result.status == SUCCEEDED, result.message
    assert isinstance(plan.steps[0].actions[0], SuspendFlux)
    assert "flux resume helmrelease cilium -n flux-system" in plan.render()
    assert fake_kube.get("helmreleases", "cilium", "flux-system")["spec"]["suspend"] is True
    order = patch_order(fake_kube)
    assert order.index("helmreleases/cilium") < order.index("configmaps/cilium-config"), order


async def test_argo_application_loses_automated_sync_first(fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    owned_cilium_config(fake_kube, ARGO_MARKS)
    fake_kube.seed({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                    "metadata": {"name": "cilium", "namespace": "argocd"},
                    "spec": {"project": "default", "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["ServerSideApply=true"]}}})
    plan, result = await rollback(fake_kube, kube, controller, vtime)
    assert result.status == SUCCEEDED, result.message
    assert isinstance(plan.steps[0].actions[0], DisableArgoSync)
    policy = fake_kube.get("applications", "cilium", "argocd")["spec"]["syncPolicy"]
    assert "automated" not in policy and policy["syncOptions"] == ["ServerSideApply=true"]
    order = patch_order(fake_kube)
    assert order.index("applications/cilium") < order.index("configmaps/cilium-config"), order


async def test_helm_alone_gets_a_note_not_a_step(fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    owned_cilium_config(fake_kube, HELM_MARKS)
    plan, result = await rollback(fake_kube, kube, controller, vtime)
    assert result.status == SUCCEEDED and plan.steps[0].name == "kube-proxy"
    assert "kpr-exporter rollback --persist" in plan.render()


async def test_an_owner_that_cannot_be_suspended_stops_before_any_change(
        fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    owned_cilium_config(fake_kube, FLUX_MARKS)  # the HelmRelease itself is missing: 404
    plan, result = await rollback(fake_kube, kube, controller, vtime)
    assert result.status == FAILED
    assert fake_kube.get("configmaps", "cilium-config", "kube-system")["data"][
        "kube-proxy-replacement"] == "true", "nothing changed"


def test_one_suspension_per_owner_whatever_it_owns() -> None:
    s = settings()
    owner = detect_owner({"metadata": FLUX_MARKS})
    written = written_objects([SetConfigValues("kube-system", "cilium-config", {"a": "b"})], s)
    owners = {label: owner for label in (*written, "CiliumNodeConfig kube-system/kpr")}
    actions, notes = owner_actions(owners, [*written, "CiliumNodeConfig kube-system/kpr"], s)
    assert actions == [SuspendFlux("HelmRelease", "flux-system", "cilium",
                                   ("ConfigMap kube-system/cilium-config",
                                    "CiliumNodeConfig kube-system/kpr"))]
    assert len(notes) == 1
