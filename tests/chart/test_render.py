"""The chart renders what each mode and switch promises.

Matrix: default values (relay mode, dry-run); node mode through the agent's socket and through
:4244 with mTLS; enforce mode; every optional piece on (ServiceMonitor, PrometheusRule,
dashboards, AlertmanagerConfig in another namespace, NetworkPolicy, relay TLS). Node mode's
topology: collectors (DaemonSet) without webhook, judge or baseline; the central Deployment
(two replicas, the Lease, judge over Prometheus) with its own Service, ServiceAccount and
PodDisruptionBudget, where the AlertmanagerConfig delivers.
"""

from __future__ import annotations

import base64

import yaml

NAMESPACE = "kpr-system"  # the conftest's release namespace
FULLNAME = "kpr-kpr-exporter"  # release "kpr" + chart name
ENFORCE = {"rollback": {"mode": "enforce"}}


def _args(rendered) -> list[str]:
    return rendered.container()["args"]


def _flag(args: list[str], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(name + "=")]
    assert len(values) <= 1, f"{name} given {len(values)} times"
    return values[0] if values else None


def test_default_is_one_relay_deployment_in_dry_run(render, release):
    assert (release.namespace, release.fullname) == (NAMESPACE, FULLNAME)
    out = render()
    assert sorted(set(out.kinds())) == sorted({
        "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "PodDisruptionBudget",
        "Role", "RoleBinding", "Secret", "Service", "ServiceAccount",
    })
    assert not out.of_kind("DaemonSet")
    deployment = out.one("Deployment")
    assert deployment["spec"]["replicas"] == 1
    args = _args(out)
    assert args[0] == "run"
    assert _flag(args, "--web.listen-address") == ":9977"
    assert _flag(args, "--hubble.address") == "hubble-relay.kube-system.svc:80"
    assert _flag(args, "--rollback.mode") == "dry-run"
    assert _flag(args, "--webhook.token-file") == "/etc/kpr-exporter/webhook/token"
    assert _flag(args, "--config.file") == "/etc/kpr-exporter/config/config.yaml"
    assert _flag(args, "--agents.static") is None
    assert not any(a.startswith("--hubble.tls.") for a in args)


def test_image_defaults_to_the_app_version(render, chart):
    out = render()
    assert out.container()["image"] == f"kpr-exporter:{chart.metadata['appVersion']}"
    pinned = render({"image": {"repository": "r.example/kpr", "digest": "sha256:" + "a" * 64}})
    assert pinned.container()["image"] == "r.example/kpr@sha256:" + "a" * 64


