"""``kpr-exporter migrate ...``: parsed by the real CLI parser, run against the fake API."""

from __future__ import annotations

import io

from exporter import cli
from exporter.migrate import cli as migrate_cli
from exporter.migrate.migrate_cmd import plain_render
from exporter.migrate.model import MigrationSpec, MigrationStatus
from exporter.migrate.store import MigrationStore
from tests.migrate.cluster import seed_kube_proxy_cluster

T0 = 1_800_000_000.0


def parse(*argv: str):
    args = cli.build_parser().parse_args(["migrate", *argv])
    settings = cli.load_settings(args, env={"KPR_ROLLBACK_NAMESPACE": "kpr"})
    return settings, args


async def run(kube, *argv: str, **kw) -> tuple[int, str]:
    settings, args = parse(*argv)
    out = io.StringIO()
    code = await migrate_cli.dispatch(settings, args, kube, out=out, clock=lambda: T0, **kw)
    return code, out.getvalue()


async def test_plan_prints_every_step_and_changes_nothing(fake_kube, kube, kubelet):
    seed_kube_proxy_cluster(fake_kube)
    kubelet.reconcile()
    before = fake_kube.resource_version
    code, text = await run(kube, "plan", "--batches", "1,100%", "--drain")
    assert code == 0 and fake_kube.resource_version == before
    for expected in ("3 node(s) in 2 batch(es)", "batch 1/2: node-a", "batch 2/2: node-b, node-c",
                     "cordon and drain node-a", "NotIn [true]", "cluster-wide",
                     "nothing was changed"):
        assert expected in text, expected


async def test_bad_options_are_refused_with_every_reason(fake_kube, kube):
    code, text = await run(kube, "start", "--batches", "0,200%", "--gates", "verify,magic")
    assert code == 2 and "'0'" in text and fake_kube.get("configmaps", "kpr-exporter-migration", "kpr") is None


async def test_start_records_and_warns_about_gates_turned_off(fake_kube, kube):
    code, text = await run(kube, "start", "--gates", "none", "--soak", "5m")
    assert code == 0 and "warning: gate(s) verify, judge, alerts turned off" in text
    stored = await MigrationStore(kube, "kpr", "kpr-exporter-migration").load()
    assert stored.spec.gates == () and stored.spec.soak_seconds == 300.0
    assert stored.status.warnings and "turned off" in stored.status.warnings[0]
    code, text = await run(kube, "start")
    assert code == 3 and "not finished" in text  # one migration at a time


async def test_status_renders_the_recorded_migration(fake_kube, kube):
    code, text = await run(kube, "status")
    assert code == 0 and "no migration recorded" in text
    await run(kube, "start", "--gates", "verify")
    code, text = await run(kube, "status")
    assert code == 0 and "m-1800000000" in text


async def test_watch_follows_until_the_migration_ends(fake_kube, kube):
    store = MigrationStore(kube, "kpr", "kpr-exporter-migration")
    await store.create(MigrationSpec("m1"), MigrationStatus())
    settings, _ = parse("status")
    out, shown = io.StringIO(), []

    async def sleep(_: float) -> None:  # the migration ends while the view waits
        stored = await store.load()
        await store.save_status(stored.status.at_step("aborted", T0))

    def render(spec, status, now):
        shown.append(status.step)
        return plain_render(spec, status, now)

    from exporter.migrate.migrate_cmd import cmd_status
    code = await cmd_status(settings.rollback, settings.migrate, kube, out=out, watch=True,
                            clock=lambda: T0, sleep=sleep, render=render)
    assert code == 0 and shown == ["pending", "aborted"]


async def test_pause_resume_promote_and_abort_are_recorded(fake_kube, kube, monkeypatch):
    code, text = await run(kube, "pause")
    assert code == 3 and "no migration in progress" in text
    await run(kube, "start")
    store = MigrationStore(kube, "kpr", "kpr-exporter-migration")
    assert (await run(kube, "pause"))[0] == 0 and (await store.request()).paused
    assert (await run(kube, "resume"))[0] == 0
    request = await store.request()
    assert not request.paused and request.resume == 1
    assert (await run(kube, "promote"))[0] == 0 and (await store.request()).promote == 1
    monkeypatch.setattr(migrate_cli, "_ask", lambda question: False)  # abort asks unless --yes
    code, text = await run(kube, "abort")
    assert code == 3 and not (await store.request()).abort
    code, text = await run(kube, "abort", "--yes", "--reason", "p99 looks off")
    assert code == 0 and (await store.request()).abort == "p99 looks off"


def test_plain_render_shows_pause_and_gates():
    status = MigrationStatus(step="gates", batch=0, batches=(("a",),), paused=True,
                             pause_reason="gates: judge inconclusive", message="waiting")
    text = plain_render(MigrationSpec("m1"), status, T0)
    assert "PAUSED: gates: judge inconclusive" in text and "batch 1/1" in text
