"""``kpr-exporter demo --scenario guided-migration[-regression]``: the real migration
controller, in enforce mode, against the simulated Kubernetes API through the product's
client, its verify gate reading the emulated datapath's probes, all on fast time.

- good story: every batch passes its verify gate, cilium-config is switched, and only then
  is the kube-proxy DaemonSet deleted (its backup kept); every agent runs KPR;
- bad story: the emulated eBPF datapath refuses NodePorts on loopback, the first batch's
  verify gate fails, the controller aborts and rolls the node back to kube-proxy; kube-proxy
  is never deleted; the screen names the failed gate and check;
- the migration's metrics are on the demo's registry (what its Prometheus scrapes); with
  the real Prometheus (``realstack``) the report's timeline has the migration's steps.
"""

from __future__ import annotations

import io
import json
import time

import pytest

from exporter import cli
from exporter.cilium import MIGRATION_LABEL
from exporter.demo import defaults as demo_defaults
from exporter.demo.migration import MigrationDemo, Timing
from exporter.demo.session import demo_class
from exporter.migrate.gates.base import FAIL, PASS
from exporter.migrate.model import STEP_ABORTED, STEP_COMPLETED
from exporter.model import EBPF, KUBE_PROXY
from tests.realstack.harness import ALERTMANAGER, PROMETHEUS, require_binary
from tests.demo.fast_time import FastTime

NODES = {"node-a": "127.0.0.21", "node-b": "127.0.0.22", "node-c": "127.0.0.23"}
#: A short pace: still three batches (1 node, 50 %, 100 %) with a soak and fresh probe rounds.
FAST = Timing(soak_seconds=2.0, wait_seconds=30.0, poll_seconds=1.0, probe_interval=2.0)


def demo_settings(story: str):
    args = cli.build_parser().parse_args(["demo", "--scenario", story,
                                          "--web.listen-address", "127.0.0.1:0"])
    settings = cli.load_settings(args, {})
    given = {k.removeprefix("flag:") for k in vars(args) if k.startswith("flag:")}
    return args, demo_defaults.apply(settings, given)


async def play(story: str, fast: FastTime) -> tuple[MigrationDemo, str]:
    """The story from start to its end (at most 600 s of demo time), then stopped."""
    args, settings = demo_settings(story)
    out = io.StringIO()
    assert demo_class(args.emulated) is MigrationDemo
    demo = MigrationDemo(settings, out=out, interval=5.0, emulated=args.emulated,
                         clock=fast.clock, sleep=fast.sleep, timing=FAST, nodes=NODES)
    await demo.start()
    try:
        await demo.run_for(600.0, fast.sleep)
    finally:
        await demo.stop()
    return demo, out.getvalue()


def test_the_scenario_flag_names_the_migration_stories():
    args, settings = demo_settings("guided-migration-regression")
    assert args.emulated == "guided-migration-regression"
    assert settings.simulator.scenario == demo_defaults.MIGRATION_STORIES[args.emulated]
    other, _ = demo_settings("canary-datapath-faults")
    assert other.emulated == "canary-datapath-faults"


async def test_a_good_migration_is_promoted_through_every_batch():
    fast = FastTime(10)
    started = time.monotonic()
    demo, out = await play("guided-migration", fast)
    assert time.monotonic() - started < 60, "the demo waited on the wall's clock"
    status, cluster = demo.status, demo.cluster
    assert status is not None and status.step == STEP_COMPLETED, out
    assert [len(b) for b in status.batches] == [1, 1, 1]
    verify = [r for r in status.gate_results if r.gate == "verify"]
    assert [r.result for r in verify] == [PASS, PASS, PASS], out
    assert all(cluster.datapath(n) == EBPF for n in NODES)
    assert cluster.kube_proxy_nodes() == []
    config = cluster.api.get("configmaps", "cilium-config", "kube-system")
    assert config["data"]["kube-proxy-replacement"] == "true"
    # kube-proxy is deleted once, after the last node was labelled and cilium-config switched
    paths = [(r.method, r.path) for r in cluster.api.requests]
    deleted = [i for i, (m, p) in enumerate(paths)
               if m == "DELETE" and p.endswith("/daemonsets/kube-proxy")]
    switched = [i for i, (m, p) in enumerate(paths)
                if m == "PATCH" and p.endswith("/configmaps/cilium-config")]
    labelled = [i for i, r in enumerate(cluster.api.requests) if r.method == "PATCH"
                and "/nodes/" in r.path and f'"{MIGRATION_LABEL}": "true"' in json.dumps(r.body)]
    assert len(deleted) == 1 and switched and labelled
    assert deleted[0] > max(labelled) and deleted[0] > max(switched)
    assert cluster.kube_proxy_daemonset() is None
    assert "kube-proxy" in cluster.backup()["data"]["backup.json"]
    # on screen: the migration's own view, and how it ended
    assert "Status:       ✔ Completed" in out and "batch 3 (100%)" in out
    assert "kube-proxy DaemonSet deleted at cleanup" in out
    assert "migrate.owner=direct" in out
    assert demo.registry.get_sample_value("kpr_migration_step", {"step": STEP_COMPLETED}) == 1
    assert out.rstrip().endswith("demo stopped")


async def test_a_bad_canary_is_caught_by_the_verify_gate_and_rolled_back():
    demo, out = await play("guided-migration-regression", FastTime(10))
    status, cluster = demo.status, demo.cluster
    assert status is not None and status.step == STEP_ABORTED, out
    assert status.batch == 0 and status.batches[0] == ("node-a",)
    verify = [r for r in status.gate_results if r.gate == "verify"]
    assert [r.result for r in verify] == [FAIL]
    assert any("nodeport-loopback on node-a: fail" in e for e in verify[0].evidence)
    # node-a is back on kube-proxy; kube-proxy was never deleted; nobody else moved
    assert all(cluster.datapath(n) == KUBE_PROXY for n in NODES)
    assert cluster.kube_proxy_nodes() == sorted(NODES)
    assert cluster.kube_proxy_daemonset() is not None and cluster.kube_proxy_deletes() == 0
    labels = [n["metadata"]["labels"] for n in cluster.api.objects("nodes")]
    assert not any(MIGRATION_LABEL in lb for lb in labels)
    # on screen: the failed gate and the check it caught, the abort, the rollback
    assert "gates: verify fail" in out and "-> abort" in out
    assert "nodeport-loopback on node-a FAIL" in out
    assert "rolled back node node-a" in out and "Status:       ✖ Aborted" in out
    assert "kube-proxy DaemonSet kept (never deleted)" in out
    assert demo.registry.get_sample_value("kpr_migration_step", {"step": STEP_ABORTED}) == 1


@pytest.mark.realstack
def test_with_prometheus_the_report_has_the_migration_steps(tmp_path, capsys):
    # Real time (about 70 s): the real Prometheus scrapes the migration's metrics and the
    # probes; the report's timeline shows the batch that started and the abort.
    require_binary(PROMETHEUS)
    require_binary(ALERTMANAGER)
    report = tmp_path / "report"
    code = cli.main(["demo", "--scenario", "guided-migration-regression", "--with-prometheus",
                     "--report", str(report), "--interval", "10",
                     "--web.listen-address", "127.0.0.1:0", "--log.level", "error"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "prometheus     http://127.0.0.1:" in out and "gates: verify fail" in out
    summary = (report / "summary.md").read_text(encoding="utf-8")
    assert "| migration batch 1 started |" in summary, summary
    assert "migration: aborted" in summary, summary
    assert out.rstrip().endswith("demo stopped")