def test_service_port_probes_and_hardening(render):
    out = render()
    service = out.one("Service")
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 9977, "targetPort": "http-metrics", "protocol": "TCP"}
    ]
    container = out.container()
    assert container["ports"][0] == {"name": "http-metrics", "containerPort": 9977, "protocol": "TCP"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz/webhook", "port": "http-metrics"}
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = out.workload()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["limits"]["memory"]
    # The Service selects exactly the workload's pods.
    assert service["spec"]["selector"] == out.workload()["spec"]["selector"]["matchLabels"]
    labels = out.workload()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_pdb_covers_the_deployment(render):
    out = render()
    pdb = out.one("PodDisruptionBudget")
    assert pdb["spec"]["selector"] == out.one("Deployment")["spec"]["selector"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert not render({"podDisruptionBudget": {"enabled": False}}).of_kind("PodDisruptionBudget")


def test_config_file_is_mounted_from_the_configmap(render):
    out = render({"config": {"agents": {"interval_seconds": 30}}})
    cm = out.config_map()
    assert cm["metadata"]["name"] == FULLNAME
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert config["agents"]["interval_seconds"] == 30
    assert config["agents"]["namespace"] == "kube-system"  # derived from cilium.namespace
    pod = out.workload()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == FULLNAME
    mounts = {m["name"]: m["mountPath"] for m in out.container()["volumeMounts"]}
    assert mounts["config"] == "/etc/kpr-exporter/config"
    # a config change rolls the pods
    other = render({"config": {"agents": {"interval_seconds": 60}}})
    key = "checksum/config"
    assert (out.workload()["spec"]["template"]["metadata"]["annotations"][key]
            != other.workload()["spec"]["template"]["metadata"]["annotations"][key])


def test_node_mode_reads_the_local_agent_socket(render, ci_values):
    out = render(ci_values("node-socket"))
    ds = out.one("DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    args = _args(out)
    assert _flag(args, "--web.role") == "collector"
    assert _flag(args, "--hubble.address") == "unix:///var/run/cilium/hubble.sock"
    assert _flag(args, "--agents.node-name") == "$(NODE_NAME)"  # discovers its own node's agent
    # ... and its own node's kube-proxy: N collectors must not scrape every kube-proxy N times
    assert _flag(args, "--kube-proxy.node-name") == "$(NODE_NAME)"
    assert _flag(args, "--agents.static") is None
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["hubble-sock-dir"]["hostPath"] == {"path": "/var/run/cilium", "type": "Directory"}
    mount = next(m for m in out.container()["volumeMounts"] if m["name"] == "hubble-sock-dir")
    assert mount == {"name": "hubble-sock-dir", "mountPath": "/var/run/cilium", "readOnly": True}
    assert pod["securityContext"]["supplementalGroups"] == [0]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in out.container()["env"]}
    assert env["NODE_NAME"] == "spec.nodeName"
    assert env["HOST_IP"] == "status.hostIP"
    assert pod["tolerations"] == [{"operator": "Exists"}]


def test_node_mode_with_mtls_to_port_4244(render, ci_values):
    out = render(ci_values("node-tls"))
    args = _args(out)
    assert _flag(args, "--hubble.address") == "$(HOST_IP):4244"
    assert _flag(args, "--hubble.tls.ca-file") == "/etc/kpr-exporter/hubble-tls/ca.crt"
    assert _flag(args, "--hubble.tls.cert-file") == "/etc/kpr-exporter/hubble-tls/tls.crt"
    assert _flag(args, "--hubble.tls.key-file") == "/etc/kpr-exporter/hubble-tls/tls.key"
    # cluster name "prod.eu" -> the agents' wildcard *.prod-eu.hubble-grpc.cilium.io
    assert _flag(args, "--hubble.tls.server-name") == "kpr-exporter.prod-eu.hubble-grpc.cilium.io"
    pod = out.one("DaemonSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["hubble-tls"]["secret"]["secretName"] == "hubble-relay-client-certs"
    assert "hubble-sock-dir" not in volumes
    assert "supplementalGroups" not in pod["securityContext"]


def _service(out, name: str) -> dict:
    return next(s for s in out.of_kind("Service") if s["metadata"]["name"] == name)


def test_both_modes_run_the_same_exporter_with_the_same_service(render, ci_values):
    relay, node = render(), render(ci_values("node-socket"))
    collectors = _service(node, FULLNAME)
    # The same port and labels; node mode's Service selects only the collectors.
    assert {**relay.one("Service")["spec"], "selector": None} == {**collectors["spec"], "selector": None}
    assert collectors["spec"]["selector"] == {**relay.one("Service")["spec"]["selector"],
                                             "app.kubernetes.io/component": "collector"}
    assert collectors["metadata"]["labels"].items() >= relay.one("Service")["spec"]["selector"].items()
    # Relay mode's one exporter = a collector's flags + the deciding flags, with another source.
    strip = {"--hubble.address", "--agents.node-name", "--kube-proxy.node-name", "--web.role"}
    same = lambda args: [a for a in args if a.split("=", 1)[0] not in strip]  # noqa: E731
    deciding = {"--rollback.mode", "--webhook.token-file"}
    assert [a for a in same(_args(relay)) if a.split("=", 1)[0] not in deciding] == same(_args(node))
    assert _flag(_args(relay), "--web.role") is None  # relay mode: the default role, all


def _env(container: dict) -> set[str]:
    return {e["name"] for e in container["env"]}


def test_node_mode_collectors_collect_and_nothing_else(render, ci_values):
    for values in (ci_values("node-socket"), ci_values("node-tls"),
                   {**ci_values("node-socket"), **ENFORCE, "baseline": {"store": "file"}}):
        out = render(values)
        container = out.container()  # the DaemonSet's
        args = _args(out)
        assert _flag(args, "--web.role") == "collector"
        for flag in ("--rollback.mode", "--webhook.token-file", "--judge.source",
                     "--rollback.identity"):
            assert _flag(args, flag) is None, flag
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz/listener"
        pod = out.one("DaemonSet")["spec"]["template"]["spec"]
        volumes = {v["name"] for v in pod["volumes"]}
        assert not {"webhook-token", "kill-switch", "baseline"} & volumes
        assert pod["serviceAccountName"] == FULLNAME
        assert {"NODE_NAME", "HOST_IP"} <= _env(container)


def test_node_mode_central_deployment_judges_over_prometheus_with_the_lease(render, ci_values):
    out = render({**ci_values("node-socket"), **ENFORCE})
    central = out.one("Deployment")
    assert central["metadata"]["name"] == f"{FULLNAME}-central"
    assert central["spec"]["replicas"] == 2
    container = out.container("Deployment")
    args = container["args"]
    assert _flag(args, "--web.role") == "central"
    assert _flag(args, "--judge.source") == "prometheus"
    assert _flag(args, "--judge.prometheus.url") == "http://prometheus-operated.monitoring.svc:9090"
    # The Lease: each replica holds it under its own pod name; a dead holder's expires.
    assert _flag(args, "--rollback.identity") == "$(POD_NAME)"
    assert "POD_NAME" in _env(container) and "NODE_NAME" not in _env(container)
    assert _flag(args, "--rollback.lease-seconds") == "60"
    assert _flag(args, "--rollback.mode") == "enforce"
    assert _flag(args, "--webhook.token-file") == "/etc/kpr-exporter/webhook/token"
    assert not [a for a in args if a.startswith(("--hubble.", "--agents.", "--kube-proxy."))]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz/webhook"
    pod = central["spec"]["template"]["spec"]
    assert {v["name"] for v in pod["volumes"]} == {"config", "webhook-token", "tmp", "kill-switch"}
    assert pod["serviceAccountName"] == f"{FULLNAME}-central"
    assert "supplementalGroups" not in pod["securityContext"]
    assert container["resources"]["limits"]["memory"] == "384Mi"


def test_node_mode_central_has_its_service_pdb_and_webhook(render, ci_values):
    out = render({**ci_values("node-socket"), "alertmanagerConfig": {"enabled": True}})
    central, collectors = out.one("Deployment"), out.one("DaemonSet")
    central_pods = central["spec"]["template"]["metadata"]["labels"]
    collector_pods = collectors["spec"]["template"]["metadata"]["labels"]
    central_sel = central["spec"]["selector"]["matchLabels"]
    collector_sel = collectors["spec"]["selector"]["matchLabels"]
    assert central_sel.items() <= central_pods.items()
    assert collector_sel.items() <= collector_pods.items()
    # Neither workload's selector takes the other's pods.
    assert not central_sel.items() <= collector_pods.items()
    assert not collector_sel.items() <= central_pods.items()
    assert _service(out, f"{FULLNAME}-central")["spec"]["selector"] == central_sel
    assert _service(out, FULLNAME)["spec"]["selector"] == collector_sel
    pdb = out.one("PodDisruptionBudget")
    assert (pdb["metadata"]["name"], pdb["spec"]["selector"]["matchLabels"]) == (
        f"{FULLNAME}-central", central_sel)
    assert {a["metadata"]["name"] for a in out.of_kind("ServiceAccount")} == {
        FULLNAME, f"{FULLNAME}-central"}
    hook = out.one("AlertmanagerConfig")["spec"]["receivers"][0]["webhookConfigs"][0]
    assert hook["url"] == f"http://{FULLNAME}-central.{NAMESPACE}.svc:9977/webhook/alertmanager"
    assert "deploy/kpr-kpr-exporter-central" in out.notes
    # A ServiceMonitor selects both Services: the collectors' SLIs and the central verdicts.
    monitored = render({**ci_values("node-socket"), "serviceMonitor": {"enabled": True}})
    wanted = monitored.one("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert all(wanted.items() <= s["metadata"]["labels"].items()
               for s in monitored.of_kind("Service"))


def test_node_mode_central_values(render, ci_values):
    out = render({**ci_values("node-socket"), "central": {
        "replicas": 3, "leaseSeconds": 30,
        "prometheus": {"url": "https://thanos.monitoring.svc:9090/query", "existingSecret": "auth",
                       "bearerTokenKey": "token", "caKey": "ca.crt"}}})
    assert out.one("Deployment")["spec"]["replicas"] == 3
    args = out.container("Deployment")["args"]
    assert _flag(args, "--judge.prometheus.url") == "https://thanos.monitoring.svc:9090/query"
    assert _flag(args, "--rollback.lease-seconds") == "30"
    assert _flag(args, "--judge.prometheus.bearer-token-file") == "/etc/kpr-exporter/prometheus/token"
    assert _flag(args, "--judge.prometheus.tls.ca-file") == "/etc/kpr-exporter/prometheus/ca.crt"
    pod = out.one("Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "prometheus")
    assert volume["secret"]["secretName"] == "auth"
    mount = next(m for m in out.container("Deployment")["volumeMounts"] if m["name"] == "prometheus")
    assert mount == {"name": "prometheus", "mountPath": "/etc/kpr-exporter/prometheus", "readOnly": True}
    # relay mode renders none of it
    relay = render({"central": {"replicas": 3}})
    assert relay.one("Deployment")["spec"]["replicas"] == 1
    assert _flag(_args(relay), "--judge.source") is None


def test_enforce_mode_passes_the_flag_and_says_so(render, ci_values):
    out = render(ci_values("enforce"))
    assert _flag(_args(out), "--rollback.mode") == "enforce"
    assert "ENFORCE MODE" in out.notes
    dry = render()
    assert "DRY-RUN" in dry.notes and "--set rollback.mode=enforce" in dry.notes
    assert "ENFORCE MODE" not in dry.notes


def test_webhook_token_secret_generated_or_existing(render):
    out = render()
    secret = out.one("Secret")
    assert secret["metadata"]["name"] == f"{FULLNAME}-webhook-token"
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) >= 32
    assert token != base64.b64decode(render().one("Secret")["data"]["token"]).decode()
    given = render({"webhook": {"token": {"value": "s3cret-token"}}})
    assert base64.b64decode(given.one("Secret")["data"]["token"]) == b"s3cret-token"
    existing = render({"webhook": {"token": {"existingSecret": "mine", "key": "bearer"}}})
    assert not existing.of_kind("Secret")
    volume = next(v for v in existing.workload()["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "webhook-token")
    assert volume["secret"]["secretName"] == "mine"
    assert volume["secret"]["items"] == [{"key": "bearer", "path": "token"}]


def test_everything_on(render, ci_values, release):
    out = render(ci_values("all-on"))
    sm = out.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["selector"]["matchLabels"] == out.one("Service")["spec"]["selector"]
    endpoint = sm["spec"]["endpoints"][0]
    assert endpoint["port"] == "http-metrics"
    assert endpoint["honorLabels"] is True
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert sm["spec"]["jobLabel"] == "app.kubernetes.io/name"

    rule = out.one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"]

    # Every ConfigMap but the exporter's own config is a dashboard's, one per dashboards/*.json.
    config = out.config_map()
    dashboards = [cm for cm in out.of_kind("ConfigMap") if cm is not config]
    shipped = sorted((release.root / "dashboards").glob("*.json"))
    assert shipped and len(dashboards) == len(shipped)
    names = {cm["metadata"]["name"] for cm in dashboards}
    assert names == {f"{FULLNAME}-dashboard-{p.stem}" for p in shipped}
    for cm in dashboards:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "kpr-exporter"
        assert len(cm["metadata"]["name"]) <= 63

    amc = out.one("AlertmanagerConfig")
    assert amc["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    assert amc["metadata"]["namespace"] == "monitoring"
    route = amc["spec"]["route"]
    assert route["matchers"] == [{"name": "kpr_action", "value": "rollback", "matchType": "="}]
    (receiver,) = amc["spec"]["receivers"]
    assert route["receiver"] == receiver["name"]
    (hook,) = receiver["webhookConfigs"]
    assert hook["url"] == f"http://{FULLNAME}.{NAMESPACE}.svc:9977/webhook/alertmanager"
    assert hook["httpConfig"]["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": f"{FULLNAME}-webhook-token", "key": "token"},
    }
    # The token Secret exists in Alertmanager's namespace too, with the same token.
    secrets = {s["metadata"]["namespace"]: s for s in out.of_kind("Secret")}
    assert set(secrets) == {NAMESPACE, "monitoring"}
    assert secrets[NAMESPACE]["data"] == secrets["monitoring"]["data"]

    netpol = out.one("NetworkPolicy")
    assert netpol["spec"]["ingress"][0]["ports"] == [{"port": "http-metrics", "protocol": "TCP"}]
    peers = netpol["spec"]["ingress"][0]["from"]
    assert {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in peers} == {
        "prometheus", "alertmanager"}
    assert netpol["spec"]["policyTypes"] == ["Ingress", "Egress"]

    args = _args(out)
    assert _flag(args, "--hubble.address") == "hubble-relay.kube-system.svc:443"
    assert _flag(args, "--hubble.tls.server-name") == "kpr-exporter.hubble-relay.cilium.io"
    assert _flag(args, "--hubble.tls.cert-file") == "/etc/kpr-exporter/hubble-tls/tls.crt"


# Alertmanager 0.25 rejects these webhook fields (url_file, timeout, http_headers, payload);
# the operator would otherwise drop them with only a log line.
_NEWER_THAN_AM_025 = {"urlSecret", "timeout", "payload", "httpHeaders"}


def test_alertmanager_config_uses_only_fields_alertmanager_025_accepts(render, ci_values):
    hook = render(ci_values("all-on")).one("AlertmanagerConfig")["spec"]["receivers"][0][
        "webhookConfigs"][0]
    assert set(hook) <= {"url", "sendResolved", "maxAlerts", "httpConfig"}
    assert not _NEWER_THAN_AM_025 & set(hook)
    assert set(hook["httpConfig"]) == {"authorization"}


def test_profile_assumptions_drive_scrape_interval_and_group_wait(render, release):
    on = {"serviceMonitor": {"enabled": True}, "alertmanagerConfig": {"enabled": True}}
    default = render(on)
    fast = render({**on, "alerts": {"profile": "fast"}})
    profiles = yaml.safe_load((release.root / "alerts" / "profiles.yaml").read_text())["profiles"]

    def assumed(name: str, key: str) -> str:
        while key not in profiles[name].get("assumptions", {}):
            name = profiles[name]["extends"]
        return profiles[name]["assumptions"][key]

    for out, name in ((default, "default"), (fast, "fast")):
        endpoint = out.one("ServiceMonitor")["spec"]["endpoints"][0]
        assert endpoint["interval"] == assumed(name, "scrape_interval")
        route = out.one("AlertmanagerConfig")["spec"]["route"]
        assert route["groupWait"] == assumed(name, "group_wait")
    explicit = render({"serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "7s"}})
    endpoint = explicit.one("ServiceMonitor")["spec"]["endpoints"][0]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "7s")


def test_every_namespaced_object_sits_where_it_should(render, ci_values):
    out = render(ci_values("all-on"))
    elsewhere = {"monitoring", "kube-system"}
    for doc in out.docs:
        meta = doc["metadata"]
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            assert "namespace" not in meta
            continue
        assert meta.get("namespace") in {NAMESPACE} | elsewhere, (doc["kind"], meta)
