"""Soak: the exporter under faults for a long run, memory bounded and every rollback once.

Three processes on loopback, all started and stopped by this benchmark:

* the simulator (``kpr-exporter simulate``, canary-regression), killed with SIGKILL every
  ``--relay-kill-every`` seconds and started again on the same ports, as a relay that dies;
* a hostile agent endpoint served here, cycling through its faults on every scrape:
  a valid body, 500, garbage, a 50 MB body, a body that drips for longer than the scrape
  timeout, and a body cut short;
* ``kpr-exporter run`` in dry-run, reading the simulator's relay, its three agents and the
  hostile one every two seconds, with a static datapath map (node-b on eBPF).

Every ``--alert-every`` seconds the benchmark delivers the current rollback alert to the
webhook as Alertmanager does (the same alert again and again, a new one every
``--new-alert-every`` seconds). It samples the exporter's VmRSS every five seconds and, at
the end, reads its /metrics: the rollbacks started must equal the deliveries the webhook
accepted, and never exceed the distinct alerts sent. Run:
``python -m bench.bench_soak [--minutes 30] [--relay-kill-every 300]`` (``make bench``
leaves it out; name it to run it: ``python -m bench soak``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, web

LIMIT_MIB = 256.0  # the chart's default memory limit
TOKEN = "soak-token"
NODES = ("node-a", "node-b", "node-c")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class HostileAgent:
    """An agent /metrics endpoint that answers each scrape with the next fault of a cycle."""

    FAULTS = ("valid", "status-500", "garbage", "huge", "slow", "truncated")

    def __init__(self, valid_body: bytes) -> None:
        self.valid = valid_body
        self.served: dict[str, int] = {f: 0 for f in self.FAULTS}
        self._next = 0

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        fault = self.FAULTS[self._next % len(self.FAULTS)]
        self._next += 1
        self.served[fault] += 1
        if fault == "valid":
            return web.Response(body=self.valid, content_type="text/plain")
        if fault == "status-500":
            return web.Response(status=500, text="internal error")
        if fault == "garbage":
            return web.Response(body=os.urandom(64 * 1024), content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            if fault == "huge":
                line = b'cilium_drop_count_total{reason="x",direction="INGRESS"} 1\n' * 16384
                for _ in range(50 * 1024 * 1024 // len(line)):
                    await response.write(line)
            elif fault == "slow":
                for _ in range(40):
                    await response.write(self.valid[:64])
                    await asyncio.sleep(0.5)
            else:  # truncated: half a body, then the connection goes away
                await response.write(self.valid[: len(self.valid) // 2])
                request.transport.close()  # type: ignore[union-attr]
                return response
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the exporter gave up on this body: that is the point
        return response


@dataclass
class Soak:
    minutes: float
    relay_kill_every: float
    alert_every: float
    new_alert_every: float
    workdir: Path
    ports: dict[str, int] = field(default_factory=lambda: {
        k: free_port() for k in ("grpc", "agents", "hostile", "web")})
    samples: list[tuple[float, float]] = field(default_factory=list)
    relay_kills: int = 0
    relay_restart_retries: int = 0
    alerts_sent: set[str] = field(default_factory=set)
    deliveries: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def _simulator(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "exporter", "simulate", "--scenario", "canary-regression",
             "--speed", "10", "--log.level", "warn",
             "--grpc.listen-address", f"127.0.0.1:{self.ports['grpc']}",
             "--agents.listen-address", f"127.0.0.1:{self.ports['agents']}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def _restart_relay(self) -> subprocess.Popen[bytes]:
        """The relay again on its ports. On a busy machine another process may hold one of
        them for a moment (an outgoing connection's ephemeral port): try again, and count it,
        so a failed restart is never mistaken for the exporter not reconnecting."""
        for _ in range(30):
            simulator = self._simulator()
            try:
                await wait_port(self.ports["grpc"], timeout=10.0, process=simulator)
                return simulator
            except RelayDown:
                self.relay_restart_retries += 1
                await asyncio.sleep(1)
        raise SystemExit("the relay could not be restarted on its port in 30 attempts")

    def _exporter(self) -> subprocess.Popen[bytes]:
        token = self.workdir / "token"
        token.write_text(TOKEN)
        agents = ",".join(f"{n}=http://127.0.0.1:{self.ports['agents']}/nodes/{n}/metrics"
                          for n in NODES)
        agents += f",node-x=http://127.0.0.1:{self.ports['hostile']}/metrics"
        log = open(self.workdir / "exporter.log", "wb")
        return subprocess.Popen(
            [sys.executable, "-m", "exporter", "run",
             "--web.listen-address", f"127.0.0.1:{self.ports['web']}",
             "--hubble.address", f"127.0.0.1:{self.ports['grpc']}",
             "--hubble.backoff-max-seconds", "2",
             "--agents.static", agents, "--agents.interval-seconds", "2",
             "--datapath.static", "node-a=kube-proxy,node-b=ebpf,node-c=kube-proxy",
             "--kube.enabled", "false", "--webhook.token-file", str(token),
             "--rollback.cooldown-seconds", "60",
             "--baseline.file", str(self.workdir / "baseline.json"),
             "--log.level", "warn"],
            stdout=log, stderr=subprocess.STDOUT)

    def alert(self, now: float, started: float) -> dict:
        generation = int((now - started) // self.new_alert_every)
        starts_at = datetime.fromtimestamp(started + generation * self.new_alert_every,
                                           tz=timezone.utc).isoformat()
        fingerprint = f"soak{generation:04d}"
        self.alerts_sent.add(fingerprint)
        labels = {"alertname": "KprJudgeServiceWorse", "kpr_action": "rollback",
                  "severity": "critical", "node": "node-b"}
        return {
            "version": "4", "status": "firing", "receiver": "kpr", "groupKey": "{}:{}",
            "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": labels,
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
            "alerts": [{"status": "firing", "labels": labels, "annotations": {},
                        "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": fingerprint}],
        }

    async def deliver(self, http: ClientSession, payload: dict) -> None:
        url = f"http://127.0.0.1:{self.ports['web']}/webhook/alertmanager"
        try:
            async with http.post(url, json=payload,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
        except (OSError, asyncio.TimeoutError):
            self.statuses[0] = self.statuses.get(0, 0) + 1
        self.deliveries += 1

    async def metrics(self, http: ClientSession) -> dict[str, float]:
        async with http.get(f"http://127.0.0.1:{self.ports['web']}/metrics") as resp:
            text = await resp.text()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("kpr_") and " " in line:
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    async def run(self) -> dict:
        simulator = self._simulator()
        await wait_port(self.ports["agents"])
        async with ClientSession(timeout=ClientTimeout(total=10)) as http:
            async with http.get(f"http://127.0.0.1:{self.ports['agents']}/nodes/node-a/metrics") as r:
                hostile = HostileAgent(await r.read())
        app = web.Application()
        app.router.add_get("/metrics", hostile.metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.ports["hostile"]).start()
        exporter = self._exporter()
        try:
            await wait_port(self.ports["web"])
            result = await self._loop(simulator, exporter, hostile)
        finally:
            for proc in (exporter, simulator):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in (exporter, simulator):
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            await runner.cleanup()
        return result

    async def _loop(self, simulator: subprocess.Popen[bytes], exporter: subprocess.Popen[bytes],
                    hostile: HostileAgent) -> dict:
        started = time.time()
        end = started + self.minutes * 60
        next_kill = started + self.relay_kill_every
        next_alert = started + self.alert_every
        async with ClientSession(timeout=ClientTimeout(total=10)) as http:
            while (now := time.time()) < end:
                if exporter.poll() is not None:
                    tail = (self.workdir / "exporter.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"the exporter exited ({exporter.returncode}):\n{tail}")
                self.samples.append((now - started, rss_mib(exporter.pid)))
                if now >= next_kill:
                    simulator.kill()
                    simulator.wait()
                    self.relay_kills += 1
                    await asyncio.sleep(3)  # the relay stays down for a moment
                    simulator = await self._restart_relay()
                    next_kill += self.relay_kill_every
                if now >= next_alert:
                    await self.deliver(http, self.alert(now, started))
                    next_alert += self.alert_every
                await asyncio.sleep(5)
            final = await self.metrics(http)
        simulator.kill()
        simulator.wait()
        return {"metrics": final, "hostile": hostile.served}


class RelayDown(Exception):
    """The relay process exited before it listened."""


async def wait_port(port: int, timeout: float = 30.0,
                    process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RelayDown(f"exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def total(metrics: dict[str, float], prefix: str, contains: str = "") -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix) and contains in k)


def report(soak: Soak, result: dict) -> None:
    metrics = result["metrics"]
    rss = [r for _, r in soak.samples]
    window = max(1, len(rss) // 6)
    first, last = max(rss[:window]), max(rss[-window:])
    accepted = total(metrics, "kpr_webhook_requests_total", 'outcome="accepted"')
    rollbacks = total(metrics, "kpr_rollbacks_total{")
    print(f"duration: {soak.minutes:.1f} min; relay killed {soak.relay_kills} times "
          f"(restart retries while its port was busy: {soak.relay_restart_retries}); "
          f"hostile agent served {json.dumps(result['hostile'])}")
    print(f"hubble reconnects: {total(metrics, 'kpr_hubble_reconnects_total'):.0f}; "
          f"flows received: {total(metrics, 'kpr_hubble_flows_received_total'):.0f}; "
          f"hubble up at the end: {total(metrics, 'kpr_hubble_up'):.0f}")
    print(f"RSS MiB: start {rss[0]:.1f}, max of first sixth {first:.1f}, "
          f"max of last sixth {last:.1f}, max {max(rss):.1f}")
    print(f"webhook deliveries {soak.deliveries} (HTTP statuses {soak.statuses}), distinct alerts "
          f"{len(soak.alerts_sent)}, accepted {accepted:.0f}, rollbacks started {rollbacks:.0f}")
    reconnects = total(metrics, "kpr_hubble_reconnects_total")
    print(f"relay back after every kill: {'yes' if reconnects >= soak.relay_kills else 'NO'} "
          f"({reconnects:.0f} reconnections for {soak.relay_kills} kills; dial failures while it "
          f"was down: {total(metrics, 'kpr_hubble_dial_failures_total'):.0f})")
    once = rollbacks == accepted and rollbacks <= len(soak.alerts_sent)
    print(f"every rollback once: {'yes' if once else 'NO'}")
    print(f"target: RSS <= {LIMIT_MIB:.0f} MiB throughout; ratio: {max(rss) / LIMIT_MIB:.2f} "
          f"(growth last/first sixth: {last / first:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--relay-kill-every", type=float, default=300.0, help="seconds")
    parser.add_argument("--alert-every", type=float, default=20.0, help="seconds")
    parser.add_argument("--new-alert-every", type=float, default=600.0, help="seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kpr-soak-") as tmp:
        soak = Soak(args.minutes, args.relay_kill_every, args.alert_every,
                    args.new_alert_every, Path(tmp))
        result = asyncio.run(soak.run())
        report(soak, result)


if __name__ == "__main__":
    main()
