"""Rendered manifests validate against the Kubernetes OpenAPI schemas (kubernetes-validate).

Strict mode: unknown fields are errors. Every value set of chart/ci plus the defaults, against
the oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas the
package ships. The Prometheus Operator CRDs have no schema there; they are skipped by name and
checked field by field in test_render.py.
"""

from __future__ import annotations

import functools

import kubernetes_validate
import pytest

CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}
VALUE_SETS = ("default", "all-on", "node-socket", "node-tls", "enforce", "verification",
              "verification-measures")
VERSIONS = ("1.25.0", kubernetes_validate.latest_version())


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once():
    """kubernetes-validate reads a schema file (the definitions: ~1 MB of JSON) for every
    document it checks; the files do not change during the run, so each is read once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_validate.utils, "schema_contents",
                      functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents))
        yield


@pytest.fixture(scope="module", params=VALUE_SETS)
def rendered(request, render, ci_values):
    name = request.param
    return name, render({} if name == "default" else ci_values(name))


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_validate_strictly(rendered, version):
    name, out = rendered
    checked = set()
    for doc in out.docs:
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"].startswith("monitoring.coreos.com/")
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} "
                        f"at {list(exc.path)}")
        checked.add(doc["kind"])
    assert {"Deployment", "DaemonSet"} & checked
    assert {"Service", "ServiceAccount", "ConfigMap"} <= checked


def test_only_the_operator_crds_lack_a_schema(render, ci_values):
    """No other kind slips through unvalidated: every kind but the CRDs has a schema."""
    kinds = set()
    for name in VALUE_SETS:
        kinds |= set((render() if name == "default" else render(ci_values(name))).kinds())
    assert CRD_KINDS <= kinds
    for doc_kind in sorted(kinds - CRD_KINDS):
        assert doc_kind in {"ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
                            "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Role",
                            "RoleBinding", "Secret", "Service", "ServiceAccount"}, doc_kind
    sample = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
              "metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        kubernetes_validate.validate(sample, VERSIONS[-1], strict=True)
