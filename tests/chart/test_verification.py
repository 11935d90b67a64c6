"""Active verification in the chart (verification.enabled), rendered by the real Helm engine.

Matrix: off by default (nothing rendered); on with chart/ci/verification-values.yaml: the echo
DaemonSet with its hostPort, a Service of each kind (ClusterIP, NodePort, eTP=Local with its
health-check node port, sessionAffinity: ClientIP, one whose selector matches no pod, the
LoadBalancer only when asked for), the two probe DaemonSets (pod network, host network) and
the exporter collecting their results; the rendered target file parses with the probe's own
parser and names the rendered Services and ports; the probes' and the echo's args go through
the real CLI parser and settings; the two probes split the check vocabulary so that each runs only checks that
connect from the address its pod has (run against the emulated datapath); the verification
pods hold no API token and no role; a user's target ConfigMap replaces the rendered one;
clashing ports are refused at render time; names stay DNS labels with a 63-character
fullname; verification.extraServiceSelector (off by default) reaches both probes' args,
mounts the token in the probe pods only and binds exactly a list-Services ClusterRole (a Role
with extraServiceNamespace), none with rbac.create=false.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from exporter import cli, config_constraints
from exporter.verify import results as r
from exporter.verify import targetfile
from exporter.verify.net import Dialer
from exporter.verify.runner import run_checks
from tests.chart.conftest import NAMESPACE, RELEASE
from tests.verify.conftest import context, emulate  # noqa: F401  (emulate: a fixture)

FULLNAME = f"{RELEASE}-kpr-exporter"
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
#: What the kubelet substitutes for each downward-API field in $(VAR) references.
FIELDS = {"spec.nodeName": "worker-1", "status.hostIP": "10.0.0.11",
          "status.podIP": "10.244.1.7", "metadata.name": "echo-abcde"}


@pytest.fixture(scope="module")
def on(render, ci_values):
    return render(ci_values("verification"))


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def _pod_labels(out) -> list[dict[str, str]]:
    return [d["spec"]["template"]["metadata"]["labels"]
            for d in out.of_kind("DaemonSet") + out.of_kind("Deployment")]


def _args(container: dict[str, Any]) -> list[str]:
    """The container's args as the kubelet passes them, each $(VAR) defined by the pod."""
    env = {e["name"]: FIELDS[e["valueFrom"]["fieldRef"]["fieldPath"]]
           for e in container["env"] if "valueFrom" in e}
    out = []
    for arg in container["args"]:
        for ref in re.findall(r"\$\(([A-Z_]+)\)", arg):
            assert ref in env, f"{arg} refers to ${ref} which the pod does not define"
        out.append(re.sub(r"\$\(([A-Z_]+)\)", lambda m: env[m.group(1)], arg))
    return out


def _probes(out) -> dict[str, dict[str, Any]]:
    """The probe DaemonSets by network: "pod" and "host"."""
    found = {d["metadata"]["name"].rsplit("-", 1)[1]: d for d in out.verification("DaemonSet")
             if "-probe-" in d["metadata"]["name"]}
    assert set(found) == {"pod", "host"}
    return found


def _probe_settings(ds: dict[str, Any]):
    (container,) = _pod(ds)["containers"]
    parsed = cli.build_parser().parse_args(_args(container))
    assert parsed.command == "probe"
    return cli.load_settings(parsed, env={}).probe


def _targets(out) -> tuple[dict[str, Any], Any]:
    (cm,) = [c for c in out.verification("ConfigMap") if "targets.yaml" in c["data"]]
    doc = yaml.safe_load(cm["data"]["targets.yaml"])
    return doc, targetfile.parse(doc)


def test_off_by_default_renders_no_verification_object(render):
    out = render()
    assert all("app.kubernetes.io/part-of" not in d["metadata"].get("labels", {})
               for d in out.docs)
    assert not out.of_kind("PodMonitor")
    assert "Verification" not in out.notes or "off" in out.notes.split("Verification", 1)[1]


