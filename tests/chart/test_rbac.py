"""The rendered RBAC grants exactly what the code declares it uses.

Both sides are flattened to grants (namespace, API group, resource, verb, object name; "" for
the namespace of a ClusterRole and for "any name"), with a named grant dropped when the same
verb is granted for any name. The code's side is built from the object names in the rendered
config file, i.e. what the pod runs with.

Matrix:
- dry-run writes nothing but the baseline ConfigMap (none with the file store); it grants the
  reads of the rollback planner (dry-run plans against the live cluster) and the watchers';
- enforce adds exactly the rollback's writes (exporter/rollback/permissions.py, uses
  "rollback"), nothing else; switching back to dry-run drops them;
- rbac.backup in dry-run adds exactly the backup's non-optional writes;
- the optional Helm-release Secret listing and the preflight-only reads are never granted;
- the watchers' reads (the Mirrors exporter/kube's DatapathWatcher and BackendWatcher build:
  list + watch of a resource, in a namespace, maybe one name by field selector) are granted,
  and together with the rollback's and the baseline's needs they are all that is granted;
- names follow config overrides; every role is bound to the exporter's ServiceAccount, once;
  rbac.create=false renders none.
- node mode splits them by ServiceAccount: the collectors' gets exactly the reads of
  collection (the datapath watcher, the backend map, the agent discovery), never a write, in
  any rollback mode; the central Deployment's gets the rest (the planner's reads, the owner
  watch, the baseline) and, in enforce, exactly the rollback's writes; together they grant
  what relay mode's one ServiceAccount does.
- the agents' and kube-proxy scrapers' discovery lists their pods where the config file
  says (kube_proxy.* follows kubeProxy.*; a config override gets its own listing grant).
- active verification: the echo's and probes' account is bound to nothing; the exporter (relay
  mode, node mode's collectors) gets exactly the listing of the probe pods it collects. With
  verification.extraServiceSelector the probes' account gets exactly the listing of Services
  (cluster-wide, or in verification.extraServiceNamespace), and the exporter's do not change.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from exporter.baseline.settings import CONFIGMAP, BaselineSettings
from exporter.kube.backends import BackendMap, BackendWatcher
from exporter.kube.datapath_feed import DatapathWatcher
from exporter.kube.owners_feed import KubeProxyObjects
from exporter.kube.mirror import Mirror
from exporter.kube.settings import KubeSettings
from exporter.rollback import permissions
from exporter.rollback.settings import RollbackSettings
from exporter.sources.kube_proxy_settings import KubeProxySettings

Grant = tuple[str, str, str, str, str]  # namespace, group, resource, verb, name
READ_VERBS = frozenset({"get", "list", "watch"})
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def _minimal(grants: Iterable[Grant]) -> set[Grant]:
    grants = set(grants)
    return {g for g in grants if not (g[4] and (*g[:4], "") in grants)}


def _rendered(out, account: str | None = None) -> set[Grant]:
    """What the roles grant; with ``account``, only the roles bound to that ServiceAccount."""
    bound = {(b["roleRef"]["kind"], b["metadata"].get("namespace", ""), b["roleRef"]["name"])
             for b in out.of_kind("RoleBinding") + out.of_kind("ClusterRoleBinding")
             if account is None or any(s["name"] == account for s in b["subjects"])}
    grants: set[Grant] = set()
    for role in out.of_kind("Role") + out.of_kind("ClusterRole"):
        if (role["kind"], role["metadata"].get("namespace", ""), role["metadata"]["name"]) not in bound:
            continue
        namespace = role["metadata"].get("namespace", "") if role["kind"] == "Role" else ""
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames") or [""]:
                            grants.add((namespace, group, resource, verb, name))
    return _minimal(grants)


def _declared(perms: Iterable[Any], verbs: frozenset[str] | None = None) -> set[Grant]:
    grants: set[Grant] = set()
    for p in perms:
        for verb in p.verbs:
            if verbs is not None and verb not in verbs:
                continue
            for name in p.resource_names or ("",):
                grants.add((p.namespace, p.api_group, p.resource, verb, name))
    return _minimal(grants)


def _build(cls: type, doc: dict[str, Any]) -> Any:
    """A settings dataclass from its config-file section (nested sections included)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in doc:
            continue
        value = doc[f.name]
        kwargs[f.name] = _build(hints[f.name], value) if dataclasses.is_dataclass(hints[f.name]) else value
    return cls(**kwargs)


