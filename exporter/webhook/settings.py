"""Settings of the Alertmanager webhook receiver (section ``webhook``)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        default_factory=lambda: {"kpr_action": "rollback"},
        metadata={"help": "An alert acts only when it carries all of these labels (comma list of name=value)."},
    )
    node_label: str = field(
        default="node",
        metadata={"help": "Alert label naming the node to roll back (scope = those nodes)."},
    )
    scope_label: str = field(
        default="kpr_scope",
        metadata={"help": "Alert label choosing the scope explicitly: cluster or canary."},
    )
    max_body_bytes: int = field(
        default=4 << 20, metadata={"help": "Largest accepted request body; larger gets 413."}
    )
    body_timeout_seconds: float = field(
        default=10.0,
        metadata={"help": "Longest time a delivery may take to send its body; a slower sender "
                          "gets 408 and its connection is closed (Alertmanager's bodies are "
                          "small and arrive within milliseconds)."},
    )
    shutdown_timeout_seconds: float = field(
        default=15.0,
        metadata={"help": "Longest wait for requests in flight when the exporter stops; keep it "
                          "well below the pod's terminationGracePeriodSeconds (30 in the chart)."},
    )
    dedup_entries: int = field(
        default=10000,
        metadata={"help": "How many alert keys (fingerprint, startsAt, status) to remember for dedup."},
    )
    listen_address: str = field(
        default="",
        metadata={"help": "Separate listener for the webhook ([host]:port); empty serves it on "
                          "web.listen_address. Required with webhook.tls (so /metrics stays plain)."},
    )
    tls: WebhookTlsSettings = field(default_factory=WebhookTlsSettings)

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.tls.enabled and not self.listen_address:
            found.append("webhook.tls needs webhook.listen_address: TLS applies to the webhook's "
                         "own listener, not to /metrics")
        if not self.match_labels:
            found.append("webhook.match_labels must name at least one label (else every alert would act)")
        if self.max_body_bytes < 1024:
            found.append("webhook.max_body_bytes must be at least 1024")
        if not self.body_timeout_seconds > 0:
            found.append("webhook.body_timeout_seconds must be above 0")
        if not self.shutdown_timeout_seconds > 0:
            found.append("webhook.shutdown_timeout_seconds must be above 0")
        if self.dedup_entries < 1:
            found.append("webhook.dedup_entries must be at least 1")
        if not self.node_label:
            found.append("webhook.node_label must not be empty")
        if not self.scope_label:
            found.append("webhook.scope_label must not be empty")
        return found