def test_echo_daemonset_with_a_hostport_and_one_service_of_each_kind(on):
    (echo,) = [d for d in on.verification("DaemonSet") if d["metadata"]["name"].endswith("-echo")]
    (container,) = _pod(echo)["containers"]
    (port,) = container["ports"]
    assert port["hostPort"] == 31983 and port["name"] == "echo"
    echo_labels = echo["spec"]["template"]["metadata"]["labels"]

    svcs = _by_name(on.verification("Service"))
    assert set(svcs) == {f"{FULLNAME}-echo{s}" for s in
                         ("", "-nodeport", "-local", "-affinity", "-none", "-lb")}
    spec = {name.removeprefix(f"{FULLNAME}-"): s["spec"] for name, s in svcs.items()}
    assert spec["echo"]["type"] == "ClusterIP" and "sessionAffinity" not in spec["echo"]
    assert spec["echo-nodeport"]["type"] == "NodePort"
    assert spec["echo-nodeport"]["externalTrafficPolicy"] == "Cluster"
    assert spec["echo-nodeport"]["ports"][0]["nodePort"] == 31980
    local = spec["echo-local"]
    assert local["externalTrafficPolicy"] == "Local"
    # A LoadBalancer of a class nobody serves: a healthCheckNodePort, never an address.
    assert local["type"] == "LoadBalancer" and local["healthCheckNodePort"] == 31982
    assert local["loadBalancerClass"] == "kpr-exporter.io/no-load-balancer"
    assert local["ports"][0]["nodePort"] == 31981
    assert spec["echo-affinity"]["sessionAffinity"] == "ClientIP"
    assert spec["echo-lb"]["type"] == "LoadBalancer" and "loadBalancerClass" not in spec["echo-lb"]
    assert svcs[f"{FULLNAME}-echo-lb"]["metadata"]["annotations"] == {
        "lbipam.cilium.io/ips": "192.0.2.10"}

    for name, s in spec.items():
        assert s["ports"][0]["targetPort"] == "echo", name
        if name == "echo-none":
            assert not any(_selects(s["selector"], labels) for labels in _pod_labels(on))
        else:
            assert _selects(s["selector"], echo_labels), name


def test_load_balancer_only_when_the_cluster_assigns_addresses(render, ci_values):
    values = ci_values("verification")
    values["verification"]["loadBalancer"] = {"enabled": False}
    out = render(values)
    assert not [s for s in out.verification("Service") if s["spec"]["type"] == "LoadBalancer"
                and "loadBalancerClass" not in s["spec"]]
    doc, targets = _targets(out)
    assert "loadbalancer" not in doc and targets.loadbalancer is None


def test_selectors_never_cross_between_the_exporter_and_the_verification_pods(on):
    exporter_pods = [d["spec"]["template"]["metadata"]["labels"]
                     for d in on.exporter("Deployment") + on.exporter("DaemonSet")]
    verification_pods = [d["spec"]["template"]["metadata"]["labels"]
                         for d in on.verification("DaemonSet")]
    assert exporter_pods and len(verification_pods) == 3
    for svc in on.exporter("Service"):
        assert not any(_selects(svc["spec"]["selector"], lab) for lab in verification_pods)
    for svc in on.verification("Service"):
        assert not any(_selects(svc["spec"]["selector"], lab) for lab in exporter_pods)
    workloads = on.of_kind("DaemonSet") + on.of_kind("Deployment")
    for w in workloads:  # each controller selects its own pods only
        owned = [x for x in workloads
                 if _selects(w["spec"]["selector"]["matchLabels"],
                             x["spec"]["template"]["metadata"]["labels"])]
        assert owned == [w], w["metadata"]["name"]