def _config(out) -> dict[str, Any]:
    return yaml.safe_load(out.config_map()["data"]["config.yaml"])


def _rollback_settings(out) -> RollbackSettings:
    return _build(RollbackSettings, _config(out)["rollback"])


def _writes(grants: Iterable[Grant]) -> set[Grant]:
    return {g for g in grants if g[3] not in READ_VERBS}


def _needs(out, uses: tuple[str, ...], *, optional: bool = False) -> list[Any]:
    return [p for p in permissions.required(_rollback_settings(out), uses) if optional or not p.optional]


ENFORCE = {"rollback": {"mode": "enforce"}}


def _baseline_writes(out) -> set[Grant]:
    """The ConfigMap store of the baseline (exporter/baseline/store.py): get, create, replace."""
    settings = _build(BaselineSettings, _config(out)["baseline"])
    if settings.store != CONFIGMAP:
        return set()
    ns, name = settings.configmap.namespace, settings.configmap.name
    return {(ns, "", "configmaps", "create", ""), (ns, "", "configmaps", "update", name)}


def test_dry_run_writes_nothing_but_its_baseline(render):
    out = render()
    assert _rollback_settings(out).mode == "dry-run"
    baseline = _baseline_writes(out)
    assert baseline, "the chart keeps the baseline in a ConfigMap by default"
    assert _writes(_rendered(out)) == baseline
    namespace = out.config_map()["metadata"]["namespace"]
    assert ("kpr-exporter-baseline" in {g[4] for g in baseline}
            and {g[0] for g in baseline} == {namespace})


def test_file_baseline_needs_no_write(render):
    out = render({"baseline": {"store": "file", "existingClaim": "kpr-data"}})
    assert _writes(_rendered(out)) == set()
    pod = out.workload()["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "baseline")
    assert volume["persistentVolumeClaim"] == {"claimName": "kpr-data"}
    assert _config(out)["baseline"] == {"store": "file", "file": "/var/lib/kpr-exporter/baseline.json"}


def test_dry_run_grants_what_the_planner_reads(render):
    out = render()
    reads = _declared(_needs(out, (permissions.ROLLBACK,)), READ_VERBS)
    assert reads, "the planner reads something"
    missing = reads - _rendered(out)
    assert not missing, f"dry-run plans against the cluster but cannot: {sorted(missing)}"


def test_enforce_adds_exactly_the_rollback_writes(render):
    dry, enforce = render(), render(ENFORCE)
    needed = _needs(enforce, (permissions.ROLLBACK,))
    added = _rendered(enforce) - _rendered(dry)
    assert added == _declared(needed) - _rendered(dry)
    assert added == _writes(_declared(needed)) - _baseline_writes(dry)
    assert _declared(needed) <= _rendered(enforce)


def test_rollback_objects_are_separate_and_bound(render, release):
    dry, enforce = render(), render(ENFORCE)
    dry_names = {d["metadata"]["name"] for d in dry.docs if d["kind"] in RBAC_KINDS}
    enforce_only = [d for d in enforce.docs
                    if d["kind"] in RBAC_KINDS and d["metadata"]["name"] not in dry_names]
    assert enforce_only
    assert all("-rollback" in d["metadata"]["name"] for d in enforce_only)
    # The read objects themselves are identical in both modes.
    key = lambda d: (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])  # noqa: E731
    dry_objects = {key(d): d for d in dry.docs if d["kind"] in RBAC_KINDS}
    assert {key(d): d for d in enforce.docs if key(d) in dry_objects} == dry_objects


def test_backup_switch_adds_exactly_the_backup_writes(render):
    dry = render()
    with_backup = render({"rbac": {"backup": True}})
    needed = _needs(with_backup, (permissions.BACKUP,))
    assert _declared(needed) <= _rendered(with_backup)
    assert _rendered(with_backup) - _rendered(dry) == _writes(_declared(needed)) - _baseline_writes(dry)
    # enforce already covers the backup
    enforce = render(ENFORCE)
    assert _declared(needed) <= _rendered(enforce)
    assert _rendered(render({**ENFORCE, "rbac": {"backup": True}})) == _rendered(enforce)


