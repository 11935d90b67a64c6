"""The fake API server, driven by the real ``kubernetes`` client through its kubeconfig.

Matrix:
- resourceVersion: global counter over all writes; list carries the current one
- 404 on a missing object, plain "404 page not found" for an unserved group/version
- 409 AlreadyExists on create, 409 Conflict on stale update / patch / delete precondition
- 403 from the deny list, Status naming verb, resource and namespace; scoped by namespace
- injected faults (503 once, then normal); holds that park one client (by bearer token)
- patches: merge patch; strategic merge of maps on built-in kinds; 415 for strategic merge
  on a custom resource, and for what the fake does not implement (JSON patch, strategic
  merge of lists or with directives), leaving the object unchanged
- list selectors: label (equality and set based), field spec.nodeName; 400 on an unknown field
- watch: replay from a resourceVersion, initial ADDED without one, selector transitions,
  410 Expired for a compacted resourceVersion, streams ended by drop_watches
- status subresource semantics, discovery through the dynamic client, the request log
- eviction through the real client: no budget deletes; a budget is spent, then 429 with
  its DisruptionBudget cause and nothing deleted; pending and finished pods pass; 404, 409
  on a uid precondition, 400 on a name mismatch, 405 on GET, 500 for two budgets, 403 denied
"""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from tests.fakekube.fixtures import (
    api_client,
    cilium_node_config,
    configmap,
    daemonset,
    node,
    pod,
    write_kubeconfig,
)

NS = "kube-system"


@pytest.fixture
def api(fake_kube):
    api = api_client(fake_kube)
    yield api
    api.close()


def status_of(err: client.ApiException) -> dict:
    return json.loads(err.body)


def raw(api, method: str, path: str, body=None, content_type: str = "application/json",
        query: list | None = None):
    """One raw request through the client's REST layer: (status, parsed body or text)."""
    request = api.param_serialize(method, path, query_params=query or [],
                                  header_params={"Content-Type": content_type}, body=body,
                                  auth_settings=["BearerToken"])
    response = api.call_api(*request, _request_timeout=(5, 5))
    data = response.read().decode()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def watch_lines(api, path: str, count: int, **query):
    """Open a watch stream and read ``count`` events (fails rather than hangs)."""
    params = [("watch", "1"), *((k, str(v)) for k, v in query.items())]
    request = api.param_serialize("GET", path, query_params=params, auth_settings=["BearerToken"])
    response = api.call_api(*request, _request_timeout=(5, 5)).response
    events = []
    buffer = b""
    try:
        for chunk in response.stream(1024):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                events.append(json.loads(line))
                if len(events) == count:
                    return events
        return events
    finally:
        response.release_conn()


def test_every_write_takes_the_next_global_resource_version(fake_kube, api):
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(NS, configmap("a", NS, {"k": "1"}))
    second = core.create_node(node("n1"))
    patched = core.patch_namespaced_config_map("a", NS, {"data": {"k": "2"}})
    assert [int(o.metadata.resource_version) for o in (first, second, patched)] == [1, 2, 3]
    listed = core.list_namespaced_config_map(NS)
    assert listed.metadata.resource_version == "3"
    assert fake_kube.resource_version == 3


def test_missing_object_is_404_and_unserved_version_is_page_not_found(fake_kube, api):
    core = client.CoreV1Api(api)
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_config_map("nope", NS)
    assert err.value.status == 404
    assert status_of(err.value)["reason"] == "NotFound"
    assert status_of(err.value)["message"] == 'configmaps "nope" not found'

    fake_kube.unserve("cilium.io", "v2alpha1")
    status, body = raw(api, "GET", f"/apis/cilium.io/v2alpha1/namespaces/{NS}/ciliumnodeconfigs")
    assert (status, body) == (404, "404 page not found\n")
    status, _ = raw(api, "GET", f"/apis/cilium.io/v2/namespaces/{NS}/ciliumnodeconfigs")
    assert status == 200


