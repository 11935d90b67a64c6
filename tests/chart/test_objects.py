"""Every render case installs as written: one object per (kind, namespace, name), and every
file under dashboards/ reaches Grafana in a ConfigMap of its own.

A release with two objects of the same kind, namespace and name keeps only one of them or fails
to install; three dashboards under one name left Grafana with one. The render fixture refuses
duplicates on every render of the chart tests; this module names the cases explicitly.

Matrix: the defaults; every chart/ci/*-values.yaml; every rule profile with everything on; node
mode with everything on; rollback enforce and the backup grants; the file baseline; an existing
token Secret and a named ServiceAccount; renamed Cilium and kube-proxy objects; the
AlertmanagerConfig in the release namespace; dashboards in another namespace; a 63-character
fullname (ConfigMap names are cut to 63); the release installed in kube-system, where Cilium
lives; node mode's two workloads (collectors and central) in enforce with the backup grants,
with a 63-character fullname, with named ServiceAccounts, and in kube-system; active
verification in node mode, with a 63-character fullname, in kube-system and with the user's
target ConfigMap. A copy of the chart with crafted dashboard file names: odd characters give valid,
distinct names; two files that would share a name, or a name with no letters or digits, are
refused at render time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.chart.conftest import (
    CHART_DIR, NAMESPACE, RELEASE, ROOT, object_key, parse_manifests, shared_keys,
)

CI_NAMES = sorted(p.name.removesuffix("-values.yaml") for p in (CHART_DIR / "ci").glob("*-values.yaml"))
PROFILES = sorted(p.stem for p in (ROOT / "alerts" / "rules").glob("*.yaml"))
ENFORCE = {"rollback": {"mode": "enforce"}}

#: case id -> (chart/ci value set or None, values merged over it, release namespace)
CASES: dict[str, tuple[str | None, dict[str, Any], str]] = {
    "default": (None, {}, NAMESPACE),
    **{f"ci-{name}": (name, {}, NAMESPACE) for name in CI_NAMES},
    **{f"all-on-profile-{p}": ("all-on", {"alerts": {"profile": p}}, NAMESPACE) for p in PROFILES},
    "all-on-node-mode": ("all-on", {"mode": "node"}, NAMESPACE),
    "all-on-node-tls": ("node-tls", {"serviceMonitor": {"enabled": True},
                                     "prometheusRule": {"enabled": True},
                                     "alertmanagerConfig": {"enabled": True,
                                                            "namespace": "monitoring"}},
                        NAMESPACE),
    "enforce-with-backup": (None, {**ENFORCE, "rbac": {"backup": True}}, NAMESPACE),
    "dry-run-with-backup": (None, {"rbac": {"backup": True}}, NAMESPACE),
    "file-baseline": (None, {"baseline": {"store": "file", "existingClaim": "kpr-data"}}, NAMESPACE),
    "existing-token-named-account": (None, {"webhook": {"token": {"existingSecret": "mine"}},
                                            "serviceAccount": {"name": "kpr-sa"}}, NAMESPACE),
    "renamed-cilium-and-kube-proxy": (None, {
        **ENFORCE,
        "cilium": {"namespace": "cilium", "configMapName": "cilium-cfg"},
        "kubeProxy": {"namespace": "kp", "daemonSetName": "kp-ds", "configMapName": "kp-cm"},
    }, NAMESPACE),
    "alertmanager-config-in-release-namespace": (
        None, {"alertmanagerConfig": {"enabled": True, "namespace": NAMESPACE}}, NAMESPACE),
    "dashboards-elsewhere": ("all-on", {"dashboards": {"namespace": "monitoring"}}, NAMESPACE),
    "long-fullname": ("all-on", {"fullnameOverride": "k" * 63}, NAMESPACE),
    "installed-in-kube-system": ("all-on", ENFORCE, "kube-system"),
    "node-enforce-with-backup": ("node-socket", {**ENFORCE, "rbac": {"backup": True}}, NAMESPACE),
    "node-long-fullname": ("all-on", {"mode": "node", "fullnameOverride": "k" * 63}, NAMESPACE),
    "node-named-accounts": ("node-tls", {"serviceAccount": {"name": "kpr-sa",
                                                            "centralName": "kpr-judge"}}, NAMESPACE),
    "node-installed-in-kube-system": ("all-on", {**ENFORCE, "mode": "node"}, "kube-system"),
    "verification-node-mode": ("verification", {"mode": "node"}, NAMESPACE),
    "verification-long-fullname": ("verification", {"fullnameOverride": "k" * 63}, NAMESPACE),
    "verification-in-kube-system": ("verification", ENFORCE, "kube-system"),
    "verification-existing-targets": (None, {"verification": {
        "enabled": True, "existingTargetsConfigMap": "my-targets"}}, NAMESPACE),
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture(params=sorted(CASES), scope="module")
def case(request, chart, ci_values):
    """(values, namespace, effective values) of one render case; rendered by the tests."""
    ci, over, namespace = CASES[request.param]
    values = _merge(ci_values(ci) if ci else {}, over)
    return values, namespace, chart.merge_values(values)


def _render_raw(chart, values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The documents as Helm renders them, without the render fixture's own duplicate check."""
    out = chart.render(values, name=RELEASE, namespace=namespace, is_install=True)
    return [d for path in sorted(out) if not path.endswith("NOTES.txt")
            for d in parse_manifests(out[path])]


