"""The demo's stand-in for Prometheus and Alertmanager: the judge's rollback alert, built from
the shipped rule itself.

Without a real Prometheus the demo posts the Alertmanager payload the shipped rule on
``kpr_verdict == 1`` would produce, and with an emulated datapath the one the shipped
``KprProbeCheckFailing`` rule on ``kpr_probe_checks_total`` would (``probe_rule``). The
rules come from the rule source (``exporter.rulegen``, profile ``fast``), so the alert
name, its static labels (``severity``, ``kpr_action``, ``kpr_scope``) and its annotations
are the shipped ones and cannot drift. Annotation templates are filled in the way
Prometheus would for the labels the demo knows; the effect query (and ``$value``) is
answered with the verdict's effect size or the check's failed share. Pure module.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from exporter.metrics_contract import ROLLBACK_ALERT_LABEL, ROLLBACK_ALERT_VALUE
from exporter.rulegen import render_rules
from exporter.rulegen import names

PROFILE = "fast"
_LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
_WITH_QUERY = re.compile(r"\{\{\s*with\b.*?\{\{\s*end\s*\}\}", re.S)
_VALUE_PERCENT = re.compile(r"\{\{\s*\$value\s*\|\s*humanizePercentage\s*\}\}")
_VALUE = re.compile(r"\{\{\s*\$value\s*\}\}")


class StandInError(RuntimeError):
    """The rule source has no rollback rule on the judge's verdict for this comparison."""


def judge_rule(comparison: str, profile: str = PROFILE) -> dict[str, Any]:
    """The shipped alerting rule that requests a rollback when the judge says worse for
    ``comparison``."""
    selector = f'comparison="{comparison}"'
    for group in render_rules(profile)["groups"]:
        for rule in group["rules"]:
            labels = rule.get("labels", {})
            expr = rule.get("expr", "")
            if ("alert" in rule and labels.get(ROLLBACK_ALERT_LABEL) == ROLLBACK_ALERT_VALUE
                    and f"{names.VERDICT}{{" in expr and selector in expr):
                return dict(rule)
    raise StandInError(f"no rollback rule on {names.VERDICT} with {selector} in profile {profile!r}")


def probe_rule(profile: str = PROFILE) -> dict[str, Any]:
    """The shipped alerting rule that requests a rollback when a probe check fails on eBPF
    nodes (``KprProbeCheckFailing``)."""
    for group in render_rules(profile)["groups"]:
        for rule in group["rules"]:
            if ("alert" in rule
                    and rule.get("labels", {}).get(ROLLBACK_ALERT_LABEL) == ROLLBACK_ALERT_VALUE
                    and names.PROBE_CHECKS in rule.get("expr", "")):
                return dict(rule)
    raise StandInError(f"no rollback rule on {names.PROBE_CHECKS} in profile {profile!r}")


def fill(template: str, labels: Mapping[str, str], effect: float) -> str:
    """A rule annotation as Prometheus would render it for ``labels``; ``effect`` answers
    the effect query and stands for the alert's ``$value``."""
    text = _WITH_QUERY.sub(_percentage(effect), template)
    text = _VALUE_PERCENT.sub(lambda m: _percentage(effect), text)
    text = _VALUE.sub(lambda m: f"{effect:g}", text)
    text = _LABEL.sub(lambda m: labels.get(m.group(1), ""), text)
    if "{{" in text:
        raise StandInError(f"cannot fill the template {template!r}")
    return text


def alert(rule: Mapping[str, Any], series: Mapping[str, str], effect: float,
          starts_at: float | None = None) -> dict[str, Any]:
    """One firing alert of ``rule`` for the series ``series`` (its ``by`` labels)."""
    labels = {**series, **rule.get("labels", {}), "alertname": rule["alert"]}
    annotations = {k: fill(v, labels, effect) for k, v in rule.get("annotations", {}).items()}
    fingerprint = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
    when = time.gmtime(time.time() if starts_at is None else starts_at)
    return {"status": "firing", "labels": labels, "annotations": annotations,
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", when),
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fingerprint}


def payload(alerts: Sequence[Mapping[str, Any]], receiver: str = "kpr-exporter") -> dict[str, Any]:
    """The version-4 webhook payload Alertmanager sends for one group of ``alerts``."""
    if not alerts:
        raise StandInError("a notification needs at least one alert")
    names_ = sorted({a["labels"]["alertname"] for a in alerts})
    common = {k: v for k, v in alerts[0]["labels"].items()
              if all(a["labels"].get(k) == v for a in alerts)}
    group = {"alertname": names_[0]} if len(names_) == 1 else {}
    key = ",".join(f'{k}="{v}"' for k, v in group.items())
    return {"version": "4", "groupKey": f"{{}}:{{{key}}}", "truncatedAlerts": 0,
            "status": "firing", "receiver": receiver, "groupLabels": group,
            "commonLabels": common, "commonAnnotations": {}, "externalURL": "",
            "alerts": list(alerts)}


def _percentage(value: float) -> str:
    """``humanizePercentage``-like, or ``no data`` as the rule's ``else`` branch says."""
    if value is None or math.isnan(value):
        return "no data"
    if math.isinf(value):
        return "+Inf%" if value > 0 else "-Inf%"
    return f"{value * 100:.4g}%"