def test_optional_and_preflight_only_permissions_are_not_granted(render):
    out = render({**ENFORCE, "rbac": {"backup": True}})
    granted = _rendered(out)
    everything = permissions.required(_rollback_settings(out))
    optional = [p for p in everything if p.optional]
    assert optional, "the Helm-release Secret listing is declared optional"
    assert not _declared(optional) & granted
    assert not any(g[2] == "secrets" for g in granted)
    preflight_only = [p for p in everything if set(p.used_by) == {permissions.PREFLIGHT}]
    stray = _declared(preflight_only) - _declared(
        _needs(out, (permissions.ROLLBACK, permissions.BACKUP)))
    # (the backend map watches Services in every namespace, as preflight lists them)
    stray -= _kube_reads(out)
    assert stray, "preflight declares reads of its own"
    assert not stray & granted


ALL_WATCHERS = ("datapath", "backends", "owners")
COLLECTOR_WATCHERS = ("datapath", "backends")  # web.role collector (exporter/app.py)
CENTRAL_WATCHERS = ("datapath", "owners")       # web.role central: no flows to attribute


def _kube_reads(out, watchers: tuple[str, ...] = ALL_WATCHERS, *,
                discovery: bool = True) -> set[Grant]:
    """What the Kubernetes watchers read, for the rendered config.

    exporter/kube has no permission table of its own; its watchers declare what they read by
    the Mirrors they build (resource, namespace, field selector), and each Mirror lists and
    watches. Built here without a client: constructing a watcher talks to nobody.
    """
    mirrors = _watcher_mirrors(out, watchers)
    grants: set[Grant] = set()
    agents = _config(out)["agents"]
    if discovery and not agents.get("static"):
        # the agent scraper's discovery (exporter/app.py): list the agent pods
        grants.add((agents["namespace"], "", "pods", "list", ""))
    kube_proxy = _build(KubeProxySettings, _config(out).get("kube_proxy", {}))
    if discovery and kube_proxy.enabled and not kube_proxy.static:
        # the kube-proxy scraper's discovery (exporter/app.py): list the kube-proxy pods
        grants.add((kube_proxy.namespace, "", "pods", "list", ""))
    probes = _config(out).get("probes", {})
    if discovery and probes.get("enabled") and not probes.get("static"):
        # the probe results' discovery (exporter/probe_pods.py): list the probe pods
        grants.add((probes["namespace"], "", "pods", "list", ""))
    for mirror in mirrors:
        selector = mirror._watch_args.get("field_selector", "")
        name = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else ""
        for verb in ("list", "watch"):
            grants.add((mirror.namespace or "", mirror.resource.group, mirror.resource.plural,
                        verb, name))
    return _minimal(grants)


def _watcher_mirrors(out, which: tuple[str, ...] = ALL_WATCHERS) -> list[Any]:
    """The Mirrors the watchers build for the rendered config. A changed constructor fails here:
    the comparison with the granted reads must not silently stop."""
    settings = _build(KubeSettings, _config(out)["kube"])
    kp = _config(out)["rollback"]["kube_proxy"]
    built = {"datapath": DatapathWatcher(None, settings, None),  # type: ignore[arg-type]
             "backends": BackendWatcher(None, settings, BackendMap()),  # type: ignore[arg-type]
             "owners": KubeProxyObjects(None, settings, namespace=kp["namespace"],  # type: ignore[arg-type]
                                        daemonset=kp["daemonset"], configmap=kp["configmap"])}
    watchers = [built[name] for name in which]
    found: list[Any] = []
    for watcher in watchers:
        for value in vars(watcher).values():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, Mirror):
                    found.append(item)
    return found


def test_the_watchers_reads_are_granted(render):
    """Every resource the watchers list and watch is readable, in every mode."""
    for values in ({}, ENFORCE):
        out = render(values)
        mirrors = _watcher_mirrors(out)
        assert len(mirrors) >= 6, [m.describe() for m in mirrors]
        missing = _kube_reads(out) - _rendered(out)
        assert not missing, f"the watchers would be refused: {sorted(missing)}"


@pytest.mark.parametrize("values", [{}, ENFORCE], ids=["dry-run", "enforce"])
def test_every_grant_is_declared_by_the_code(render, values):
    out = render(values)
    uses = (permissions.ROLLBACK,)
    rollback = _declared(_needs(out, uses)) if values else _declared(_needs(out, uses), READ_VERBS)
    expected = rollback | _kube_reads(out) | _baseline_writes(out)
    expected |= {(*g[:3], "get", g[4]) for g in _baseline_writes(out) if g[3] == "update"}
    assert _rendered(out) == _minimal(expected)