def test_conflicts_on_existing_create_stale_update_and_stale_delete(fake_kube, api):
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(NS, configmap("cfg", NS, {"k": "1"}))
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map(NS, configmap("cfg", NS, {"k": "1"}))
    assert (err.value.status, status_of(err.value)["reason"]) == (409, "AlreadyExists")

    stale = created.metadata.resource_version
    core.patch_namespaced_config_map("cfg", NS, {"data": {"k": "2"}})
    body = configmap("cfg", NS, {"k": "3"})
    body["metadata"]["resourceVersion"] = stale
    with pytest.raises(client.ApiException) as err:
        core.replace_namespaced_config_map("cfg", NS, body)
    assert (err.value.status, status_of(err.value)["reason"]) == (409, "Conflict")
    assert fake_kube.get("configmaps", "cfg", NS)["data"] == {"k": "2"}

    body["metadata"]["resourceVersion"] = fake_kube.get("configmaps", "cfg", NS)["metadata"][
        "resourceVersion"]
    assert core.replace_namespaced_config_map("cfg", NS, body).data == {"k": "3"}

    status, reply = raw(api, "PATCH", f"/api/v1/namespaces/{NS}/configmaps/cfg",
                        {"metadata": {"resourceVersion": stale}, "data": {"k": "4"}},
                        "application/merge-patch+json")
    assert (status, reply["reason"]) == (409, "Conflict")
    status, reply = raw(api, "DELETE", f"/api/v1/namespaces/{NS}/configmaps/cfg",
                        {"preconditions": {"resourceVersion": stale}})
    assert status == 409
    assert fake_kube.get("configmaps", "cfg", NS) is not None


def test_denied_verb_answers_403_naming_verb_resource_and_namespace(fake_kube, api):
    core = client.CoreV1Api(api)
    fake_kube.seed(configmap("cilium-config", NS, {"kube-proxy-replacement": "false"}))
    fake_kube.seed(configmap("cilium-config", "other", {}))
    fake_kube.deny("patch", "configmaps", NS)
    with pytest.raises(client.ApiException) as err:
        core.patch_namespaced_config_map("cilium-config", NS, {"data": {"x": "y"}})
    status = status_of(err.value)
    assert err.value.status == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'configmaps "cilium-config" is forbidden: User "system:serviceaccount:kube-system:'
        'kpr-exporter" cannot patch resource "configmaps" in API group "" in the namespace '
        '"kube-system"')
    assert status["details"] == {"kind": "configmaps", "name": "cilium-config"}
    core.patch_namespaced_config_map("cilium-config", "other", {"data": {"x": "y"}})
    core.read_namespaced_config_map("cilium-config", NS)  # other verbs still allowed

    fake_kube.deny("list", "ciliumnodeconfigs")
    status_code, body = raw(api, "GET", "/apis/cilium.io/v2/ciliumnodeconfigs")
    assert status_code == 403
    assert body["message"].endswith(
        'cannot list resource "ciliumnodeconfigs" in API group "cilium.io" at the cluster scope')

    fake_kube.allow_all()
    core.patch_namespaced_config_map("cilium-config", NS, {"data": {"x": "y"}})


def test_injected_fault_answers_once_then_normally(fake_kube, api):
    core = client.CoreV1Api(api)
    fake_kube.seed(configmap("cfg", NS, {}))
    fake_kube.fail("get", "configmaps", status=503, message="etcd is sad")
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_config_map("cfg", NS)
    assert (err.value.status, status_of(err.value)["message"]) == (503, "etcd is sad")
    assert core.read_namespaced_config_map("cfg", NS).metadata.name == "cfg"


def test_a_hold_for_one_token_parks_only_that_client(fake_kube, api, tmp_path):
    from kubernetes import config

    fake_kube.seed(configmap("cfg", NS, {}))
    other = config.new_client_from_config(config_file=str(
        write_kubeconfig(tmp_path / "other", fake_kube.url, token="other-token")))
    hold = fake_kube.hold("*", "*", token="other-token")
    answers: list[str] = []
    stalled = threading.Thread(target=lambda: answers.append(
        client.CoreV1Api(other).read_namespaced_config_map("cfg", NS).metadata.name))
    stalled.start()
    try:
        assert hold.wait_arrived(1, 5.0)
        core = client.CoreV1Api(api)  # the default token passes while the other client is parked
        core.patch_namespaced_config_map("cfg", NS, {"data": {"x": "y"}})
        assert answers == [] and hold.arrived == 1
    finally:
        hold.release()
        stalled.join(5.0)
        other.close()
    assert answers == ["cfg"]


