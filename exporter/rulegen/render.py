"""Assemble the rule file of a profile and write every generated artefact.

``render_rules(profile)`` returns the Prometheus rule file as a dict (the chart, the tests and
the CLI call it); ``rule_file_text`` is the exact committed YAML; ``generated_files`` maps each
repository path the generator owns to its content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from exporter.rulegen import dashboards
from exporter.rulegen.alerting import regression_rules
from exporter.rulegen.measurement import measurement_rules, rollback_rules
from exporter.rulegen.migration_rules import migration_rules
from exporter.rulegen.probe_rules import probe_rules
from exporter.rulegen.profiles import DEFAULT_SPEC_PATH, Spec, format_duration, load_spec
from exporter.rulegen.recording import recording_groups

REPO_ROOT = DEFAULT_SPEC_PATH.parents[1]


def render_rules(profile: str = "default", *, spec: Spec | None = None) -> dict[str, Any]:
    """The rule file (``{"groups": [...]}``) of ``profile`` from the spec (default: alerts/profiles.yaml)."""
    spec = spec if spec is not None else load_spec()
    p = spec.profile(profile)
    runbook = p.runbook_base_url
    groups = recording_groups(p) + [
        {"name": "kpr-exporter.regressions", "rules": regression_rules(p, runbook)},
        {"name": "kpr-exporter.measurement", "rules": measurement_rules(p, runbook)},
        {"name": "kpr-exporter.rollback", "rules": rollback_rules(p, runbook)},
        {"name": "kpr-exporter.verification", "rules": probe_rules(p, runbook)},
        {"name": "kpr-exporter.migration", "rules": migration_rules(p, runbook)},
    ]
    interval = format_duration(p.evaluation_interval)
    return {"groups": [{"name": g["name"], "interval": interval, "rules": g["rules"]} for g in groups]}


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (PromQL), insertion order kept, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def rule_file_text(profile: str, *, spec: Spec | None = None) -> str:
    body = yaml.dump(render_rules(profile, spec=spec), Dumper=_Dumper, sort_keys=False,
                     width=10_000, allow_unicode=True)
    header = (f"# Rule profile {profile!r}. Generated from alerts/profiles.yaml by "
              "`python -m exporter.rulegen`; do not edit by hand.\n")
    return header + body


def generated_files(*, spec: Spec | None = None) -> dict[str, str]:
    """Repository-relative path -> content of every file the generator owns."""
    spec = spec if spec is not None else load_spec()
    files = {f"alerts/rules/{name}.yaml": rule_file_text(name, spec=spec) for name in spec.profiles}
    files.update({f"dashboards/{name}": text for name, text in dashboards.dashboard_files().items()})
    return files


def write_files(root: Path = REPO_ROOT, *, check: bool = False) -> list[str]:
    """Write (or, with ``check``, only compare) every generated file; returns the paths that differ."""
    stale = []
    for rel, text in generated_files().items():
        path = root / rel
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(rel)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    return stale