def test_names_and_namespaces_follow_the_config(render):
    overrides = {
        **ENFORCE,
        "cilium": {"namespace": "cilium", "configMapName": "cilium-cfg"},
        "kubeProxy": {"namespace": "kp", "daemonSetName": "kp-ds", "configMapName": "kp-cm"},
        "config": {"rollback": {"state_configmap": "my-state", "lease_name": "my-lease"}},
    }
    out = render(overrides)
    granted = _rendered(out)
    needed = _declared(_needs(out, (permissions.ROLLBACK,)))
    assert needed <= granted
    names = {g[4] for g in granted}
    assert {"cilium-cfg", "kp-ds", "kp-cm", "my-state", "my-lease"} <= names
    assert not {"cilium-config", "kube-proxy", "kpr-exporter-rollback"} & names
    assert {g[0] for g in granted} == {"", "cilium", "kp", out.config_map()["metadata"]["namespace"]}


def test_each_role_is_bound_once_to_the_service_account(render, release):
    out = render({**ENFORCE, "serviceAccount": {"name": "kpr-sa"}})
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
             for d in out.of_kind("Role") + out.of_kind("ClusterRole")}
    bound = []
    for b in out.of_kind("RoleBinding") + out.of_kind("ClusterRoleBinding"):
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "kpr-sa",
                                  "namespace": release.namespace}]
        namespace = b["metadata"].get("namespace", "")
        bound.append((b["roleRef"]["kind"], namespace, b["roleRef"]["name"]))
    assert sorted(bound) == sorted(roles)
    assert out.one("ServiceAccount")["metadata"]["name"] == "kpr-sa"
    assert out.workload()["spec"]["template"]["spec"]["serviceAccountName"] == "kpr-sa"


VERIFY = {"verification": {"enabled": True,
                           "nodes": [{"name": "w1", "addresses": ["10.0.0.1"]}]}}


@pytest.mark.parametrize("values", [{}, ENFORCE], ids=["dry-run", "enforce"])
def test_verification_adds_only_the_probe_discovery(render, values):
    """The echo and the probes read nothing from the API: their ServiceAccount is bound to no
    role. The exporter lists the probe pods in the release namespace to collect their results;
    that is the one grant verification adds, and every grant is still declared by the code."""
    out = render({**values, **VERIFY})
    (account,) = [a["metadata"]["name"] for a in out.of_kind("ServiceAccount")
                  if "app.kubernetes.io/part-of" in a["metadata"]["labels"]]
    assert _rendered(out, account) == set()
    assert _rendered(out) - _rendered(render(values)) == {
        (out.config_map()["metadata"]["namespace"], "", "pods", "list", "")}
    uses = (permissions.ROLLBACK,)
    rollback = _declared(_needs(out, uses)) if values else _declared(_needs(out, uses), READ_VERBS)
    expected = rollback | _kube_reads(out) | _baseline_writes(out)
    expected |= {(*g[:3], "get", g[4]) for g in _baseline_writes(out) if g[3] == "update"}
    assert _rendered(out) == _minimal(expected)


@pytest.mark.parametrize(("namespace", "scope"), [("", ""), ("team-a", "team-a")],
                         ids=["all namespaces", "one namespace"])
def test_an_extra_service_selector_adds_only_the_probes_service_listing(render, namespace, scope):
    """verification.extraServiceSelector: the probes' account may list Services (in the one
    namespace when restricted, else cluster-wide) and nothing else; the exporter's grants do
    not change."""
    extra = {"extraServiceSelector": "kpr-exporter.io/probe=true",
             "extraServiceNamespace": namespace}
    out = render({"verification": {**VERIFY["verification"], **extra}})
    (account,) = [a["metadata"]["name"] for a in out.of_kind("ServiceAccount")
                  if "app.kubernetes.io/part-of" in a["metadata"]["labels"]]
    assert _rendered(out, account) == {(scope, "", "services", "list", "")}
    (exporter,) = [a["metadata"]["name"] for a in out.exporter("ServiceAccount")]
    assert _rendered(out, exporter) == _rendered(render(VERIFY))