def test_strategic_merge_of_maps_and_what_the_fake_refuses(fake_kube, api):
    fake_kube.seed(configmap("cfg", NS, {"a": "1", "b": "2"}))
    path = f"/api/v1/namespaces/{NS}/configmaps/cfg"
    status, body = raw(api, "PATCH", path, {"data": {"a": "10", "b": None, "c": "3"}},
                       "application/strategic-merge-patch+json")
    assert status == 200, body
    assert body["data"] == {"a": "10", "c": "3"}
    before = fake_kube.get("configmaps", "cfg", NS)
    ds = daemonset("kube-proxy", NS, {"k8s-app": "kube-proxy"})
    fake_kube.seed(ds)
    ds_path = f"/apis/apps/v1/namespaces/{NS}/daemonsets/kube-proxy"
    refused = [
        (ds_path, {"spec": {"template": {"spec": {"containers": [{"name": "kube-proxy"}]}}}},
         "application/strategic-merge-patch+json", "is a list"),
        (path, {"data": {"$patch": "replace"}}, "application/strategic-merge-patch+json",
         "directive '$patch'"),
        (path, [{"op": "remove", "path": "/data/a"}], "application/json-patch+json",
         "application/json-patch+json"),
    ]
    for target, patch, media, reason in refused:
        status, body = raw(api, "PATCH", target, patch, media)
        assert (status, body["reason"]) == (415, "UnsupportedMediaType"), (media, body)
        assert reason in body["message"], body
    assert fake_kube.get("configmaps", "cfg", NS) == before
    assert fake_kube.get("daemonsets", "kube-proxy", NS)["spec"] == ds["spec"]


def test_merge_patch_and_custom_resources_refuse_strategic_merge(fake_kube, api):
    fake_kube.seed(cilium_node_config("kpr", NS, {"matchLabels": {"a": "b"}},
                                      {"kube-proxy-replacement": "true", "other": "x"}))
    path = f"/apis/cilium.io/v2/namespaces/{NS}/ciliumnodeconfigs/kpr"
    status, body = raw(api, "PATCH", path, {"spec": {"defaults": {"other": None}}},
                       "application/strategic-merge-patch+json")
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")
    status, body = raw(api, "PATCH", path, {"spec": {"defaults": {"other": None}}},
                       "application/merge-patch+json")
    assert status == 200
    assert body["spec"]["defaults"] == {"kube-proxy-replacement": "true"}


def test_list_honours_label_and_field_selectors(fake_kube, api):
    core = client.CoreV1Api(api)
    for name, node_name, labels in [("kp-1", "n1", {"k8s-app": "kube-proxy"}),
                                    ("kp-2", "n2", {"k8s-app": "kube-proxy"}),
                                    ("cilium-1", "n1", {"k8s-app": "cilium"}),
                                    ("other", "n1", {})]:
        fake_kube.seed(pod(name, NS, node_name, labels))

    def names(**kw):
        return sorted(p.metadata.name for p in core.list_namespaced_pod(NS, **kw).items)

    assert names(label_selector="k8s-app=kube-proxy") == ["kp-1", "kp-2"]
    assert names(label_selector="k8s-app in (cilium,kube-proxy)",
                 field_selector="spec.nodeName=n1") == ["cilium-1", "kp-1"]
    assert names(label_selector="!k8s-app") == ["other"]
    assert names(label_selector="k8s-app,k8s-app notin (cilium)") == ["kp-1", "kp-2"]
    assert names(field_selector="spec.nodeName!=n1") == ["kp-2"]
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_config_map(NS, field_selector="spec.nodeName=n1")
    assert err.value.status == 400


