"""Settings of the Alertmanager webhook receiver (section ``webhook``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import at_least, listen_address, not_empty, positive
from exporter.metrics_contract import ROLLBACK_ALERT_LABELS


@dataclass(frozen=True)
class WebhookTlsSettings:
    """Optional TLS (and mTLS) for the listener that serves the webhook."""

    cert_file: str = field(
        default="", metadata={"help": "Server certificate (PEM); empty serves plain HTTP."}
    )
    key_file: str = field(default="", metadata={"help": "Private key of the server certificate (PEM)."})
    client_ca_file: str = field(
        default="",
        metadata={"help": "CA bundle (PEM) that client certificates must chain to; "
                          "set it to require mTLS from Alertmanager."},
    )

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    def problems(self) -> list[str]:
        found: list[str] = []
        if bool(self.cert_file) != bool(self.key_file):
            found.append("webhook.tls: cert_file and key_file must be set together")
        if self.client_ca_file and not self.cert_file:
            found.append("webhook.tls.client_ca_file needs cert_file and key_file (mTLS is TLS first)")
        return found


@dataclass(frozen=True)
class WebhookSettings:
    """How ``POST /webhook/alertmanager`` authenticates, filters and bounds deliveries."""

    token_file: str = field(
        default="",
        metadata={
            "help": "File holding the bearer token Alertmanager sends (http_config.authorization); "
                    "re-read when it changes. Required in enforce mode.",
            "flag": "--webhook.token-file",
        },
    )
    match_labels: dict[str, str] = field(
        default_factory=lambda: dict(ROLLBACK_ALERT_LABELS),
        metadata={"help": "An alert acts only when it carries all of these labels (comma list of name=value)."},
    )
    node_label: str = field(
        default="node",
        metadata={"help": "Alert label naming the node to roll back (scope = those nodes).",
                  "check": not_empty()},
    )
    scope_label: str = field(
        default="kpr_scope",
        metadata={"help": "Alert label choosing the scope explicitly: cluster or canary.",
                  "check": not_empty()},
    )
    max_body_bytes: int = field(
        default=4 << 20, metadata={"help": "Largest accepted request body; larger gets 413.",
                                   "check": at_least(1024)}
    )
    body_timeout_seconds: float = field(
        default=10.0,
        metadata={"help": "Longest time a delivery may take to send its body; a slower sender "
                          "gets 408 and its connection is closed (Alertmanager's bodies are "
                          "small and arrive within milliseconds).", "check": positive()},
    )
    shutdown_timeout_seconds: float = field(
        default=15.0,
        metadata={"help": "Longest wait for requests in flight when the exporter stops; keep it "
                          "well below the pod's terminationGracePeriodSeconds (30 in the chart).",
                  "check": positive()},
    )
    dedup_entries: int = field(
        default=10000,
        metadata={"help": "How many alert keys (fingerprint, startsAt, status) to remember for dedup.",
                  "check": at_least(1)},
    )
    listen_address: str = field(
        default="",
        metadata={"help": "Separate listener for the webhook ([host]:port); empty serves it on "
                          "web.listen_address. Required with webhook.tls (so /metrics stays plain).",
                  "check": listen_address(optional=True)},
    )
    tls: WebhookTlsSettings = field(default_factory=WebhookTlsSettings)

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.tls.enabled and not self.listen_address:
            found.append("webhook.tls needs webhook.listen_address: TLS applies to the webhook's "
                         "own listener, not to /metrics")
        if not self.match_labels:
            found.append("webhook.match_labels must name at least one label (else every alert would act)")
        return found
