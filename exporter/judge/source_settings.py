"""Where the judge reads its evidence (``judge.source``) and how it reaches Prometheus.

``in-process`` (the default) judges the exporter's own SLI snapshots: relay mode, where one
exporter sees every flow. ``prometheus`` judges the same counts queried from Prometheus
(or Thanos, Mimir: anything with Prometheus' HTTP API), summed over every exporter
instance: node mode, where each instance sees one node. Section ``judge.prometheus``.
Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from exporter.config_constraints import positive


@dataclass(frozen=True)
class PrometheusTLSSettings:
    ca_file: str = field(
        default="",
        metadata={"help": "PEM CA bundle that signed Prometheus' certificate (https URLs); "
                          "empty: the system's trust store."},
    )
    insecure_skip_verify: bool = field(
        default=False,
        metadata={"help": "Do not verify Prometheus' certificate (testing only)."},
    )

    def problems(self) -> list[str]:
        if self.ca_file and self.insecure_skip_verify:
            return ["judge.prometheus.tls: ca_file and insecure_skip_verify exclude each other"]
        return []


@dataclass(frozen=True)
class PrometheusBasicAuthSettings:
    username: str = field(default="", metadata={"help": "Basic-auth user name for Prometheus."})
    password_file: str = field(
        default="", metadata={"help": "File holding the basic-auth password (re-read each "
                                      "evaluation)."},
    )

    def problems(self) -> list[str]:
        if bool(self.username) != bool(self.password_file):
            return ["judge.prometheus.basic_auth: username and password_file must be given "
                    "together"]
        return []


@dataclass(frozen=True)
class PrometheusSourceSettings:
    url: str = field(
        default="",
        metadata={"help": "Base URL of the Prometheus HTTP API the judge queries when "
                          "judge.source is prometheus (e.g. http://prometheus.monitoring:9090, "
                          "a path prefix is kept)."},
    )
    bearer_token_file: str = field(
        default="",
        metadata={"help": "File holding a bearer token sent to Prometheus (re-read each "
                          "evaluation, so a rotated token is picked up)."},
    )
    basic_auth: PrometheusBasicAuthSettings = field(default_factory=PrometheusBasicAuthSettings)
    tls: PrometheusTLSSettings = field(default_factory=PrometheusTLSSettings)
    timeout_seconds: float = field(
        default=10.0,
        metadata={"help": "Give up on one evaluation's queries after this long; a slow "
                          "Prometheus makes the verdicts inconclusive, never a pass.",
                  "check": positive()},
    )

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                found.append(f"judge.prometheus.url {self.url!r} is not an http:// or https:// "
                             "URL with a host")
            elif parts.query or parts.fragment:
                found.append(f"judge.prometheus.url {self.url!r}: give the base URL without "
                             "?query or #fragment")
        if self.bearer_token_file and self.basic_auth.username:
            found.append("judge.prometheus: bearer_token_file and basic_auth exclude each other")
        return found