def test_there_are_ci_value_sets_and_profiles():
    assert {"all-on", "enforce", "node-socket", "node-tls"} <= set(CI_NAMES)
    assert "default" in PROFILES


def test_no_two_objects_share_kind_namespace_and_name(chart, case):
    values, namespace, _ = case
    docs = _render_raw(chart, values, namespace)
    assert len(docs) >= 10, [object_key(d, namespace) for d in docs]
    assert shared_keys(docs, namespace) == {}


def _dashboard_files() -> list[Path]:
    return sorted(p for p in (ROOT / "dashboards").rglob("*") if p.is_file())


def test_every_dashboard_file_reaches_grafana_in_its_own_configmap(render, case):
    values, namespace, effective = case
    settings = effective["dashboards"]
    out = render(values, namespace=namespace)
    label, wanted = settings["label"], settings["labelValue"]
    grafana = [cm for cm in out.of_kind("ConfigMap")
               if cm["metadata"].get("labels", {}).get(label) == wanted]
    if not settings["enabled"]:
        assert grafana == []
        return
    files = _dashboard_files()
    assert files, "dashboards/ is empty"
    names = [cm["metadata"]["name"] for cm in grafana]
    assert len(set(names)) == len(names) == len(files), names
    shipped: list[str] = []
    for cm in grafana:
        assert cm["metadata"]["namespace"] == (settings["namespace"] or namespace)
        assert len(cm["metadata"]["name"]) <= 63
        (key, text), = cm["data"].items()  # one dashboard per ConfigMap
        shipped.append(key)
        assert text.encode() == (ROOT / "dashboards" / key).read_bytes(), key
    assert sorted(shipped) == sorted(p.relative_to(ROOT / "dashboards").as_posix() for p in files)


def test_grafana_tells_the_dashboards_apart():
    """The sidecar files them by key and Grafana by uid: both differ from dashboard to dashboard."""
    files = _dashboard_files()
    assert files
    uids = [json.loads(p.read_text(encoding="utf-8"))["uid"] for p in files]
    assert all(uids) and len(set(uids)) == len(uids), uids


def test_the_render_fixture_refuses_duplicates(render, chart, monkeypatch):
    """The guard every render of the chart tests goes through fails on a duplicated object."""
    doubled = chart.render

    def twice(*args: Any, **kwargs: Any) -> dict[str, str]:
        out = doubled(*args, **kwargs)
        path = next(p for p in out if p.endswith("service.yaml"))
        return {**out, path: out[path] + "\n---\n" + out[path]}

    monkeypatch.setattr(chart, "render", twice)
    with pytest.raises(AssertionError, match="Service"):
        render()


def _chart_with_dashboards(tmp_path: Path, names: list[str]) -> Path:
    """A copy of the chart whose dashboards/ holds the given (empty-dashboard) files."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART_DIR, copy, symlinks=False)
    target = copy / "files" / "dashboards"
    shutil.rmtree(target)
    target.mkdir()
    for i, name in enumerate(names):
        (target / name).write_text(json.dumps({"uid": f"d{i}", "title": name}))
    return copy


def _render_copy(path: Path) -> list[dict[str, Any]]:
    with helm.Chart.load(path) as copy:
        return _render_raw(copy, {}, NAMESPACE)


def test_dashboard_file_names_become_valid_distinct_configmap_names(tmp_path):
    names = ["Node Health.json", "kpr_service-drilldown.json", "-edge-.json"]
    docs = _render_copy(_chart_with_dashboards(tmp_path, names))
    got = {next(iter(d["data"])): d["metadata"]["name"] for d in docs
           if d["kind"] == "ConfigMap" and "config.yaml" not in d["data"]}
    prefix = "kpr-kpr-exporter-dashboard-"
    assert got == {"Node Health.json": prefix + "node-health",
                   "kpr_service-drilldown.json": prefix + "kpr-service-drilldown",
                   "-edge-.json": prefix + "edge"}


@pytest.mark.parametrize(("names", "message"), [
    (["Node Health.json", "node_health.json"], "both become ConfigMap"),
    (["__.json"], "empty ConfigMap name suffix"),
], ids=["same-name", "no-letters"])
def test_dashboards_that_cannot_have_a_name_of_their_own_are_refused(tmp_path, names, message):
    with pytest.raises(helm.HelmRenderError, match=message):
        _render_copy(_chart_with_dashboards(tmp_path, names))
