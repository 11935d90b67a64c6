"""kpr_config_owner_info from watched objects: each owner kind, absent objects, refused reads."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from exporter.kube.owners_feed import KubeProxyObjects, OwnerCollector, observed_in, owner_rows
from exporter.kube.settings import KubeSettings
from tests.fakekube.fixtures import configmap

OWNERS = Path(__file__).parents[1] / "data" / "owners"
SETTINGS = KubeSettings(retry_min_seconds=0.01, retry_max_seconds=0.05)


def fixture(name: str) -> dict:
    return yaml.safe_load((OWNERS / name).read_text())


async def watched(kube, objects: KubeProxyObjects):
    tasks = [asyncio.create_task(m.run()) for m in objects.mirrors]
    async with asyncio.timeout(5):
        await asyncio.gather(*(m.synced.wait() for m in objects.mirrors))
    return tasks


async def stop(tasks) -> None:
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_owner_info_for_the_kube_proxy_objects(fake_kube, kube):
    fake_kube.seed(fixture("kube-proxy.flux-kustomization.yaml"))
    fake_kube.seed(configmap("kube-proxy", "kube-system", {"config.conf": "mode: iptables"}))
    fake_kube.seed(configmap("unrelated", "kube-system", {}))
    objects = KubeProxyObjects(kube, SETTINGS, namespace="kube-system", daemonset="kube-proxy",
                               configmap="kube-proxy")
    tasks = await watched(kube, objects)
    try:
        registry = CollectorRegistry()
        registry.register(OwnerCollector([objects.observed]))
        value = registry.get_sample_value
        assert value("kpr_config_owner_info", {"object": "DaemonSet kube-system/kube-proxy",
                                               "owner": "flux", "owner_name": "flux-system/infra"}) == 1
        assert value("kpr_config_owner_info", {"object": "ConfigMap kube-system/kube-proxy",
                                               "owner": "none", "owner_name": ""}) == 1
        samples = [s for m in registry.collect() for s in m.samples]
        assert len(samples) == 2, "one series per watched object, nothing else"
    finally:
        await stop(tasks)


async def test_unreadable_objects_are_unknown_not_unowned(fake_kube, kube):
    fake_kube.deny("list", "daemonsets", "kube-system")
    objects = KubeProxyObjects(kube, SETTINGS, namespace="kube-system", daemonset="kube-proxy",
                               configmap="kube-proxy")
    tasks = await watched(kube, objects)
    try:
        rows = owner_rows(objects.observed())
        assert rows == [("DaemonSet kube-system/kube-proxy", "unknown", "")], \
            "the absent ConfigMap is left out; the refused DaemonSet is unknown"
    finally:
        await stop(tasks)


def test_every_object_of_a_mirror_is_labelled() -> None:
    class Seen:  # a mirror's observable surface
        class resource:  # noqa: N801
            kind = "CiliumNodeConfig"
        namespace = "kube-system"
        available = True
        objects = {("kube-system", "b"): fixture("cilium-config.helm.yaml"),
                   ("kube-system", "a"): fixture("cilium-config.argocd-label.yaml")}

    rows = owner_rows(observed_in(Seen, lambda o: o["metadata"]["name"]))  # type: ignore[arg-type]
    assert [r[1] for r in rows] == ["argocd", "helm"]
    Seen.available = False
    assert owner_rows(observed_in(Seen, str)) == [("CiliumNodeConfig in kube-system", "unknown", "")]  # type: ignore[arg-type]
