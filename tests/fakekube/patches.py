"""Patches of the simulated API server (``exporter.simulator.kubeapi.patches``)."""

from exporter.simulator.kubeapi.patches import (
    UnsupportedPatch, merge_patch, strategic_merge,
)

__all__ = ["UnsupportedPatch", "merge_patch", "strategic_merge"]