def test_watch_replays_from_a_resource_version_and_follows_selector_transitions(
        fake_kube, api):
    fake_kube.seed(pod("a", NS, "n1", {"k8s-app": "kube-proxy"}))
    start = fake_kube.resource_version
    core = client.CoreV1Api(api)
    core.patch_namespaced_pod("a", NS, {"metadata": {"labels": {"extra": "1"}}})
    core.patch_namespaced_pod("a", NS, {"metadata": {"labels": {"k8s-app": "gone"}}})
    core.patch_namespaced_pod("a", NS, {"metadata": {"labels": {"k8s-app": "kube-proxy"}}})
    core.delete_namespaced_pod("a", NS)
    events = watch_lines(api, f"/api/v1/namespaces/{NS}/pods", 4,
                         resourceVersion=start, labelSelector="k8s-app=kube-proxy")
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED", "ADDED", "DELETED"]
    assert [int(e["object"]["metadata"]["resourceVersion"]) for e in events] == [
        start + 1, start + 2, start + 3, start + 4]


def test_watch_without_resource_version_starts_with_current_objects_then_follows(
        fake_kube, api):
    fake_kube.seed(configmap("one", NS, {}))
    result: list = []
    reader = threading.Thread(target=lambda: result.extend(
        watch_lines(api, f"/api/v1/namespaces/{NS}/configmaps", 2)))
    reader.start()
    assert fake_kube.wait_for(lambda: fake_kube.open_watches == 1)
    fake_kube.seed(configmap("two", NS, {}))
    reader.join(10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in result] == [
        ("ADDED", "one"), ("ADDED", "two")]


def test_watch_from_a_compacted_resource_version_gets_410_expired(fake_kube, api):
    fake_kube.seed(configmap("one", NS, {}))
    old = fake_kube.resource_version
    fake_kube.seed(configmap("two", NS, {}))
    fake_kube.compact()
    events = watch_lines(api, f"/api/v1/namespaces/{NS}/configmaps", 2, resourceVersion=old)
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


def test_drop_watches_ends_open_streams(fake_kube, api):
    result: list = []
    reader = threading.Thread(target=lambda: result.append(
        watch_lines(api, f"/api/v1/namespaces/{NS}/configmaps", 5, resourceVersion=0)))
    reader.start()
    assert fake_kube.wait_for(lambda: fake_kube.open_watches == 1)
    fake_kube.drop_watches()
    reader.join(10)
    assert not reader.is_alive()
    assert result == [[]]


def test_status_subresource_semantics(fake_kube, api):
    fake_kube.seed(pod("p", NS, "n1", phase="Running"))
    path = f"/api/v1/namespaces/{NS}/pods/p"
    current = fake_kube.get("pods", "p", NS)
    current["status"]["phase"] = "Failed"
    current["metadata"]["labels"] = {"x": "y"}
    status, body = raw(api, "PUT", path, current)
    assert status == 200
    assert (body["status"]["phase"], body["metadata"]["labels"]) == ("Running", {"x": "y"})
    status, body = raw(api, "PATCH", path + "/status", {"status": {"phase": "Succeeded"}},
                       "application/merge-patch+json")
    assert status == 200
    assert fake_kube.get("pods", "p", NS)["status"]["phase"] == "Succeeded"


def test_discovery_serves_the_dynamic_client(fake_kube, api):
    dyn = DynamicClient(api)
    cnc = dyn.resources.get(api_version="cilium.io/v2", kind="CiliumNodeConfig")
    assert cnc.namespaced
    dyn.resources.get(api_version="v1", kind="ConfigMap").create(
        body=configmap("x", NS, {"k": "v"}), namespace=NS)
    assert fake_kube.get("configmaps", "x", NS)["data"] == {"k": "v"}
    assert {g["name"] for g in raw(api, "GET", "/apis")[1]["groups"]} >= {
        "apps", "discovery.k8s.io", "coordination.k8s.io", "cilium.io"}


def test_request_log_records_method_path_body_and_content_type(fake_kube, api):
    fake_kube.seed(configmap("cfg", NS, {}))
    fake_kube.clear_requests()
    client.CoreV1Api(api).patch_namespaced_config_map("cfg", NS, {"data": {"k": "v"}})
    (request,) = fake_kube.requests
    assert (request.method, request.path) == ("PATCH", f"/api/v1/namespaces/{NS}/configmaps/cfg")
    assert request.body == {"data": {"k": "v"}}
    assert request.content_type == "application/strategic-merge-patch+json"
    assert request.headers["Authorization"] == "Bearer fake-token"


