"""Helm release records for seeding (``exporter.simulator.kubeapi.helm``)."""

from exporter.simulator.kubeapi.helm import (
    CONFIG_TEMPLATE, SECRET_TYPE, release_secret, stored_chart,
)

__all__ = ["CONFIG_TEMPLATE", "SECRET_TYPE", "release_secret", "stored_chart"]