def test_the_target_file_parses_and_names_the_rendered_services(on, ci_values):
    doc, targets = _targets(on)
    svcs = _by_name(on.verification("Service"))

    def service_of(endpoint: tuple[str, int]) -> dict[str, Any]:
        host, port = endpoint
        name, ns, svc = host.split(".")
        assert (ns, svc) == (NAMESPACE, "svc")
        assert svcs[name]["spec"]["ports"][0]["port"] == port
        return svcs[name]["spec"]

    assert service_of(targets.cluster_ip).get("sessionAffinity") is None
    assert service_of(targets.affinity)["sessionAffinity"] == "ClientIP"
    assert "kpr-exporter.io/endpoints" in service_of(targets.no_endpoints)["selector"]
    assert targets.apiserver == ("kubernetes.default.svc", 443)
    assert targets.loadbalancer == ("192.0.2.10", 80)
    local = svcs[f"{FULLNAME}-echo-local"]["spec"]
    assert targets.node_port == svcs[f"{FULLNAME}-echo-nodeport"]["spec"]["ports"][0]["nodePort"]
    assert targets.etp_local_node_port == local["ports"][0]["nodePort"]
    assert targets.health_check_node_port == local["healthCheckNodePort"]
    assert targets.hostport == 31983

    nodes = ci_values("verification")["verification"]["nodes"]
    assert [n.name for n in targets.nodes.values()] == [n["name"] for n in nodes]
    assert targets.nodes["worker-1"].datapath == "kube-proxy"  # the default
    assert targets.nodes["worker-2"].datapath == "ebpf"
    assert targets.nodes["worker-1"].addresses == ("10.0.0.11", "fd00::11")
    # The echo DaemonSet puts one ready endpoint and the hostPort on every node it runs on.
    worker, control = targets.nodes["worker-1"], targets.nodes["control-plane"]
    assert (worker.etp_local_endpoints, worker.hostport) == (1, True)
    assert (control.etp_local_endpoints, control.hostport) == (0, False)
    assert targetfile.parse(targetfile.dump(targets)) == targets


