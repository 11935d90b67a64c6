"""CLI functions and the RBAC declaration, against the fake API.

Matrix: backup to a ConfigMap and to a file (summary, warnings); rollback --dry-run
prints the plan and writes nothing; rollback enforce with confirmation declined and
accepted; refused rollback exits 3; bad scope; preflight exit codes. Then every request
the executor, backup and preflight sent in those runs must be covered by
``permissions.required`` (and nothing is declared twice), and ``as_rules`` is RBAC-shaped.
"""

from __future__ import annotations

import io
import re

from exporter.rollback import permissions as perms
from exporter.preflight.preflight_cmd import cmd_preflight
from exporter.rollback.backup_cmd import cmd_backup
from exporter.rollback.rollback_cmd import cmd_rollback, parse_scope

from .cluster import MIGRATION, seed_canary, seed_full, settings

S = settings()


async def test_backup_to_configmap_and_file(fake_kube, kube, vtime, tmp_path):
    seed_canary(fake_kube)
    out = io.StringIO()
    assert await cmd_backup(S, kube, out=out, clock=vtime) == 0
    assert "backup written to ConfigMap kpr/kpr-exporter-backup" in out.getvalue()
    assert "kube-proxy DaemonSet:   yes" in out.getvalue()
    path = tmp_path / "b.json"
    out = io.StringIO()
    assert await cmd_backup(S, kube, output=str(path), out=out, clock=vtime) == 0
    assert path.exists() and f"file {path}" in out.getvalue()
    assert "warning: no Helm release 'cilium'" in out.getvalue()


async def test_rollback_dry_run_prints_and_writes_nothing(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    fake_kube.clear_requests()
    out = io.StringIO()
    code = await cmd_rollback(S, kube, dry_run=True, scope="canary", out=out, clock=vtime, sleep=vtime.sleep)
    assert code == 0
    text = out.getvalue()
    assert "Rollback plan" in text and "remove label " + MIGRATION + " from node node-b" in text
    assert text.rstrip().endswith("dry-run: nothing was changed")
    assert {r.method for r in fake_kube.requests} == {"GET"}


async def test_rollback_enforce_asks_then_acts(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    out = io.StringIO()
    code = await cmd_rollback(S, kube, dry_run=False, scope="node-b", out=out, confirm=lambda plan: False,
                              clock=vtime, sleep=vtime.sleep)
    assert code == 3 and "aborted" in out.getvalue()
    assert MIGRATION in fake_kube.get("nodes", "node-b")["metadata"]["labels"]
    asked = []
    out = io.StringIO()
    code = await cmd_rollback(S, kube, dry_run=False, scope="node-b", out=out,
                              confirm=lambda plan: asked.append(plan) or True,
                              clock=vtime, sleep=vtime.sleep)
    assert code == 0, out.getvalue()
    assert asked and "succeeded: rolled back node node-b" in out.getvalue()
    assert MIGRATION not in fake_kube.get("nodes", "node-b")["metadata"]["labels"]


async def test_rollback_refused_and_bad_scope(fake_kube, kube, controller, vtime):
    seed_full(fake_kube)
    out = io.StringIO()
    assert await cmd_rollback(S, kube, dry_run=True, scope="cluster", out=out, clock=vtime) == 3
    assert "REFUSED, nothing will be changed" in out.getvalue()
    out = io.StringIO()
    assert await cmd_rollback(S, kube, dry_run=True, scope=" , ", out=out, clock=vtime) == 1
    assert "--scope must be" in out.getvalue()
    assert parse_scope("cluster", []).kind == "cluster"
    assert parse_scope("a, b", []).nodes == ("a", "b")


async def test_preflight_exit_code(fake_kube, kube):
    seed_canary(fake_kube)
    out = io.StringIO()
    assert await cmd_preflight(S, kube, out=out) == 1  # no backup, no service host env
    assert "backup" in out.getvalue() and "FAIL" in out.getvalue()


# --- RBAC -------------------------------------------------------------------------------

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)(?:/(?P<name>[^/]+))?$")
_VERB = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


PUBLIC_URLS = frozenset({"/version"})


def needed(request) -> tuple[str, str, str, str, str]:
    m = _PATH.match(request.path)
    assert m, request.path
    verb = _VERB.get(request.method) or ("get" if m["name"] else "list")
    return (m["group"] or "", m["res"], verb, m["ns"] or "", m["name"] or "")


def covered(declared, group, resource, verb, ns, name) -> bool:
    return any(p.api_group == group and p.resource == resource and verb in p.verbs
               and p.namespace in ("", ns) and (not p.resource_names or name in p.resource_names)
               for p in declared)


async def test_every_request_is_declared(fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    controller.reconcile()
    out = io.StringIO()
    assert await cmd_backup(S, kube, out=out, clock=vtime) == 0
    assert await cmd_preflight(S, kube, out=out) in (0, 1)
    fake_kube.remove("daemonsets", "kube-proxy", "kube-system")
    fake_kube.remove("configmaps", "kube-proxy", "kube-system")
    assert await cmd_rollback(S, kube, dry_run=False, scope="cluster", out=out, clock=vtime,
                              sleep=vtime.sleep) == 0, out.getvalue()
    declared = perms.required(S)
    # /version is a non-resource URL every authenticated user may read (system:discovery)
    resources = [r for r in fake_kube.requests if r.path not in PUBLIC_URLS]
    assert len(resources) < len(fake_kube.requests), "the planner reads the server version"
    missing = {needed(r) for r in resources if not covered(declared, *needed(r))}
    assert missing == set()


def test_declaration_shape():
    declared = perms.required(S)
    for p in declared:
        assert p.verbs and p.used_by and p.why
        if "create" in p.verbs or "list" in p.verbs:
            assert not p.resource_names, p  # RBAC cannot restrict these by name
    assert {p.resource for p in perms.required(S, [perms.PREFLIGHT])} >= {"services", "pods", "nodes"}
    assert not [p for p in perms.required(S, [perms.PREFLIGHT]) if set(p.verbs) - {"get", "list"}
                and p.used_by == (perms.PREFLIGHT,)]
    rules = perms.as_rules(declared)
    assert set(rules) == {"", "kube-system", "kpr"}
    cm = [r for r in rules["kube-system"] if r["resources"] == ["configmaps"]
          and r.get("resourceNames") == ["cilium-config"]]
    assert cm == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"],
                   "resourceNames": ["cilium-config"]}]
    secrets = [p for p in declared if p.resource == "secrets"]
    assert secrets and all(p.optional for p in secrets)
