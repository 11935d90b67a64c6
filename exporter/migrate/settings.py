"""Settings of the guided migration (section ``migrate``).

Where Cilium, kube-proxy, the migration label, the Lease, the exporter's namespace and the
enforce/dry-run mode live is the rollback's settings (``rollback.*``): the migration and
the rollback act on the same objects under the same Lease, so they are named once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import not_empty, positive

OWNER_MODES = ("auto", "helm", "gitops", "direct")


@dataclass(frozen=True)
class MigrateSettings:
    """The controller that moves a cluster from kube-proxy to KPR, batch by batch."""

    enabled: bool = field(
        default=False,
        metadata={"help": "Run the migration controller in the exporter (it acts only in "
                          "rollback.mode=enforce; otherwise it logs what it would do)."})
    state_configmap: str = field(
        default="kpr-exporter-migration",
        metadata={"help": "ConfigMap (in rollback.namespace) holding the migration's spec, "
                          "status and requests.", "check": not_empty()})
    label_value: str = field(
        default="true", metadata={"help": "Value of the migration label on migrated nodes.",
                                  "check": not_empty()})
    node_config: str = field(
        default="kube-proxy-replacement",
        metadata={"help": "Name of the CiliumNodeConfig (in rollback.cilium.namespace) that "
                          "turns KPR on for labelled nodes.", "check": not_empty()})
    healthz_bind_address: str = field(
        default="0.0.0.0:10256",
        metadata={"help": "kube-proxy-replacement-healthz-bind-address set for migrated nodes "
                          "(load balancers' health checks keep working).", "check": not_empty()})
    backup_max_age_seconds: float = field(
        default=3600.0,
        metadata={"help": "A backup older than this is taken again before the first change.",
                  "check": positive()})
    poll_interval_seconds: float = field(
        default=5.0, metadata={"help": "Pause between checks while waiting or soaking.",
                                  "check": positive()})
    drain_timeout_seconds: float = field(
        default=300.0, metadata={"help": "Per batch: how long draining may take.",
                                    "check": positive()})
    owner: str = field(
        default="auto",
        metadata={"help": "How the cluster-wide setting is made at the end: auto (from "
                          "cilium-config's owner), helm (a new release revision), gitops "
                          "(print the change and wait for it), direct (patch cilium-config).",
                  "choices": OWNER_MODES})
    gitops_wait_seconds: float = field(
        default=86400.0,
        metadata={"help": "How long the last step waits for a GitOps owner to apply the "
                          "change before it pauses.", "check": positive()})
