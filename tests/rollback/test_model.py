"""Pure Kubernetes object logic: stripping, selectors, affinity, effective KPR, backup format.

Matrix: server-set fields removed (metadata, status, template timestamp, DS generation
annotation) and user fields kept; LabelSelector In/NotIn/Exists/DoesNotExist/matchLabels,
``{}`` vs None; node affinity terms ORed, expressions ANDed, matchFields, Gt/Lt;
NotIn value removal; CiliumNodeConfig overriding cilium-config, last name wins;
kpr_on values; Backup JSON round trip and wrong format.
"""

import pytest

from exporter.rollback.model import (
    Backup, NodeConfig, effective_kpr, kpr_on, match_label_selector, schedules_on,
    strip_server_fields, without_excluded_values,
)

MIGRATION = "io.cilium.migration/kube-proxy-replacement"


def ds_with(terms=None, node_selector=None):
    spec = {"containers": [{"name": "kube-proxy"}]}
    if terms is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": terms}}}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"spec": {"template": {"spec": spec}}}


def test_strip_server_fields():
    live = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "uid": "u", "resourceVersion": "7",
                     "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3, "managedFields": [{}],
                     "labels": {"k8s-app": "kube-proxy"},
                     "annotations": {"deprecated.daemonset.template.generation": "3"}},
        "spec": {"template": {"metadata": {"creationTimestamp": None, "labels": {"k8s-app": "kube-proxy"}},
                              "spec": {"containers": []}}},
        "status": {"numberReady": 3},
    }
    out = strip_server_fields(live)
    assert out["metadata"] == {"name": "kube-proxy", "namespace": "kube-system",
                               "labels": {"k8s-app": "kube-proxy"}}
    assert "status" not in out
    assert out["spec"]["template"]["metadata"] == {"labels": {"k8s-app": "kube-proxy"}}
    assert live["metadata"]["uid"] == "u"  # the input is untouched


@pytest.mark.parametrize("selector, labels, expected", [
    ({}, {}, True),
    (None, {"a": "b"}, False),
    ({"matchLabels": {MIGRATION: "true"}}, {MIGRATION: "true"}, True),
    ({"matchLabels": {MIGRATION: "true"}}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]}, {"a": "y"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, {"a": "x"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": ""}, False),
])
def test_label_selector(selector, labels, expected):
    assert match_label_selector(selector, labels) is expected


@pytest.mark.parametrize("workload, node, labels, expected", [
    (ds_with(), "n", {}, True),
    (ds_with([{"matchExpressions": [{"key": MIGRATION, "operator": "NotIn", "values": ["true"]}]}]),
     "n", {MIGRATION: "true"}, False),
    (ds_with([{"matchExpressions": [{"key": MIGRATION, "operator": "NotIn", "values": ["true"]}]}]),
     "n", {}, True),
    (ds_with([{"matchExpressions": [{"key": "x", "operator": "In", "values": ["1"]}]},
              {"matchExpressions": [{"key": "y", "operator": "Exists"}]}]), "n", {"y": "1"}, True),
    (ds_with([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n"]}]}]),
     "n", {}, False),
    (ds_with([{"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["4"]}]}]),
     "n", {"cpu": "8"}, True),
    (ds_with([{"matchExpressions": [{"key": "cpu", "operator": "Lt", "values": ["4"]}]}]),
     "n", {"cpu": "x"}, False),
    (ds_with([]), "n", {}, False),
    (ds_with([{}]), "n", {}, False),
    (ds_with(node_selector={"kubernetes.io/os": "linux"}), "n", {}, False),
])
def test_schedules_on(workload, node, labels, expected):
    assert schedules_on(workload, node, labels) is expected


def test_without_excluded_values():
    ds = ds_with([{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["a", "b"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]}])
    one = without_excluded_values(ds, "kubernetes.io/hostname", ["a"])
    terms = one["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["b"]
    both = without_excluded_values(ds, "kubernetes.io/hostname", ["a", "b"])
    terms = both["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In",
                                            "values": ["linux"]}]}]
    only = ds_with([{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["a"]}]}])
    cleared = without_excluded_values(only, "kubernetes.io/hostname", ["a"])
    assert cleared["spec"]["template"]["spec"]["affinity"]["nodeAffinity"] == {}
    assert schedules_on(cleared, "a", {"kubernetes.io/hostname": "a"})


def test_effective_kpr_prefers_node_configs_in_name_order():
    cm = {"kube-proxy-replacement": "false"}
    canary = NodeConfig("kube-system", "a-canary", {"matchLabels": {MIGRATION: "true"}},
                        {"kube-proxy-replacement": "true"})
    later = NodeConfig("kube-system", "z-off", {"matchLabels": {"pin": "off"}},
                       {"kube-proxy-replacement": "false"})
    other = NodeConfig("kube-system", "b-other", {}, {"bpf-lb-mode": "dsr"})
    assert effective_kpr({}, cm, [canary, later, other]) == ("false", "ConfigMap cilium-config")
    assert effective_kpr({MIGRATION: "true"}, cm, [canary, other]) == (
        "true", "CiliumNodeConfig kube-system/a-canary")
    assert effective_kpr({MIGRATION: "true", "pin": "off"}, cm, [later, canary]) == (
        "false", "CiliumNodeConfig kube-system/z-off")
    assert effective_kpr({}, None, []) == ("false", "ConfigMap cilium-config")


@pytest.mark.parametrize("value, on", [("true", True), ("True", True), ("strict", True),
                                       ("partial", True), ("false", False), ("disabled", False),
                                       ("", False), (None, False)])
def test_kpr_on(value, on):
    assert kpr_on(value) is on


def test_backup_json_round_trip():
    backup = Backup("2026-11-24T19:00:00Z", {"data": {"a": "b"}}, {"kind": "DaemonSet"}, None,
                    ({"kind": "CiliumNodeConfig"},), {"name": "cilium", "revision": 3})
    assert Backup.from_json(backup.to_json()) == backup
    with pytest.raises(ValueError, match="not a kpr-exporter backup"):
        Backup.from_json('{"format": "other"}')
    with pytest.raises(ValueError, match="not valid JSON"):
        Backup.from_json("{")