def test_probe_args_parse_with_the_real_cli(on):
    probes = _probes(on)
    (cm_name,) = [c["metadata"]["name"] for c in on.verification("ConfigMap")]
    checks = {}
    for net, ds in probes.items():
        pod = _pod(ds)
        settings = _probe_settings(ds)
        assert config_constraints.problems(settings, "probe") == []
        assert settings.missing() == []
        assert settings.node_name == FIELDS["spec.nodeName"]  # the downward API's spec.nodeName
        (mount,) = pod["containers"][0]["volumeMounts"]
        (volume,) = pod["volumes"]
        assert volume["configMap"]["name"] == cm_name and mount["name"] == volume["name"]
        assert settings.targets_file == f"{mount['mountPath']}/targets.yaml"
        assert settings.listen_address == ":9978"
        assert pod["containers"][0]["ports"][0]["containerPort"] == 9978
        assert (settings.interval_seconds, settings.sample_size, settings.timeout_seconds) == (
            30.0, 3, 2.0)
        checks[net] = settings.checks
        assert pod.get("automountServiceAccountToken") is False
    assert _probe_settings(probes["host"]).host_address == FIELDS["status.hostIP"]
    assert _probe_settings(probes["pod"]).pod_address == FIELDS["status.podIP"]
    host, pod = _pod(probes["host"]), _pod(probes["pod"])
    assert host["hostNetwork"] is True and host["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "hostNetwork" not in pod
    # The whole vocabulary, each check in one probe; the host-namespace classes on the host.
    assert sorted(checks["pod"] + checks["host"]) == sorted(r.CHECKS)
    assert not set(checks["pod"]) & set(checks["host"])
    assert {r.CLUSTERIP_HOST, r.NODEPORT_LOOPBACK, r.APISERVER_FROM_HOST} <= set(checks["host"])
    assert r.CLUSTERIP_POD in checks["pod"]


def test_echo_args_parse_with_the_real_cli(on):
    (echo,) = [d for d in on.verification("DaemonSet") if d["metadata"]["name"].endswith("-echo")]
    (container,) = _pod(echo)["containers"]
    parsed = cli.build_parser().parse_args(_args(container))
    assert parsed.command == "echo"
    settings = cli.load_settings(parsed, env={}).echo
    assert config_constraints.problems(settings, "echo") == []
    assert settings.listen_address == f":{container['ports'][0]['containerPort']}"
    assert (settings.pod_name, settings.node_name) == (FIELDS["metadata.name"],
                                                       FIELDS["spec.nodeName"])
    assert _pod(echo).get("automountServiceAccountToken") is False


class _Forbidden(Dialer):
    """A dialer the probe's pod does not have: any connection through it is a test failure."""

    async def open(self, host: str, port: int, timeout: float):  # type: ignore[override]
        raise AssertionError(f"connected to {host}:{port} from a source this probe lacks")

    def rebound(self, source: str) -> Dialer:
        return self


async def test_each_probe_runs_only_checks_from_the_address_its_pod_has(on, emulate):  # noqa: F811
    """The pod-network probe has no host address and the host-network probe no pod address:
    run each one's checks on a healthy emulated datapath with the other source forbidden."""
    cluster = await emulate({"nodes": [{"name": "node-a"}, {"name": "node-b"}]})
    ran = set()
    for net, ds in _probes(on).items():
        checks = list(_probe_settings(ds).checks)
        for node in cluster.nodes:
            ctx = context(cluster, node)
            lacks = "pod" if net == "host" else "host"
            ctx = dataclasses.replace(ctx, **{lacks: _Forbidden("")})
            results = await run_checks(ctx, checks)
            assert results and all(res.result == r.PASS for res in results), [
                res.describe() for res in results if res.result != r.PASS]
            ran |= {res.check for res in results}
    assert ran == set(r.CHECKS)


def test_the_verification_pods_hold_no_token_and_no_role(on):
    """(test_rbac.py checks the grants: the exporter's one added read, nothing for these.)"""
    (account,) = on.verification("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for ds in on.verification("DaemonSet"):
        assert _pod(ds)["serviceAccountName"] == account["metadata"]["name"]
    assert not [d for kind in RBAC_KINDS for d in on.verification(kind)]
    subjects = [s["name"] for b in on.of_kind("RoleBinding") + on.of_kind("ClusterRoleBinding")
                for s in b["subjects"]]
    assert subjects and account["metadata"]["name"] not in subjects


def _config(out) -> dict[str, Any]:
    return yaml.safe_load(out.config_map()["data"]["config.yaml"])


def _selector(text: str) -> dict[str, str]:
    return dict(term.split("=", 1) for term in text.split(","))


def test_the_exporter_collects_both_probes_and_prometheus_reads_them_there(on, render, ci_values):
    """The exporter discovers the probe pods by label (probes.* in its config file) and serves
    their results again; its ServiceMonitor carries them, so nothing scrapes a probe twice."""
    probes = _config(on)["probes"]
    assert probes["enabled"] is True and probes["namespace"] == NAMESPACE
    selector = _selector(probes["selector"])
    ds = _probes(on).values()
    for d in ds:
        assert _selects(selector, d["spec"]["template"]["metadata"]["labels"])
        # discovery takes the container port named "metrics"
        assert [p["name"] for p in _pod(d)["containers"][0]["ports"]] == ["metrics"]
    assert not any(_selects(selector, d["spec"]["template"]["metadata"]["labels"])
                   for d in on.of_kind("DaemonSet") + on.of_kind("Deployment") if d not in ds)
    assert on.one("ServiceMonitor") and not on.of_kind("PodMonitor")
    assert "probes" not in _config(render())
    assert not [a for a in on.container()["args"] if a.startswith("--probes.")]

    node = render({**ci_values("verification"), "mode": "node"})
    collector_args = node.container()["args"]  # each collector reads its own node's probes
    assert "--probes.node-name=$(NODE_NAME)" in collector_args
    assert not [a for a in node.container("Deployment")["args"] if a.startswith("--probes.")]


def test_an_existing_target_configmap_replaces_the_rendered_one(render):
    out = render({"verification": {"enabled": True, "existingTargetsConfigMap": "my-targets"}})
    assert not [c for c in out.verification("ConfigMap")]
    for ds in _probes(out).values():
        assert _pod(ds)["volumes"][0]["configMap"]["name"] == "my-targets"
    assert _config(out)["probes"]["enabled"] is True


def test_clashing_ports_are_refused_at_render_time(chart, release, ci_values):
    values = ci_values("verification")
    values["verification"]["echo"] = {"hostPort": 31980}
    with pytest.raises(helm.HelmError, match="four different ports"):
        chart.render(values, name=release.name, namespace=release.namespace)


def test_names_stay_dns_labels_with_a_long_fullname(render, ci_values):
    values = {**ci_values("verification"), "fullnameOverride": "k" * 63}
    out = render(values)
    names = [d["metadata"]["name"] for d in out.docs
             if "app.kubernetes.io/part-of" in d["metadata"].get("labels", {})]
    assert len(names) == 11
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), name
    _, targets = _targets(out)
    assert targets.cluster_ip[0].split(".")[0] in names


def test_notes_tell_how_to_read_the_matrix(on, render):
    assert "Verification" in on.notes and "kpr-exporter verify" in on.notes
    assert "probe-host" in on.notes


async def test_the_probe_connects_to_a_service_name_as_the_target_file_gives_it():
    """The rendered target file names Services by DNS name (the parser keeps the name, see
    test_the_target_file_parses_and_names_the_rendered_services); the probe's dialer
    resolves a name at each connection (here localhost, to an echo on loopback)."""
    from exporter.verify.echo import EchoServer, Identity

    server = EchoServer(Identity("echo-0", "worker-1"), "127.0.0.1")
    port = await server.start()
    try:
        seen = await Dialer("127.0.0.1").line(("localhost", port), timeout=2.0)
        assert seen.answered and seen.reply["pod"] == "echo-0"
    finally:
        await server.stop()


EXTRA = "kpr-exporter.io/probe=true,tier in (web,api)"


def _with_extra(ci_values, **more: str) -> dict[str, Any]:
    values = ci_values("verification")
    values["verification"].update({"extraServiceSelector": EXTRA, **more})
    return values


def test_extra_services_are_off_unless_a_selector_is_given(on):
    for ds in _probes(on).values():
        settings = _probe_settings(ds)
        assert (settings.extra_service_selector, settings.extra_service_namespace) == ("", "")
        assert not [a for a in _pod(ds)["containers"][0]["args"] if "extra-service" in a]


@pytest.mark.parametrize("namespace", ["", "team-a"], ids=["all namespaces", "one namespace"])
def test_an_extra_service_selector_reaches_both_probes_with_their_token(
        render, ci_values, namespace):
    out = render(_with_extra(ci_values, extraServiceNamespace=namespace))
    probes = _probes(out)
    for ds in probes.values():
        settings = _probe_settings(ds)
        assert config_constraints.problems(settings, "probe") == []
        assert (settings.extra_service_selector, settings.extra_service_namespace) == (
            EXTRA, namespace)
        assert settings.kubeconfig == ""  # the in-cluster service account
        assert _pod(ds)["automountServiceAccountToken"] is True
    # one probe runs each ClusterIP check, which is where the extra Services are dialled
    ran = {c for ds in probes.values() for c in _probe_settings(ds).checks}
    assert {r.CLUSTERIP_POD, r.CLUSTERIP_HOST} <= ran
    (echo,) = [d for d in out.verification("DaemonSet") if d["metadata"]["name"].endswith("-echo")]
    assert _pod(echo)["automountServiceAccountToken"] is False
    (account,) = out.verification("ServiceAccount")
    assert account["automountServiceAccountToken"] is False  # only the probe pods opt in
    kind = "Role" if namespace else "ClusterRole"
    (role,) = [d for k in RBAC_KINDS for d in out.verification(k) if d["kind"] == kind]
    (binding,) = [d for k in RBAC_KINDS for d in out.verification(k)
                  if d["kind"] == f"{kind}Binding"]
    assert len([d for k in RBAC_KINDS for d in out.verification(k)]) == 2
    assert role["rules"] == [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}]
    assert role["metadata"].get("namespace", "") == namespace
    assert binding["metadata"].get("namespace", "") == namespace
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]


def test_the_extra_service_role_follows_rbac_create(render, ci_values):
    values = _with_extra(ci_values)
    values["rbac"] = {"create": False}
    out = render(values)
    assert not [d for kind in RBAC_KINDS for d in out.of_kind(kind)]
    assert all(_pod(ds)["automountServiceAccountToken"] is True for ds in _probes(out).values())
