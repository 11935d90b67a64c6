"""The stored chart, laid out from a release record, loads and renders in the real Helm engine."""

from __future__ import annotations

from pathlib import Path

import helm_python
import pytest
import yaml

from exporter.rollback.helm_edge import HelmUpgradeError, write_chart
from exporter.rollback.persist import plan_persist
from tests.fakekube.helm import stored_chart


def test_the_deployed_chart_renders_the_persisted_values(tmp_path: Path) -> None:
    doc = {"name": "cilium", "namespace": "kube-system", "version": 4, "info": {"status": "deployed"},
           "chart": stored_chart(), "config": {"kubeProxyReplacement": True, "k8sServicePort": 7443}}
    plan = plan_persist(doc)
    root = write_chart(doc, tmp_path)
    assert (root / "files" / "README.txt").read_text() == "cilium\n"
    chart = helm_python.Chart.load(root)
    try:
        assert chart.metadata["version"] == "1.18.3"
        rendered = chart.render(dict(plan.values_after), name="cilium", namespace="kube-system",
                                is_upgrade=True)
    finally:
        chart.close()
    (manifest,) = [text for path, text in rendered.items() if path.endswith("cilium-configmap.yaml")]
    data = yaml.safe_load(manifest)["data"]
    assert data == {"kube-proxy-replacement": "false", "k8s-service-port": "7443"}


def test_a_stored_file_outside_the_chart_is_refused(tmp_path: Path) -> None:
    chart = stored_chart()
    chart["files"] = [{"name": "../../escape.txt", "data": ""}]
    with pytest.raises(HelmUpgradeError, match="outside"):
        write_chart({"chart": chart}, tmp_path)