def test_rbac_can_be_left_to_the_user(render):
    out = render({**ENFORCE, "rbac": {"create": False}})
    assert not [d for d in out.docs if d["kind"] in RBAC_KINDS]


# --- node mode: the collectors' ServiceAccount and the central one -----------------------------

NODE = {"mode": "node"}
COLLECTOR_SA, CENTRAL_SA = "kpr-kpr-exporter", "kpr-kpr-exporter-central"


@pytest.mark.parametrize("values", [NODE, {**NODE, **ENFORCE}, {**NODE, "rbac": {"backup": True}},
                                    {**NODE, **VERIFY}],
                         ids=["dry-run", "enforce", "backup", "verification"])
def test_node_mode_collectors_get_only_the_collection_reads(render, values):
    out = render(values)
    collector = _rendered(out, COLLECTOR_SA)
    assert collector, "the collectors read the cluster"
    assert collector == _kube_reads(out, COLLECTOR_WATCHERS)
    assert not _writes(collector)
    # nothing of the rollback's bookkeeping, the owner watch or the baseline
    names = {g[4] for g in collector}
    assert not {"kpr-exporter-rollback", "kpr-exporter-backup", "kpr-exporter-baseline",
                "kube-proxy"} & names
    assert not {g for g in collector if g[2] in ("leases", "daemonsets", "events")}


@pytest.mark.parametrize("values", [NODE, {**NODE, **ENFORCE}, {**NODE, **VERIFY}],
                         ids=["dry-run", "enforce", "verification"])
def test_node_mode_central_gets_the_rest_and_the_rollback_rights(render, values):
    out = render(values)
    uses = (permissions.ROLLBACK,)
    needed = _declared(_needs(out, uses))
    rollback = needed if values.get("rollback") else _declared(_needs(out, uses), READ_VERBS)
    expected = rollback | _kube_reads(out, CENTRAL_WATCHERS, discovery=False) | _baseline_writes(out)
    expected |= {(*g[:3], "get", g[4]) for g in _baseline_writes(out) if g[3] == "update"}
    central = _rendered(out, CENTRAL_SA)
    assert central == _minimal(expected)
    assert not {g for g in central if g[2] in ("services", "endpointslices")}
    if values.get("rollback"):
        assert _writes(needed) and _writes(needed) <= central


@pytest.mark.parametrize("values", [{}, ENFORCE, {"rbac": {"backup": True}}, VERIFY],
                         ids=["dry-run", "enforce", "backup", "verification"])
def test_node_mode_grants_together_what_relay_mode_grants(render, values):
    relay, node = render(values), render({**NODE, **values})
    assert _rendered(node, COLLECTOR_SA) | _rendered(node, CENTRAL_SA) == _rendered(relay)
    assert _rendered(node) == _rendered(relay)


def test_node_mode_binds_each_role_once_to_its_service_account(render, release):
    out = render({**NODE, **ENFORCE, "rbac": {"backup": True}})
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
             for d in out.of_kind("Role") + out.of_kind("ClusterRole")}
    bound = []
    for b in out.of_kind("RoleBinding") + out.of_kind("ClusterRoleBinding"):
        (subject,) = b["subjects"]
        name = b["roleRef"]["name"]
        collector = not any(part in name for part in ("-central", "-rollback", "-backup"))
        assert subject == {"kind": "ServiceAccount", "namespace": release.namespace,
                           "name": COLLECTOR_SA if collector else CENTRAL_SA}, name
        bound.append((b["roleRef"]["kind"], b["metadata"].get("namespace", ""), name))
    assert sorted(bound) == sorted(roles)
    pods = {w["kind"]: w["spec"]["template"]["spec"]["serviceAccountName"]
            for w in out.of_kind("DaemonSet") + out.of_kind("Deployment")}
    assert pods == {"DaemonSet": COLLECTOR_SA, "Deployment": CENTRAL_SA}
    named = render({**NODE, "serviceAccount": {"name": "kpr-sa"}})
    assert {a["metadata"]["name"] for a in named.of_kind("ServiceAccount")} == {
        "kpr-sa", "kpr-sa-central"}
    own = render({**NODE, "serviceAccount": {"create": False, "name": "mine"}})
    assert not own.of_kind("ServiceAccount")
    assert {w["spec"]["template"]["spec"]["serviceAccountName"]
            for w in own.of_kind("DaemonSet") + own.of_kind("Deployment")} == {"mine"}
