"""The migrate section: constraints declared on the fields, checked in one place."""

from __future__ import annotations

from exporter import config_constraints
from exporter.migrate.settings import MigrateSettings


def test_defaults_are_valid_and_bad_values_are_named():
    assert config_constraints.problems(MigrateSettings(), "migrate") == []
    found = config_constraints.problems(
        MigrateSettings(owner="fluxcd", poll_interval_seconds=0, node_config=""), "migrate")
    assert len(found) == 3 and any("migrate.owner" in p for p in found)
