"""The probes' measurements in the chart (verification.probe.load and .programming).

Matrix: off by default (no flag, no token, no role; the values' defaults are the settings'
defaults); the load option on: its flags reach the pod-network probe only, parse with the real
CLI and pass the settings' validation, the probe still holds no token; programming latency on:
the pod-network probe watches the chart's echo Service (the target file's ClusterIP), mounts
its token, and the probes' account is granted exactly list and watch of EndpointSlices in the
release namespace (a Role, where the code watches them), none with rbac.create=false; both
on next to the extra Services' grant; the schema's maxima are the probe's caps; a value over
a cap is refused at render time; the example in docs/install.md renders and passes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest

from exporter import config_constraints
from exporter.kube.resources import ENDPOINTSLICES
from exporter.verify import settings as probe_settings
from exporter.verify.programming_watch import slice_selector
from tests.chart.conftest import NAMESPACE
from tests.chart.test_rbac import _rendered
from tests.chart.test_verification import (
    FULLNAME, RBAC_KINDS, _pod, _probe_settings, _probes, _targets)

SLICE_READS = {(NAMESPACE, "discovery.k8s.io", "endpointslices", "list", ""),
               (NAMESPACE, "discovery.k8s.io", "endpointslices", "watch", "")}
MEASURE_FLAGS = ("--probe.load-", "--probe.programming-")


def _values(ci_values, **probe: Any) -> dict[str, Any]:
    values = ci_values("verification")
    values["verification"]["probe"] = probe
    return values


def _measure_args(ds: dict[str, Any]) -> list[str]:
    return [a for a in _pod(ds)["containers"][0]["args"] if a.startswith(MEASURE_FLAGS)]


def _verification_rbac(out) -> list[dict[str, Any]]:
    return [d for kind in RBAC_KINDS for d in out.verification(kind)]


def _account(out) -> str:
    (account,) = out.verification("ServiceAccount")
    return account["metadata"]["name"]


def test_the_values_defaults_are_off_and_the_settings_defaults(chart):
    probe = chart.values["verification"]["probe"]
    defaults = probe_settings.ProbeSettings()
    assert probe["load"] == {"enabled": False,
                             "connectionsPerSecond": defaults.load_connections_per_second,
                             "bytesPerSecond": defaults.load_bytes_per_second, "duration": "5s"}
    assert defaults.load_seconds == 5.0 and not defaults.load_enabled
    assert probe["programming"] == {
        "enabled": False, "pollsPerSecond": defaults.programming_polls_per_second,
        "timeout": "30s"}
    assert defaults.programming_timeout_seconds == 30.0 and not defaults.programming_service


def test_off_by_default_nothing_new_is_rendered(render, ci_values):
    out = render(ci_values("verification"))
    for ds in _probes(out).values():
        assert _measure_args(ds) == []
        settings = _probe_settings(ds)
        assert not settings.load_enabled and settings.programming_service == ""
        assert _pod(ds)["automountServiceAccountToken"] is False
    assert _verification_rbac(out) == []
    assert _rendered(out, _account(out)) == set()


def test_the_load_option_runs_on_the_pod_network_probe_only(render, ci_values):
    load = {"enabled": True, "connectionsPerSecond": 2.5, "bytesPerSecond": 4 * 1024 * 1024,
            "duration": "7s"}
    out = render(_values(ci_values, load=load))
    probes = _probes(out)
    pod = _probe_settings(probes["pod"])
    assert config_constraints.problems(pod, "probe") == []
    assert (pod.load_enabled, pod.load_connections_per_second, pod.load_bytes_per_second,
            pod.load_seconds) == (True, 2.5, 4 * 1024 * 1024, 7.0)
    assert pod.programming_service == ""
    # the byte rate is rendered as an integer, never in exponent notation
    assert "--probe.load-bytes-per-second=4194304" in _measure_args(probes["pod"])
    assert _measure_args(probes["host"]) == []
    assert not _probe_settings(probes["host"]).load_enabled
    # the load talks to the echo only: no token, no role
    assert all(_pod(ds)["automountServiceAccountToken"] is False for ds in probes.values())
    assert _verification_rbac(out) == []


def test_programming_watches_the_echo_service_of_the_target_file(render, ci_values):
    out = render(_values(ci_values, programming={"enabled": True, "pollsPerSecond": 20,
                                                 "timeout": "1m"}))
    probes = _probes(out)
    pod = _probe_settings(probes["pod"])
    assert config_constraints.problems(pod, "probe") == []
    assert (pod.programming_polls_per_second, pod.programming_timeout_seconds) == (20.0, 60.0)
    assert not pod.load_enabled
    namespace, _, name = pod.programming_service.partition("/")
    assert (namespace, name) == (NAMESPACE, f"{FULLNAME}-echo")
    (service,) = [s for s in out.verification("Service") if s["metadata"]["name"] == name]
    assert service["spec"]["type"] == "ClusterIP"
    _, targets = _targets(out)
    assert targets.cluster_ip[0].split(".")[:2] == [name, namespace]  # the ClusterIP it chases
    assert _measure_args(probes["host"]) == []
    assert _pod(probes["pod"])["automountServiceAccountToken"] is True
    assert _pod(probes["host"])["automountServiceAccountToken"] is False
    (echo,) = [d for d in out.verification("DaemonSet") if d["metadata"]["name"].endswith("-echo")]
    assert _pod(echo)["automountServiceAccountToken"] is False


def test_programming_grants_exactly_the_watch_of_the_echo_endpointslices(render, ci_values):
    out = render(_values(ci_values, programming={"enabled": True}))
    account = _account(out)
    assert _rendered(out, account) == SLICE_READS
    # ... which is what the probe's watch does: list and watch, in the Service's namespace
    namespace, selector = slice_selector(_probe_settings(_probes(out)["pod"]).programming_service)
    assert (namespace, ENDPOINTSLICES.group, ENDPOINTSLICES.plural) == (
        NAMESPACE, "discovery.k8s.io", "endpointslices")
    assert selector == f"kubernetes.io/service-name={FULLNAME}-echo"
    (role,) = out.verification("Role")
    (binding,) = out.verification("RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                              "verbs": ["list", "watch"]}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                    "namespace": NAMESPACE}]
    assert not [d for d in _verification_rbac(out) if d["kind"].startswith("Cluster")]
    # the exporter's own grants do not change
    (exporter,) = [a["metadata"]["name"] for a in out.exporter("ServiceAccount")]
    before = render(ci_values("verification"))
    assert _rendered(out, exporter) == _rendered(before, exporter)


def test_programming_without_rbac_create_renders_no_role(render, ci_values):
    values = _values(ci_values, programming={"enabled": True})
    values["rbac"] = {"create": False}
    out = render(values)
    assert not [d for kind in RBAC_KINDS for d in out.of_kind(kind)]
    assert _probe_settings(_probes(out)["pod"]).programming_service  # still measured
    assert _pod(_probes(out)["pod"])["automountServiceAccountToken"] is True


def test_both_measurements_next_to_the_extra_services(render, ci_values):
    values = _values(ci_values, load={"enabled": True}, programming={"enabled": True})
    values["verification"].update(extraServiceSelector="kpr-exporter.io/probe=true",
                                  extraServiceNamespace="team-a")
    out = render(values)
    assert _rendered(out, _account(out)) == SLICE_READS | {
        ("team-a", "", "services", "list", "")}
    assert len(_verification_rbac(out)) == 4
    probes = _probes(out)
    pod = _probe_settings(probes["pod"])
    assert pod.load_enabled and pod.programming_service and pod.extra_service_selector
    assert config_constraints.problems(pod, "probe") == []
    host = _probe_settings(probes["host"])
    assert not host.load_enabled and not host.programming_service
    assert all(_pod(ds)["automountServiceAccountToken"] is True for ds in probes.values())


def test_the_documented_example_renders_and_the_probe_accepts_it(render, ci_values, release):
    doc = (release.root / "docs" / "install.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "programming:" in b]
    assert len(blocks) == 1, "install.md shows one example of the measurements"
    example = helm.values_from_yaml(blocks[0])["verification"]["probe"]
    out = render(_values(ci_values, **example))
    pod = _probe_settings(_probes(out)["pod"])
    assert pod.load_enabled and pod.programming_service
    assert config_constraints.problems(pod, "probe") == []


def _schema_of(release) -> dict[str, Any]:
    schema = json.loads((release.chart_dir / "values.schema.json").read_text())
    return schema["properties"]["verification"]["properties"]["probe"]["properties"]


def test_the_schema_maxima_are_the_probe_caps(release):
    probe = _schema_of(release)
    load, programming = probe["load"]["properties"], probe["programming"]["properties"]
    assert load["connectionsPerSecond"]["maximum"] == probe_settings.LOAD_MAX_CONNECTIONS_PER_SECOND
    assert load["bytesPerSecond"]["maximum"] == probe_settings.LOAD_MAX_BYTES_PER_SECOND
    assert (programming["pollsPerSecond"]["maximum"]
            == probe_settings.PROGRAMMING_MAX_POLLS_PER_SECOND)


@pytest.mark.parametrize("probe", [
    {"load": {"bytesPerSecond": 4 * 1024 * 1024 + 1}},
    {"load": {"connectionsPerSecond": 51}},
    {"load": {"connectionsPerSecond": -1}},
    {"load": {"duration": "five seconds"}},
    {"programming": {"pollsPerSecond": 0}},
    {"programming": {"timeout": 30}},
    {"programming": {"service": "other/echo"}},
], ids=["bytes over cap", "connections over cap", "negative rate", "bad duration",
        "no polls", "timeout without unit", "unknown key"])
def test_values_beyond_the_caps_are_refused_at_render_time(chart, release, ci_values, probe):
    with pytest.raises(helm.HelmError, match="schema"):
        chart.render(_values(ci_values, **probe), name=release.name,
                     namespace=release.namespace)
