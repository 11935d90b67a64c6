"""Two central replicas as two real processes: one acts, the other takes over when it dies.

Both run ``python -m exporter run --web.role central`` in enforce mode against the fake API
(each with its own token, so its requests can be told apart), with a 5 s rollback Lease;
the test plays the DaemonSet controller. The same firing alert goes to both: both answer
it, one takes the Lease and executes, the other is refused. While the holder's first agent
restart (a pod delete) is held by the fake, the holder is killed with SIGKILL, its Lease
left behind. The other replica resumes from the persisted state once the Lease expires and
finishes: every agent restarted exactly once, cilium-config written once. Synchronised on
the fake API's requests and state and on the replicas' own endpoints, never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.demo.processes import free_port, wait_until
from exporter.rollback.state import STATE_ANNOTATION
from tests.fakekube.fixtures import write_kubeconfig
from tests.rollback.cluster import NODES, Controller, seed_full

pytestmark = pytest.mark.realstack

ROOT = Path(__file__).resolve().parents[2]
FIRING = (ROOT / "tests" / "data" / "alertmanager" / "firing.json").read_bytes()
NAMESPACE = "kpr"
STATE = LEASE = "kpr-exporter-rollback"  # the state ConfigMap and the Lease (defaults)
LEASE_SECONDS = 5
TOKEN = "webhook-token"


class Replica:
    """One ``kpr-exporter run --web.role central`` process."""

    def __init__(self, name: str, fake, workdir: Path, token_file: Path) -> None:
        self.name = name
        self.token = f"{name}-api-token"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        kubeconfig = write_kubeconfig(workdir / f"kubeconfig-{name}", fake.url, token=self.token)
        self.log = workdir / f"{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "run", "--web.role", "central",
             "--web.listen-address", f"127.0.0.1:{self.port}",
             "--kube.kubeconfig", str(kubeconfig),
             "--judge.source", "prometheus", "--judge.prometheus.url", "http://127.0.0.1:9",
             "--webhook.token-file", str(token_file),
             "--rollback.mode", "enforce", "--rollback.namespace", NAMESPACE,
             "--rollback.identity", name, "--rollback.lease-seconds", str(LEASE_SECONDS),
             "--rollback.proof.enabled", "false",
             "--rollback.timeouts.poll-interval-seconds", "0.2",
             "--datapath.static", ",".join(f"{n}=ebpf" for n in NODES)],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    async def ready(self, session: aiohttp.ClientSession) -> None:
        async def check() -> bool:
            async with session.get(self.url + "/readyz") as resp:
                return resp.status == 200
        await wait_until(check, timeout=30.0, what=f"replica {self.name} to be ready")

    async def alert(self, session: aiohttp.ClientSession) -> tuple[int, dict]:
        async with session.post(self.url + "/webhook/alertmanager", data=FIRING, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}) as resp:
            return resp.status, json.loads(await resp.text())

    async def rollbacks(self, session: aiohttp.ClientSession) -> dict[str, float]:
        async with session.get(self.url + "/metrics") as resp:
            text = await resp.text()
        return {s.labels["result"]: s.value for f in text_string_to_metric_families(text)
                if f.name == "kpr_rollbacks" for s in f.samples
                if s.name == "kpr_rollbacks_total"}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


class ControllerThread:
    """The DaemonSet controller, reconciling after every change the fake records."""

    def __init__(self, fake, controller: Controller) -> None:
        self.fake, self.controller = fake, controller
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="daemonset-controller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen = -1
        while not self._stop:
            self.fake.wait_for(lambda: self._stop or self.fake.resource_version != seen, 5.0)
            seen = self.fake.resource_version
            self.controller.reconcile()

    def stop(self) -> None:
        self._stop = True
        self.fake.seed({"apiVersion": "v1", "kind": "ConfigMap",  # a write wakes the thread
                        "metadata": {"name": "controller-stop", "namespace": NAMESPACE}})
        self._thread.join(10)


@pytest.fixture
def replicas(fake_kube, tmp_path) -> Iterator[dict[str, Replica]]:
    token_file = tmp_path / "webhook-token"
    token_file.write_text(TOKEN)
    started = {name: Replica(name, fake_kube, tmp_path, token_file)
               for name in ("replica-a", "replica-b")}
    try:
        yield started
    finally:
        for replica in started.values():
            replica.kill()


def state_of(fake) -> dict:
    cm = fake.get("configmaps", STATE, NAMESPACE) or {}
    raw = (cm.get("metadata", {}).get("annotations") or {}).get(STATE_ANNOTATION)
    return json.loads(raw) if raw else {}


def restarts(controller: Controller, since: int) -> dict[str, int]:
    made = [n for ds, n in controller.created[since:] if ds == "cilium"]
    return {n: made.count(n) for n in NODES}


async def test_one_replica_acts_and_the_other_resumes_after_a_sigkill(fake_kube, replicas):
    seed_full(fake_kube, kube_proxy=True)
    controller = Controller(fake_kube)
    controller.reconcile()
    since = len(controller.created)
    daemonsets = ControllerThread(fake_kube, controller)
    first_delete = fake_kube.hold("delete", "pods", "kube-system")
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(r.ready(session) for r in replicas.values()))
            answers = await asyncio.gather(*(r.alert(session) for r in replicas.values()))
            assert [status for status, _ in answers] == [200, 200]  # both answer
            assert all(body["outcome"] == "accepted" for _, body in answers), answers

            # One replica takes the Lease and gets as far as its first agent restart.
            assert await asyncio.to_thread(first_delete.wait_arrived, 1, 30.0)
            holder = fake_kube.get("leases", LEASE, NAMESPACE)["spec"]["holderIdentity"]
            other = next(name for name in replicas if name != holder)
            assert state_of(fake_kube)["status"] == "running"
            assert state_of(fake_kube)["holder"] == holder

            async def refused() -> bool:
                return (await replicas[other].rollbacks(session)).get("refused") == 1.0
            await wait_until(refused, timeout=20.0, what=f"{other} to refuse the alert")
            assert first_delete.arrived == 1  # only the holder executes

            replicas[holder].kill()  # SIGKILL mid-rollback: its Lease stays behind
            first_delete.release()

            done = await asyncio.to_thread(fake_kube.wait_for, lambda: state_of(fake_kube).get(
                "status") == "succeeded", 4 * LEASE_SECONDS + 20.0)
            assert done, (state_of(fake_kube), replicas[other].log.read_text()[-3000:])

            async def resumed() -> bool:
                return (await replicas[other].rollbacks(session)).get("succeeded") == 1.0
            await wait_until(resumed, timeout=10.0, what=f"{other} to count the resumed rollback")
    finally:
        first_delete.release()
        daemonsets.stop()

    state = state_of(fake_kube)
    assert state["holder"] == other
    assert restarts(controller, since) == {n: 1 for n in NODES}
    writes = [r for r in fake_kube.requests if r.method in ("PATCH", "PUT")
              and "/configmaps/cilium-config" in r.path]
    assert len(writes) == 1, writes  # the dead holder's step is not repeated
    lease = fake_kube.get("leases", LEASE, NAMESPACE)["spec"]
    assert lease.get("holderIdentity") in (other, None)  # released when done, never the dead one
