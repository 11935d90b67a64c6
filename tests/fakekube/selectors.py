"""Selectors of the simulated API server (``exporter.simulator.kubeapi.selectors``)."""

from exporter.simulator.kubeapi.selectors import (
    FIELDS, SelectorError, matches, parse_field_selector, parse_label_selector,
)

__all__ = ["FIELDS", "SelectorError", "matches", "parse_field_selector", "parse_label_selector"]