# --- eviction (pods/eviction, policy/v1) -------------------------------------------------


def evict(api, name: str, namespace: str = NS, *, uid: str | None = None):
    """An eviction through the real client: (status, reason, body) of the answer."""
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
    if uid:
        body.delete_options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
    try:
        client.CoreV1Api(api).create_namespaced_pod_eviction(name, namespace, body)
    except client.ApiException as exc:
        answer = json.loads(exc.body)
        return exc.status, answer["reason"], answer
    return 201, "", None


def test_an_eviction_deletes_a_pod_no_budget_covers(fake_kube, api):
    fake_kube.seed(pod("web-1", "shop", "n1", {"app": "web"}))
    fake_kube.budget("other", "shop", {"app": "db"}, allowed=0)
    fake_kube.budget("web", NS, {"app": "web"}, allowed=0)  # another namespace's budget
    assert evict(api, "web-1", "shop")[0] == 201
    assert fake_kube.get("pods", "web-1", "shop") is None


def test_a_budget_is_spent_by_evictions_and_answers_429_when_none_is_left(fake_kube, api):
    for name in ("web-1", "web-2"):
        fake_kube.seed(pod(name, "shop", "n1", {"app": "web"}))
    fake_kube.budget("web", "shop", {"app": "web"}, allowed=1, healthy=2)
    assert evict(api, "web-1", "shop")[0] == 201
    spent = fake_kube.get("poddisruptionbudgets", "web", "shop")["status"]
    assert spent["disruptionsAllowed"] == 0 and set(spent["disruptedPods"]) == {"web-1"}
    status, reason, body = evict(api, "web-2", "shop")
    assert (status, reason) == (429, "TooManyRequests")
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget", "message":
                                          "The disruption budget web needs 2 healthy pods and has 3 currently"}]
    assert fake_kube.get("pods", "web-2", "shop") is not None, "a refused eviction deletes nothing"
    fake_kube.budget("web", "shop", {"app": "web"}, allowed=1)  # the disruption controller again
    assert evict(api, "web-2", "shop")[0] == 201


def test_pending_and_finished_pods_are_evicted_whatever_the_budget(fake_kube, api):
    fake_kube.seed(pod("starting", "shop", "n1", {"app": "web"}, phase="Pending"))
    fake_kube.seed(pod("done", "shop", "n1", {"app": "web"}, phase="Succeeded"))
    fake_kube.budget("web", "shop", {"app": "web"}, allowed=0)
    assert evict(api, "starting", "shop")[0] == evict(api, "done", "shop")[0] == 201
    assert fake_kube.objects("pods", "shop") == []


def test_eviction_errors_are_the_real_servers(fake_kube, api):
    fake_kube.seed(pod("web-1", "shop", "n1", {"app": "web"}))
    assert evict(api, "gone", "shop")[:2] == (404, "NotFound")
    assert evict(api, "web-1", "shop", uid="another-pod")[:2] == (409, "Conflict")
    status, _ = raw(api, "POST", "/api/v1/namespaces/shop/pods/web-1/eviction",
                   {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-2"}})
    assert status == 400
    assert raw(api, "GET", "/api/v1/namespaces/shop/pods/web-1/eviction")[0] == 405
    fake_kube.budget("a", "shop", {"app": "web"}, allowed=1)
    fake_kube.budget("b", "shop", {}, allowed=1)  # an empty selector selects every pod
    assert evict(api, "web-1", "shop")[0] == 500  # two budgets: not supported, as upstream
    fake_kube.remove("poddisruptionbudgets", "a", "shop")
    fake_kube.deny("create", "pods/eviction", "shop")
    status, reason, body = evict(api, "web-1", "shop")
    assert (status, reason) == (403, "Forbidden") and '"pods/eviction"' in body["message"]
    assert fake_kube.get("pods", "web-1", "shop") is not None
