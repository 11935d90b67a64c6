"""The cluster-wide setting through cilium-config's owner: Helm (a new revision, with
consent), GitOps (wait for the commit), nobody (a direct patch)."""

from __future__ import annotations

from exporter.migrate.finish import GitOps, Helm, choose, with_kpr_on
from exporter.migrate.settings import MigrateSettings
from exporter.rollback.appliers import ActionRunner
from tests.fakekube.fixtures import configmap
from tests.fakekube.helm import release_secret
from tests.migrate.cluster import settings

HELM_MARKS = {"meta.helm.sh/release-name": "cilium", "meta.helm.sh/release-namespace": "kube-system"}


async def allowed() -> None:
    return None


def seed_helm(fake) -> None:
    cm = configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "false"})
    cm["metadata"]["annotations"] = dict(HELM_MARKS)
    cm["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "Helm"}
    fake.seed(cm)
    fake.seed(release_secret("cilium", 4, values={"kubeProxyReplacement": False, "debug": True}))


def runner(kube, vtime):
    return ActionRunner(kube, settings(1), clock=vtime, sleep=vtime.sleep, guard=allowed)


async def test_helm_makes_a_new_revision_with_consent(fake_kube, kube, vtime):
    seed_helm(fake_kube)
    calls, asked, described = [], [], []

    def upgrade(document, values, *, description):  # Helm's part: renders, applies cilium-config
        calls.append(values)
        described.append(description)
        fake_kube.seed(configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "true"}))
        return {"version": document["version"] + 1}

    way = await choose(kube, settings(1), MigrateSettings(), runner(kube, vtime), upgrade=upgrade,
                       confirm=lambda text: asked.append(text) or False, guard=allowed)
    assert isinstance(way, Helm)
    waiting = await way.apply()  # no consent yet: nothing happens
    assert "waiting for consent" in waiting and calls == [] and "revision 4 -> 5" in asked[0]
    way._confirm = lambda text: True
    assert await way.apply() == ""
    assert calls == [{"kubeProxyReplacement": True, "debug": True,
                      "kubeProxyReplacementHealthzBindAddr": "0.0.0.0:10256"}]
    assert described == ["kpr-exporter migrate: kubeProxyReplacement=true"]  # not the rollback's
    assert await way.apply() == "" and len(calls) == 1  # in place: nothing more


async def test_gitops_waits_for_the_commit(fake_kube, kube, vtime):
    cm = configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "false"})
    cm["metadata"]["labels"] = {"kustomize.toolkit.fluxcd.io/name": "infra",
                                "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    fake_kube.seed(cm)
    way = await choose(kube, settings(1), MigrateSettings(), runner(kube, vtime), upgrade=None,
                       confirm=None, guard=allowed)
    assert isinstance(way, GitOps)
    assert "kubeProxyReplacement: true" in await way.apply()
    fake_kube.seed(configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "true"}))
    assert await way.apply() == ""


async def test_without_an_owner_cilium_config_is_patched(fake_kube, kube, vtime):
    fake_kube.seed(configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "false"}))
    way = await choose(kube, settings(1), MigrateSettings(), runner(kube, vtime), upgrade=None,
                       confirm=None, guard=allowed)
    assert await way.apply() == ""
    data = fake_kube.get("configmaps", "cilium-config", "kube-system")["data"]
    assert data == {"kube-proxy-replacement": "true",
                    "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"}


def test_values_keep_their_type():
    assert with_kpr_on({"kubeProxyReplacement": "false"}, "x")["kubeProxyReplacement"] == "true"
    assert with_kpr_on({}, "x")["kubeProxyReplacement"] is True
