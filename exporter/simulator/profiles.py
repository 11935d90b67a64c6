"""How a simulated datapath behaves, and what its SLIs should show.

A ``DatapathProfile`` gives handshake latency, refused / timed-out / dropped attempts, HTTP
latency and codes, the CPU of the process serving Services and how long a change takes to
be programmed; ``ExpectedSli`` is what the SLIs converge to under it and ``Outcome`` how a
judge should rule. Pure: frozen dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

#: z-score of the 99th percentile of the standard normal distribution.
_Z99: Final = 2.3263478740408408

#: Worst case any sampled latency is clamped to (keeps a connection inside a few seconds).
MAX_LATENCY_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Latency:
    """A log-normal latency distribution given by its median and 99th percentile (seconds)."""

    median_s: float
    p99_s: float

    @property
    def mu(self) -> float:
        return math.log(self.median_s)

    @property
    def sigma(self) -> float:
        return math.log(self.p99_s / self.median_s) / _Z99

    def scaled(self, factor: float) -> Latency:
        return Latency(self.median_s * factor, self.p99_s * factor)


@dataclass(frozen=True, slots=True)
class HttpProfile:
    """L7 HTTP behaviour of a Service: response latency and the mix of status codes."""

    latency: Latency
    codes: tuple[tuple[int, float], ...] = ((200, 0.97), (404, 0.02), (503, 0.01))
    method: str = "GET"
    path: str = "/"

    @property
    def error_ratio(self) -> float:
        """Share of 5xx responses."""
        total = sum(w for _, w in self.codes)
        return sum(w for c, w in self.codes if c >= 500) / total


@dataclass(frozen=True, slots=True)
class DatapathProfile:
    """How connections behave when the client's node runs one datapath.

    Ratios are per connection attempt. ``drops`` maps a Hubble ``DropReason``
    number to the share of attempts whose SYN is dropped on the client's node
    for that reason. ``service_cpu_cores`` is the CPU (seconds per second) of the
    process serving Services on such a node: kube-proxy for the kube-proxy profile, the
    whole Cilium agent for an eBPF one. ``programming`` is how long a Service or
    endpoint change takes to reach that datapath. ``stream_bytes_per_s`` is the payload
    one connection through it carries at most (the simulator streams nothing; the demo's
    emulated datapath forwards each connection at this rate, so the probes' load measures it).
    """

    connect: Latency
    refused_ratio: float = 0.002
    timeout_ratio: float = 0.001
    drops: tuple[tuple[int, float], ...] = ((133, 0.002),)
    http: HttpProfile = HttpProfile(Latency(0.004, 0.020))
    service_cpu_cores: float = 0.05
    programming: Latency = Latency(1.2, 4.0)
    stream_bytes_per_s: float = 65536.0

    @property
    def drop_ratio(self) -> float:
        return sum(p for _, p in self.drops)

    def expected(self, datapath: str) -> ExpectedSli:
        """The SLI values this profile produces in the long run."""
        passed = 1.0 - self.drop_ratio
        return ExpectedSli(
            datapath=datapath,
            connect_median_s=self.connect.median_s,
            connect_p99_s=self.connect.p99_s,
            refused_ratio=passed * self.refused_ratio,
            timeout_ratio=passed * self.timeout_ratio,
            drop_ratios=self.drops,
            http_median_s=self.http.latency.median_s,
            http_error_ratio=self.http.error_ratio,
        )


@dataclass(frozen=True, slots=True)
class ExpectedSli:
    """What the SLIs of one datapath should converge to (ratios are per attempt)."""

    datapath: str
    connect_median_s: float
    connect_p99_s: float
    refused_ratio: float
    timeout_ratio: float
    drop_ratios: tuple[tuple[int, float], ...]
    http_median_s: float
    http_error_ratio: float

    def drop_ratio(self, reason: int) -> float:
        return sum(p for r, p in self.drop_ratios if r == reason)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a judge should rule on one SLI for one comparison once enough time has passed.

    ``verdict`` is ``better``, ``same``, ``worse`` or ``inconclusive``;
    ``comparison`` is ``canary-vs-control`` or ``after-vs-baseline``.
    """

    sli: str
    comparison: str
    verdict: str
