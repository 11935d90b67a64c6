"""The guided migration's RBAC: migration.enabled grants exactly what the code declares.

The code's side is ``permissions.required(settings, MIGRATION_USES [+ DRAIN], migrate=...)``
with the object names of the rendered config file (as in test_rbac.py, whose helpers these
tests use).

Matrix:
- off by default: no migrate section in the config file, no grant changes;
- migration.enabled in dry-run: the config file enables the controller, and the only grant
  added is reading the migration's state ConfigMap (the own-namespace ConfigMap rule names
  it); migration.drain alone adds nothing;
- with rollback.mode=enforce: exactly the declared grants of the migration, the preflight, the
  backup and the rollback, as separate *-migration objects bound to the deciding account,
  and nothing beyond them; relay and node mode grant the same, node mode's collectors none
  of it;
- migration.drain in enforce adds exactly evicting pods in every namespace;
- the state ConfigMap's name follows config.migrate.state_configmap.
"""

from __future__ import annotations

from typing import Any

import pytest

from exporter.migrate.settings import MigrateSettings
from exporter.rollback import permissions
from tests.chart.test_rbac import (
    ENFORCE, RBAC_KINDS, READ_VERBS, _baseline_writes, _build, _config, _declared, _kube_reads,
    _minimal, _rendered, _rollback_settings,
)

MIGRATION = {"migration": {"enabled": True}}
DRAIN = {"migration": {"enabled": True, "drain": True}}
NODE = {"mode": "node"}
COLLECTOR_SA, CENTRAL_SA = "kpr-kpr-exporter", "kpr-kpr-exporter-central"


def _migrate_settings(out) -> MigrateSettings:
    return _build(MigrateSettings, _config(out).get("migrate") or {})


def _needs(out, uses: tuple[str, ...]) -> list[Any]:
    return [p for p in permissions.required(_rollback_settings(out), uses,
                                            migrate=_migrate_settings(out)) if not p.optional]


def _expected(out, uses: tuple[str, ...], *, reads_only: bool) -> set[tuple[str, ...]]:
    declared = _declared(_needs(out, uses), READ_VERBS if reads_only else None)
    baseline = _baseline_writes(out)
    baseline |= {(*g[:3], "get", g[4]) for g in baseline if g[3] == "update"}
    return _minimal(declared | _kube_reads(out) | baseline)


def test_off_by_default(render):
    out = render()
    assert "migrate" not in _config(out)
    assert _rendered(render({"migration": {"enabled": False, "drain": True}})) == _rendered(out)


def test_dry_run_only_reads_the_migration_state(render):
    dry, out = render(), render(MIGRATION)
    assert _config(out)["migrate"] == {"enabled": True, "state_configmap": "kpr-exporter-migration"}
    namespace = out.config_map()["metadata"]["namespace"]
    assert _rendered(out) - _rendered(dry) == {
        (namespace, "", "configmaps", "get", "kpr-exporter-migration")}
    uses = (permissions.ROLLBACK, permissions.MIGRATE)
    assert _rendered(out) == _expected(out, uses, reads_only=True)
    assert _rendered(render(DRAIN)) == _rendered(out), "drain grants nothing in dry-run"


@pytest.mark.parametrize("mode", [{}, NODE], ids=["relay", "node"])
def test_enforce_grants_exactly_what_the_migration_declares(render, mode):
    out = render({**mode, **ENFORCE, **MIGRATION})
    assert _rendered(out) == _expected(out, permissions.MIGRATION_USES, reads_only=False)
    added = _rendered(out) - _rendered(render({**mode, **ENFORCE}))
    namespace = out.config_map()["metadata"]["namespace"]
    assert {g for g in added if g[3] not in READ_VERBS} == {
        ("kube-system", "apps", "daemonsets", "delete", "kube-proxy"),
        ("kube-system", "cilium.io", "ciliumnodeconfigs", "create", ""),
        (namespace, "", "configmaps", "update", "kpr-exporter-migration"),
    }
    assert not {g for g in _rendered(out) if g[2] == "pods/eviction"}
    if mode:  # node mode: the collectors get none of it
        assert _rendered(out, COLLECTOR_SA) == _rendered(render({**mode, **ENFORCE}), COLLECTOR_SA)
        assert _rendered(out, CENTRAL_SA) | _rendered(out, COLLECTOR_SA) == _rendered(out)
    else:
        assert _rendered(out) == _rendered(render({**NODE, **ENFORCE, **MIGRATION}))


def test_the_migration_objects_are_separate_and_bound_to_the_decider(render, release):
    out = render({**NODE, **ENFORCE, **MIGRATION})
    before = {(d["kind"], d["metadata"]["name"]) for d in render({**NODE, **ENFORCE}).docs
              if d["kind"] in RBAC_KINDS}
    new = [d for d in out.docs
           if d["kind"] in RBAC_KINDS and (d["kind"], d["metadata"]["name"]) not in before]
    assert new and all("-migration" in d["metadata"]["name"] for d in new)
    for binding in (d for d in new if d["kind"].endswith("Binding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": CENTRAL_SA,
                                        "namespace": release.namespace}]


def test_drain_adds_exactly_the_evictions(render):
    out = render({**ENFORCE, **DRAIN})
    assert _rendered(out) - _rendered(render({**ENFORCE, **MIGRATION})) == {
        ("", "", "pods/eviction", "create", "")}
    uses = (*permissions.MIGRATION_USES, permissions.DRAIN)
    assert _rendered(out) == _expected(out, uses, reads_only=False)


def test_the_state_configmap_name_follows_the_config(render):
    out = render({**ENFORCE, **MIGRATION, "config": {"migrate": {"state_configmap": "my-migration"}}})
    names = {g[4] for g in _rendered(out) if g[2] == "configmaps"}
    assert "my-migration" in names and "kpr-exporter-migration" not in names
    assert _rendered(out) == _expected(out, permissions.MIGRATION_USES, reads_only=False)
