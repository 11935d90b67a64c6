"""One source of truth: the chart ships exactly the repository's alerts/ and dashboards/.

The chart reaches them through symlinks (chart/files/alerts -> ../../alerts,
chart/files/dashboards -> ../../dashboards), which Helm follows when it loads a chart directory
and when it packages one. Matrix: the links themselves; the bytes Helm loaded vs the files on
disk; the PrometheusRule of every profile vs alerts/rules/<profile>.yaml; one dashboard
ConfigMap per dashboards/*.json with the JSON byte for byte; the packaged .tgz carries the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import helm_python as helm
import pytest
import yaml

ON = {"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True}}


def _profiles(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "alerts" / "rules").glob("*.yaml"))


def _dashboards(root: Path) -> list[Path]:
    return sorted((root / "dashboards").glob("*.json"))


@pytest.mark.parametrize(("link", "target"), [("alerts", "../../alerts"),
                                               ("dashboards", "../../dashboards")])
def test_chart_links_to_the_top_level_directories(release, link, target):
    path = release.chart_dir / "files" / link
    assert path.is_symlink()
    assert os.readlink(path) == target
    assert path.resolve() == (release.root / link).resolve()


def test_helm_loads_the_linked_files_byte_for_byte(chart, release):
    shipped = {f["name"]: f["data"] for f in chart.files}
    expected = {}
    for top in ("alerts", "dashboards"):
        for path in sorted((release.root / top).rglob("*")):
            if path.is_file():
                rel = path.relative_to(release.root).as_posix()
                expected[f"files/{rel}"] = path
    assert expected, "alerts/ and dashboards/ are empty"
    for name, path in expected.items():
        assert name in shipped, f"Helm did not load {name}"
        assert shipped[name].encode() == path.read_bytes(), name


def test_there_are_rule_profiles_and_dashboards(release):
    assert "default" in _profiles(release.root)
    assert _dashboards(release.root)


def test_prometheus_rule_is_the_profiles_rule_file(render, release):
    profiles = _profiles(release.root)
    assert profiles
    for profile in profiles:
        out = render({**ON, "alerts": {"profile": profile}})
        rule = out.one("PrometheusRule")
        on_disk = yaml.safe_load((release.root / "alerts" / "rules" / f"{profile}.yaml").read_text())
        assert rule["spec"] == {"groups": on_disk["groups"]}, profile
        assert rule["metadata"]["annotations"]["kpr-exporter/rule-profile"] == profile


def test_unknown_profile_fails_loudly(chart, release):
    with pytest.raises(helm.HelmRenderError, match="no-such-profile"):
        chart.render({**ON, "alerts": {"profile": "no-such-profile"}}, name=release.name,
                     namespace=release.namespace)


def test_one_configmap_per_dashboard_with_the_json_unchanged(render, release):
    out = render(ON)
    shipped = {}
    for cm in out.of_kind("ConfigMap"):
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1":
            (key, text), = cm["data"].items()
            shipped[key] = text
    expected = {p.name: p.read_text() for p in _dashboards(release.root)}
    assert shipped == expected
    for text in shipped.values():
        json.loads(text)
    assert not [cm for cm in render({"dashboards": {"enabled": False}}).of_kind("ConfigMap")
                if "grafana_dashboard" in cm["metadata"]["labels"]]


def test_packaged_chart_carries_the_same_rules_and_dashboards(tmp_path, render, release):
    archive = helm.package(release.chart_dir, destination=tmp_path)
    with helm.Chart.load(archive) as packaged:
        from_archive = packaged.render(ON, name=release.name, namespace=release.namespace)
    docs = [d for k, text in sorted(from_archive.items()) if not k.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    assert rule["spec"] == render(ON).one("PrometheusRule")["spec"]
    dashboards = {k for d in docs if d["kind"] == "ConfigMap"
                  and "grafana_dashboard" in d["metadata"]["labels"] for k in d["data"]}
    assert dashboards == {p.name for p in _dashboards(release.root)}
