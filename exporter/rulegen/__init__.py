"""Generator of the Prometheus rules and Grafana dashboards shipped in alerts/ and dashboards/.

The windows, thresholds, traffic guards and pending times live once, in
``alerts/profiles.yaml``; ``render_rules(profile)`` turns a profile into a Prometheus rule file
and ``python -m exporter.rulegen`` writes the committed copies (``--check`` only compares).
Pure: no network, no exporter runtime imports.
"""

from exporter.rulegen.profiles import Profile, ProfileError, Spec, load_spec
from exporter.rulegen.render import generated_files, render_rules, rule_file_text, write_files

__all__ = [
    "Profile", "ProfileError", "Spec", "generated_files", "load_spec", "render_rules",
    "rule_file_text", "write_files",
]
