"""KubeClient against the fake API server (real ``kubernetes`` client underneath).

Matrix:
- configuration: explicit kubeconfig, $KUBECONFIG, nothing usable -> KubeConfigError
- CRUD on built-in and custom resources; default patch type per resource kind
- errors: NotFound (object, unserved version), Conflict (stale write, already exists),
  Forbidden with verb/resource/namespace/name/server message, Invalid, Unavailable
  (injected 503, server gone); never a library exception
- eviction: the pods/eviction subresource with a uid precondition; a budget's 429 is
  EvictionRefused (an Unavailable), then Conflict, NotFound, Forbidden
- watch: SYNC then changes, relist on 410, periodic resync, retry when unavailable,
  Forbidden raised, stream closed when the consumer stops
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from exporter.kube import errors
from exporter.kube.client import MERGE_PATCH, STRATEGIC_MERGE, SYNC, Backoff, load_api_client
from exporter.kube.resources import (
    CILIUM_NODE_CONFIGS,
    CILIUM_NODE_CONFIGS_V2ALPHA1,
    CONFIGMAPS,
    DAEMONSETS,
    NODES,
    PODS,
)
from tests.fakekube.fixtures import cilium_node_config, configmap, daemonset, node, pod

NS = "kube-system"
FAST = Backoff(0.01, 0.05)


def assert_own_error(exc: BaseException) -> None:
    """Only our error types cross the boundary; the library error is the cause."""
    assert type(exc).__module__ == "exporter.kube.errors"


async def next_event(events, timeout: float = 5.0):
    async with asyncio.timeout(timeout):
        return await anext(events)


# --- configuration -------------------------------------------------------------------


def test_explicit_kubeconfig_and_kubeconfig_env(fake_kube, tmp_path):
    assert load_api_client(fake_kube.kubeconfig, environ={}).configuration.host == fake_kube.url
    from_env = load_api_client(environ={"KUBECONFIG": fake_kube.kubeconfig, "HOME": "/nowhere"})
    assert from_env.configuration.host == fake_kube.url


def test_no_usable_configuration_is_a_kube_config_error(tmp_path):
    with pytest.raises(errors.KubeConfigError) as err:
        load_api_client(environ={"HOME": str(tmp_path)})
    assert_own_error(err.value)
    assert ".kube/config" in str(err.value)


# --- requests ------------------------------------------------------------------------


async def test_create_get_replace_patch_delete_a_configmap(kube, fake_kube):
    created = await kube.create(CONFIGMAPS, configmap("cfg", NS, {"a": "1"}), NS)
    assert created["metadata"]["resourceVersion"]
    got = await kube.get(CONFIGMAPS, "cfg", NS)
    got["data"]["a"] = "2"
    replaced = await kube.replace(CONFIGMAPS, got)
    assert replaced["data"] == {"a": "2"}
    patched = await kube.patch(CONFIGMAPS, "cfg", {"data": {"b": "3"}}, NS,
                               patch_type=STRATEGIC_MERGE)
    assert patched["data"] == {"a": "2", "b": "3"}
    assert fake_kube.requests[-1].content_type == "application/strategic-merge-patch+json"
    await kube.delete(CONFIGMAPS, "cfg", NS)
    assert fake_kube.get("configmaps", "cfg", NS) is None
    writes = [r for r in fake_kube.requests if r.method in ("POST", "PUT", "PATCH")]
    assert len(writes) == 3
    assert {r.query.get("fieldManager") for r in writes} == {"kpr-exporter"}, \
        "every write names this product as its field manager"


async def test_the_patch_type_is_named_by_the_caller_and_lists_filter(kube, fake_kube):
    fake_kube.seed(cilium_node_config("kpr", NS, {"matchLabels": {"x": "y"}},
                                      {"kube-proxy-replacement": "true", "other": "1"}))
    patched = await kube.patch(CILIUM_NODE_CONFIGS, "kpr",
                               {"spec": {"defaults": {"other": None}}}, NS,
                               patch_type=MERGE_PATCH)
    assert patched["spec"]["defaults"] == {"kube-proxy-replacement": "true"}
    assert fake_kube.requests[-1].content_type == "application/merge-patch+json"
    with pytest.raises(ValueError, match="unknown patch type"):
        await kube.patch(CILIUM_NODE_CONFIGS, "kpr", {}, NS,
                         patch_type="application/json-patch+json")
    # Kubernetes refuses strategic merge for custom resources (415); the client says so.
    with pytest.raises(errors.KubeError, match="415|UnsupportedMediaType|unsupported"):
        await kube.patch(CILIUM_NODE_CONFIGS, "kpr", {"spec": {}}, NS,
                         patch_type=STRATEGIC_MERGE)

    for name, node_name in [("kp-a", "n1"), ("kp-b", "n2")]:
        fake_kube.seed(pod(name, NS, node_name, {"k8s-app": "kube-proxy"}))
    fake_kube.seed(node("n1"))
    listing = await kube.list(PODS, NS, label_selector="k8s-app=kube-proxy",
                              field_selector="spec.nodeName=n2")
    assert [p["metadata"]["name"] for p in listing.items] == ["kp-b"]
    assert listing.resource_version == str(fake_kube.resource_version)
    assert [n["metadata"]["name"] for n in (await kube.list(NODES)).items] == ["n1"]
    assert len((await kube.list(PODS)).items) == 2  # all namespaces


async def test_not_found_for_objects_and_for_unserved_versions(kube, fake_kube):
    with pytest.raises(errors.NotFound) as err:
        await kube.get(CONFIGMAPS, "missing", NS)
    assert_own_error(err.value)
    assert (err.value.verb, err.value.resource, err.value.name) == ("get", "configmaps", "missing")
    assert err.value.server_message == 'configmaps "missing" not found'

    fake_kube.unserve("cilium.io", "v2alpha1")
    with pytest.raises(errors.NotFound) as err:
        await kube.list(CILIUM_NODE_CONFIGS_V2ALPHA1, NS)
    assert err.value.server_message == "404 page not found"


async def test_conflicts_for_stale_writes_and_existing_names(kube, fake_kube):
    created = await kube.create(CONFIGMAPS, configmap("cfg", NS, {"a": "1"}))
    await kube.patch(CONFIGMAPS, "cfg", {"data": {"a": "2"}}, NS, patch_type=MERGE_PATCH)
    with pytest.raises(errors.Conflict) as err:
        await kube.replace(CONFIGMAPS, created)
    assert_own_error(err.value)
    assert not err.value.already_exists
    with pytest.raises(errors.Conflict) as err:
        await kube.delete(CONFIGMAPS, "cfg", NS,
                          resource_version=created["metadata"]["resourceVersion"])
    with pytest.raises(errors.Conflict) as err:
        await kube.create(CONFIGMAPS, configmap("cfg", NS, {}))
    assert err.value.already_exists


async def test_rbac_denial_is_forbidden_with_verb_and_resource(kube, fake_kube):
    fake_kube.seed(configmap("cilium-config", NS, {"kube-proxy-replacement": "false"}))
    fake_kube.deny("patch", "configmaps", NS)
    with pytest.raises(errors.Forbidden) as err:
        await kube.patch(CONFIGMAPS, "cilium-config", {"data": {"kube-proxy-replacement": "true"}},
                         NS, patch_type=MERGE_PATCH)
    exc = err.value
    assert_own_error(exc)
    assert (exc.verb, exc.resource, exc.namespace, exc.name, exc.status) == (
        "patch", "configmaps", NS, "cilium-config", 403)
    assert 'cannot patch resource "configmaps"' in exc.server_message
    assert str(exc).startswith(
        'forbidden: not allowed to patch configmaps "cilium-config" in namespace kube-system')

    fake_kube.deny("list", "daemonsets")
    with pytest.raises(errors.Forbidden) as err:
        await kube.list(DAEMONSETS)
    assert (err.value.verb, err.value.resource) == ("list", "daemonsets.apps")


async def test_bad_requests_are_invalid(kube, fake_kube):
    with pytest.raises(errors.Invalid) as err:
        await kube.list(CONFIGMAPS, NS, field_selector="spec.nodeName=n1")
    assert_own_error(err.value)
    fake_kube.seed(configmap("cfg", NS, {"a": "1"}))
    with pytest.raises(errors.Invalid):
        await kube.patch(CONFIGMAPS, "cfg", {"metadata": {"name": "renamed"}}, NS,
                         patch_type=MERGE_PATCH)  # a name is immutable: 422


async def test_server_errors_and_a_dead_server_are_unavailable(kube, fake_kube):
    fake_kube.seed(daemonset("kube-proxy", NS, {"k8s-app": "kube-proxy"}))
    fake_kube.fail("get", "daemonsets", status=503)
    with pytest.raises(errors.Unavailable) as err:
        await kube.get(DAEMONSETS, "kube-proxy", NS)
    assert_own_error(err.value)
    assert (await kube.get(DAEMONSETS, "kube-proxy", NS))["kind"] == "DaemonSet"

    fake_kube.stop()
    with pytest.raises(errors.Unavailable) as err:
        await kube.get(DAEMONSETS, "kube-proxy", NS)
    assert_own_error(err.value)
    assert "API unreachable" in str(err.value)


async def test_eviction_goes_through_the_subresource_and_a_budget_can_refuse_it(kube, fake_kube):
    for name in ("web-1", "web-2"):
        fake_kube.seed(pod(name, "shop", "n1", {"app": "web"}))
    fake_kube.budget("web", "shop", {"app": "web"}, allowed=1)
    uid = fake_kube.get("pods", "web-1", "shop")["metadata"]["uid"]
    fake_kube.clear_requests()
    await kube.evict("web-1", "shop", uid=uid)
    (request,) = fake_kube.requests
    assert (request.method, request.path) == ("POST", "/api/v1/namespaces/shop/pods/web-1/eviction")
    assert request.body == {"apiVersion": "policy/v1", "kind": "Eviction",
                            "metadata": {"name": "web-1", "namespace": "shop"},
                            "deleteOptions": {"kind": "DeleteOptions", "apiVersion": "v1",
                                              "preconditions": {"uid": uid}}}
    assert fake_kube.get("pods", "web-1", "shop") is None
    with pytest.raises(errors.EvictionRefused) as err:
        await kube.evict("web-2", "shop")
    assert_own_error(err.value)
    assert isinstance(err.value, errors.Unavailable) and err.value.status == 429
    assert "PodDisruptionBudget allows no disruption" in str(err.value)
    assert "violate the pod's disruption budget" in err.value.server_message
    assert fake_kube.get("pods", "web-2", "shop") is not None
    with pytest.raises(errors.Conflict):  # another pod of that name now: not evicted
        await kube.evict("web-2", "shop", uid="the-old-one")
    with pytest.raises(errors.NotFound):
        await kube.evict("web-1", "shop")
    fake_kube.deny("create", "pods/eviction")
    with pytest.raises(errors.Forbidden) as err:
        await kube.evict("web-2", "shop")
    assert err.value.verb == "evict" and 'pods/eviction' in err.value.server_message


# --- watch ---------------------------------------------------------------------------


async def test_watch_syncs_then_follows_changes(kube, fake_kube):
    fake_kube.seed(configmap("one", NS, {}))
    events = kube.watch(CONFIGMAPS, NS, backoff=FAST)
    try:
        first = await next_event(events)
        assert first.type == SYNC
        assert [o["metadata"]["name"] for o in first.objects] == ["one"]
        pending = asyncio.ensure_future(next_event(events))  # opens the watch stream
        assert await asyncio.to_thread(fake_kube.wait_for, lambda: fake_kube.open_watches == 1)
        fake_kube.seed(configmap("two", NS, {}))
        fake_kube.seed(configmap("one", NS, {"k": "v"}))
        fake_kube.remove("configmaps", "two", NS)
        seen = [await pending, await next_event(events), await next_event(events)]
        assert [(e.type, e.object["metadata"]["name"]) for e in seen] == [
            ("ADDED", "two"), ("MODIFIED", "one"), ("DELETED", "two")]
    finally:
        await events.aclose()
    assert await asyncio.to_thread(fake_kube.wait_for, lambda: fake_kube.open_watches == 0)


async def test_watch_relists_when_its_resource_version_is_gone(kube, fake_kube):
    fake_kube.seed(configmap("existing", NS, {}))
    hold = fake_kube.hold("watch", "configmaps")
    events = kube.watch(CONFIGMAPS, NS, backoff=FAST)
    try:
        assert len((await next_event(events)).objects) == 1
        pending = asyncio.ensure_future(next_event(events))
        assert await asyncio.to_thread(hold.wait_arrived)  # the watch is in flight
        fake_kube.seed(configmap("missed", NS, {}))
        fake_kube.compact()  # the listing's resourceVersion is now too old
        hold.release()
        event = await pending
        assert event.type == SYNC
        assert [o["metadata"]["name"] for o in event.objects] == ["existing", "missed"]
    finally:
        await events.aclose()
    lists = [r for r in fake_kube.requests if "watch" not in r.query]
    assert len(lists) == 2


async def test_watch_resyncs_after_the_resync_period(kube, fake_kube, monotonic):
    events = kube.watch(CONFIGMAPS, NS, resync_seconds=60, backoff=FAST)
    try:
        assert (await next_event(events)).type == SYNC
        pending = asyncio.ensure_future(next_event(events))
        assert await asyncio.to_thread(fake_kube.wait_for, lambda: fake_kube.open_watches == 1)
        lists_before = sum(1 for r in fake_kube.requests if "watch" not in r.query)
        monotonic.advance(61)
        fake_kube.drop_watches()  # stands in for the server ending the stream at timeoutSeconds
        assert (await pending).type == SYNC
        lists_after = sum(1 for r in fake_kube.requests if "watch" not in r.query)
        assert lists_after == lists_before + 1
    finally:
        await events.aclose()


async def test_watch_retries_an_unavailable_api(kube, fake_kube):
    fake_kube.seed(configmap("one", NS, {}))
    fake_kube.fail("list", "configmaps", status=503, times=2)
    events = kube.watch(CONFIGMAPS, NS, backoff=FAST)
    try:
        first = await next_event(events)
        assert first.type == SYNC and len(first.objects) == 1
    finally:
        await events.aclose()
    lists = [r for r in fake_kube.requests if r.method == "GET" and "watch" not in r.query]
    assert len(lists) == 3


async def test_watch_raises_forbidden(kube, fake_kube):
    fake_kube.deny("watch", "pods", NS)
    events = kube.watch(PODS, NS, backoff=FAST)
    try:
        assert (await next_event(events)).type == SYNC  # list is allowed
        with pytest.raises(errors.Forbidden) as err:
            await next_event(events)
    finally:
        with contextlib.suppress(errors.KubeError):
            await events.aclose()
    assert (err.value.verb, err.value.resource, err.value.namespace) == ("watch", "pods", NS)


async def test_namespace_is_required_for_namespaced_writes(kube):
    with pytest.raises(ValueError):
        await kube.get(CONFIGMAPS, "x")
    with pytest.raises(ValueError):
        await kube.patch(CONFIGMAPS, "x", {}, None, patch_type=MERGE_PATCH)


def test_client_from_settings(fake_kube, tmp_path):
    from exporter.kube.client import client_from_settings
    from exporter.kube.settings import KubeSettings

    nothing = {"HOME": str(tmp_path)}
    assert client_from_settings(KubeSettings(enabled="false",
                                             kubeconfig=fake_kube.kubeconfig)) is None
    assert client_from_settings(KubeSettings(enabled="auto"), environ=nothing) is None
    with pytest.raises(errors.KubeConfigError):
        client_from_settings(KubeSettings(enabled="true"), environ=nothing)
    with pytest.raises(errors.KubeConfigError):  # an explicit path must work, even on auto
        client_from_settings(KubeSettings(kubeconfig=str(tmp_path / "missing")))
    found = client_from_settings(KubeSettings(kubeconfig=fake_kube.kubeconfig))
    assert found is not None and found.host == fake_kube.url


def test_settings_problems():
    from exporter.config_constraints import problems as check
    from exporter.kube.settings import KubeSettings

    assert check(KubeSettings(), "kube") == []
    assert check(KubeSettings(kube_proxy_selector="k8s-app in (kube-proxy,kp),tier"), "kube") == []
    found = check(KubeSettings(enabled="maybe", agent_selector="k8s-app=(", resync_seconds=0,
                               retry_min_seconds=5, retry_max_seconds=1,
                               backend_map_max_entries=0, cilium_namespace=" "), "kube")
    assert found == [
        "kube.enabled: 'maybe' is not one of auto, true, false",
        "kube.cilium_namespace must not be empty",
        "kube.resync_seconds must be positive, got 0",
        "kube.backend_map_max_entries must be at least 1, got 0",
        "kube.agent_selector 'k8s-app=(' is not a label selector",
        "kube.retry_max_seconds must not be below kube.retry_min_seconds",
    ]
