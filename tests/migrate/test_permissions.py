"""Every request the migration sends is declared in exporter/rollback/permissions.py.

A whole migration with ``--drain`` (workloads under a PodDisruptionBudget on every node),
then one aborted after its first batch, run against the fake API; every request either
run sent must be covered by ``required(settings, MIGRATION_USES + DRAIN)``, the chart's
source of truth. Without ``drain`` the evictions are not covered (granted only when
draining is asked for; listing pods in every namespace is the preflight's); the migration declares
exactly its own writes beyond the rollback's; the state ConfigMap's name follows the
settings.
"""

from __future__ import annotations

import re

from exporter.migrate.model import STEP_ABORTED, STEP_COMPLETED
from exporter.migrate.settings import MigrateSettings
from exporter.migrate.store import Request
from exporter.rollback import permissions as perms
from tests.fakekube.fixtures import pod
from tests.migrate.cluster import NODES, migrate_settings, seed_kube_proxy_cluster
from tests.migrate.cluster import settings as rollback_settings
from tests.migrate.harness import controller, record_migration, spec

_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?"
                   r"/(?P<res>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")
_VERB = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
PUBLIC_URLS = frozenset({"/version"})
Need = tuple[str, str, str, str, str]


def needed(request) -> Need:
    """(group, resource[/subresource], verb, namespace, name) as RBAC sees the request."""
    m = _PATH.match(request.path)
    assert m, request.path
    resource = m["res"] + (f"/{m['sub']}" if m["sub"] else "")
    verb = _VERB.get(request.method) or ("get" if m["name"] else "list")
    name = "" if verb == "create" and not m["sub"] else m["name"] or ""
    return (m["group"] or "", resource, verb, m["ns"] or "", name)


def covered(declared, need: Need) -> bool:
    group, resource, verb, ns, name = need
    return any(p.api_group == group and p.resource == resource and verb in p.verbs
               and p.namespace in ("", ns) and (not p.resource_names or name in p.resource_names)
               for p in declared)


def sent(fake) -> set[Need]:
    resources = [r for r in fake.requests if r.path not in PUBLIC_URLS]
    assert resources, "the migration talked to the API"
    return {needed(r) for r in resources}


def seed_workloads(fake) -> None:
    for node in NODES:
        fake.seed(pod(f"web-{node}", "shop", node, {"app": "web"},
                      owner={"kind": "ReplicaSet", "name": "web"}))
    fake.budget("web", "shop", {"app": "web"}, allowed=len(NODES))


async def test_a_drained_migration_sends_only_declared_requests(fake_kube, kube, kubelet, vtime,
                                                                endpoints):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    seed_workloads(fake_kube)
    ctl = controller(kube, vtime, endpoints.port)
    await record_migration(ctl, spec(drain=True))
    fake_kube.clear_requests()
    status = await ctl.run()
    assert status.step == STEP_COMPLETED, status.message
    needs = sent(fake_kube)
    declared = perms.required(ctl.steps.rollback, (*perms.MIGRATION_USES, perms.DRAIN),
                              migrate=ctl.steps.settings)
    assert {n for n in needs if not covered(declared, n)} == set()
    evictions = {n for n in needs if n[1] == "pods/eviction"}
    assert {n[4] for n in evictions} == {f"web-{node}" for node in NODES}
    assert {n for n in needs if n[1] == "pods" and n[2] == "delete" and n[3] == "shop"} == set()
    undrained = perms.required(ctl.steps.rollback, perms.MIGRATION_USES, migrate=ctl.steps.settings)
    # (listing pods in every namespace is the preflight's already)
    assert {n[1] for n in needs if not covered(undrained, n)} == {"pods/eviction"}


async def test_an_aborted_migration_sends_only_declared_requests(fake_kube, kube, kubelet, vtime,
                                                                 endpoints):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    ctl = controller(kube, vtime, endpoints.port)
    await record_migration(ctl, spec())
    fake_kube.clear_requests()
    # one batch through its gates, then an abort asked by a person
    for _ in range(50):
        status = await ctl.tick()
        if status.batch >= 1:
            break
        await vtime.sleep(5)
    assert status.batch >= 1 and status.migrated, status.message
    await ctl.store.update_request(lambda q: Request(abort="test", by="test"))
    status = await ctl.run()
    assert status.step == STEP_ABORTED, status.message
    declared = perms.required(ctl.steps.rollback, perms.MIGRATION_USES, migrate=ctl.steps.settings)
    assert {n for n in sent(fake_kube) if not covered(declared, n)} == set()


def test_the_migration_declares_its_own_writes_and_names():
    settings = rollback_settings(1)
    mine = MigrateSettings(state_configmap="my-migration")
    rollback = set(perms.required(settings, perms.USES))
    migration = set(perms.required(settings, perms.MIGRATION_USES, migrate=mine))
    own = {(p.resource, verb, p.resource_names) for p in migration - rollback for verb in p.verbs}
    assert own == {
        ("daemonsets", "delete", ("kube-proxy",)),
        ("ciliumnodeconfigs", "create", ()),
        ("configmaps", "get", ("my-migration",)), ("configmaps", "update", ("my-migration",)),
    }
    drain = set(perms.required(settings, (perms.DRAIN,)))
    assert {(p.resource, p.verbs, p.namespace) for p in drain} == {
        ("pods", ("list",), perms.CLUSTER_SCOPE), ("pods/eviction", ("create",), perms.CLUSTER_SCOPE)}
    assert not drain & migration, "draining is granted only when asked for"
    assert migrate_settings().state_configmap == "kpr-exporter-migration"
