"""Pure Kubernetes object logic: stripping, node affinity, backup format.

Matrix: server-set fields removed (metadata, status, template timestamp, DS generation
annotation) and user fields kept; node affinity terms ORed, expressions ANDed,
matchFields, Gt/Lt, invalid requirements never hold; NotIn value removal; Backup JSON
round trip and wrong format. Label selectors, CiliumNodeConfig and the effective KPR are
tested with their module, ``exporter.cilium`` (tests/test_cilium.py).
"""

import pytest

from exporter.cilium import MIGRATION_LABEL
from exporter.rollback.model import (
    Backup, schedules_on, strip_server_fields, without_excluded_values,
)

MIGRATION = MIGRATION_LABEL


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
    # requirements the API server rejects never hold (the term then matches no node)
    (ds_with([{"matchExpressions": [{"key": MIGRATION, "operator": "NotIn"}]}]), "n", {}, False),
    (ds_with([{"matchExpressions": [{"key": "y", "operator": "Exists", "values": ["1"]}]}]),
     "n", {"y": "1"}, False),
    (ds_with([{"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["four"]}]}]),
     "n", {"cpu": "8"}, False),
    (ds_with([{"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["1", "2"]}]}]),
     "n", {"cpu": "8"}, False),
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


def test_backup_json_round_trip():
    backup = Backup("2026-11-24T19:00:00Z", {"data": {"a": "b"}}, {"kind": "DaemonSet"}, None,
                    ({"kind": "CiliumNodeConfig"},), {"name": "cilium", "revision": 3})
    assert Backup.from_json(backup.to_json()) == backup
    with pytest.raises(ValueError, match="not a kpr-exporter backup"):
        Backup.from_json('{"format": "other"}')
    with pytest.raises(ValueError, match="not valid JSON"):
        Backup.from_json("{")
