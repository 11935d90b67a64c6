"""Helm lint and values.schema.json: clean charts lint clean, bad values are refused.

Matrix: lint with the default values and with every chart/ci/*-values.yaml (no warnings, no
errors); values the schema must reject (read through Helm's own YAML parser where the YAML
spelling matters, e.g. `mode: yes` is a boolean); values it must accept; rendering refuses
what the schema refuses.
"""

from __future__ import annotations

import helm_python as helm
import pytest

CI_VALUES = ("all-on", "node-socket", "node-tls", "enforce", "verification",
             "verification-measures")
WARNING = 2


def _problems(report: dict) -> list[dict]:
    return [m for m in report["messages"] if m["severity"] >= WARNING]


def test_lint_default_values_is_clean(release):
    report = helm.lint(release.chart_dir, strict=True)
    assert report["errors"] == []
    assert _problems(report) == []


@pytest.mark.parametrize("name", CI_VALUES)
def test_lint_ci_values_is_clean(release, ci_values, name):
    report = helm.lint(release.chart_dir, ci_values(name), strict=True, namespace=release.namespace)
    assert report["errors"] == []
    assert _problems(report) == []


BAD_YAML = {
    "unknown mode": "mode: bogus\n",
    "rollback mode spelt yes": "rollback:\n  mode: yes\n",
    "rollback mode true": "rollback:\n  mode: true\n",
    "rollback mode misspelt": "rollback:\n  mode: dryrun\n",
    "migration enabled as text": "migration:\n  enabled: 'yes please'\n",
    "migration unknown key": "migration:\n  drains: true\n",
    "unknown top-level key": "rolback:\n  mode: enforce\n",
    "unknown nested key": "serviceMonitor:\n  enable: true\n",
    "port out of range": "port: 70000\n",
    "port as text": "port: http\n",
    "node transport": "mode: node\nnode:\n  transport: tcp\n",
    "node tls without a secret": "mode: node\nnode:\n  transport: tls\n  tls:\n    existingSecret: ''\n",
    "relay tls without a secret": "hubble:\n  tls:\n    enabled: true\n",
    "log level": "log:\n  level: verbose\n",
    "bad duration": "serviceMonitor:\n  interval: 30 seconds\n",
    "no matchers": "alertmanagerConfig:\n  matchers: []\n",
    "bad matchType": "alertmanagerConfig:\n  matchers:\n    - {name: a, value: b, matchType: '=='}\n",
    "empty image repository": "image:\n  repository: ''\n",
    "bad namespace": "cilium:\n  namespace: Kube_System\n",
    "central url without scheme": "mode: node\ncentral:\n  prometheus:\n    url: prometheus:9090\n",
    "central url empty": "mode: node\ncentral:\n  prometheus:\n    url: ''\n",
    "central without replicas": "mode: node\ncentral:\n  replicas: 0\n",
    "central lease too short": "central:\n  leaseSeconds: 2\n",
    "central token key without a secret": "central:\n  prometheus:\n    bearerTokenKey: token\n",
    "central ca key without a secret": "central:\n  prometheus:\n    caKey: ca.crt\n",
    "unknown central key": "central:\n  replica: 2\n",
    "verification without nodes": "verification:\n  enabled: true\n",
    "verification node without addresses": ("verification:\n  enabled: true\n  nodes:\n"
                                            "    - name: w1\n"),
    "verification node datapath": ("verification:\n  nodes:\n    - name: w1\n"
                                   "      addresses: [10.0.0.1]\n      datapath: cilium\n"),
    "verification node address is a name": ("verification:\n  nodes:\n    - name: w1\n"
                                            "      addresses: [worker-1.example]\n"),
    "verification unknown node key": ("verification:\n  nodes:\n    - name: w1\n"
                                      "      addresses: [10.0.0.1]\n      ebpf: true\n"),
    "verification node port out of range": "verification:\n  nodePorts:\n    local: 70000\n",
    "verification interval without unit": "verification:\n  probe:\n    interval: '30'\n",
    "verification sample size zero": "verification:\n  probe:\n    sampleSize: 0\n",
    "verification class without a prefix": ("verification:\n  etpLocal:\n"
                                            "    loadBalancerClass: none\n"),
    "verification unknown key": "verification:\n  extraServices: app=web\n",
    "verification selector as a number": "verification:\n  extraServiceSelector: 5\n",
    "verification selector as a boolean": "verification:\n  extraServiceSelector: yes\n",
    "verification selector as a list": "verification:\n  extraServiceSelector: [app=web]\n",
    "verification selector as a mapping": ("verification:\n  extraServiceSelector:\n"
                                           "    app: web\n"),
    "verification service namespace": "verification:\n  extraServiceNamespace: Team_A\n",
}


@pytest.mark.parametrize("text", BAD_YAML.values(), ids=BAD_YAML.keys())
def test_schema_rejects(chart, text):
    values = helm.values_from_yaml(text)
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


@pytest.mark.parametrize("text", [BAD_YAML["unknown mode"], BAD_YAML["rollback mode spelt yes"]])
def test_render_and_lint_refuse_what_the_schema_refuses(chart, release, text):
    values = helm.values_from_yaml(text)
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name=release.name, namespace=release.namespace)
    assert helm.lint(release.chart_dir, values)["errors"]


GOOD_YAML = {
    "defaults": "",
    "enforce": "rollback:\n  mode: enforce\n",
    "migration with drain": "rollback:\n  mode: enforce\nmigration:\n  enabled: true\n  drain: true\n",
    "node socket": "mode: node\n",
    "node tls": "mode: node\nnode:\n  transport: tls\n",
    "relay tls": "hubble:\n  tls:\n    enabled: true\n    existingSecret: relay-certs\n",
    "fast profile": "alerts:\n  profile: fast\n",
    "explicit address": "hubble:\n  address: hubble-relay.cilium.svc:80\n",
    "global values": "global:\n  imageRegistry: r.example\n",
    "free-form config": "config:\n  agents:\n    interval_seconds: 30\n",
    "node mode central": ("mode: node\ncentral:\n  replicas: 3\n  prometheus:\n"
                          "    url: https://thanos-query.monitoring.svc:9090/prefix\n"
                          "    existingSecret: prom-auth\n    bearerTokenKey: token\n"),
    "verification": ("verification:\n  enabled: true\n  nodes:\n    - name: w1\n"
                     "      addresses: [10.0.0.1, 'fd00::1']\n      datapath: ebpf\n"),
    "verification from a target configmap": ("verification:\n  enabled: true\n"
                                             "  existingTargetsConfigMap: my-targets\n"),
    "verification extra services": ("verification:\n  extraServiceSelector: "
                                    "'kpr-exporter.io/probe=true,tier in (web)'\n"
                                    "  extraServiceNamespace: team-a\n"),
}


@pytest.mark.parametrize("text", GOOD_YAML.values(), ids=GOOD_YAML.keys())
def test_schema_accepts(chart, text):
    chart.validate_schema(chart.merge_values(helm.values_from_yaml(text)))


def test_every_default_value_is_described_by_the_schema(chart):
    """additionalProperties is false everywhere we own the shape, so the schema covers values.yaml."""
    schema = chart.schema

    def walk(values: dict, node: dict, path: str) -> None:
        props = node.get("properties")
        if props is None:
            return
        assert node.get("additionalProperties") is False, f"{path or '<root>'} is not closed"
        for key, value in values.items():
            assert key in props, f"{path}{key} has no schema"
            if isinstance(value, dict):
                walk(value, props[key], f"{path}{key}.")

    walk(chart.values, schema, "")
