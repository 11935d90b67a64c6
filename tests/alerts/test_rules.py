"""The shipped Prometheus rules: generated from the profiles, valid, unit-tested and tidy.

Matrix:
- generation: committed files == generator output (every profile); ``render_rules`` API;
  profile validation reports every problem; ``extends`` merges;
- promtool: ``check rules`` (lint fatal) on every profile, ``test rules`` on every unit-test file;
- coverage: every alert fires in some test and stays silent in another, every recording rule
  has an exact-value test, every test group sets ``interval:`` (promtool 2.42 needs it);
- hygiene: severity, ``for:``, static summary, templated description, runbook anchor;
  only regressions carry ``kpr_action``, with labels the webhook decision understands;
- timing: the default profile requests rollback within 10 minutes of onset.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.rulegen import ProfileError, load_spec, render_rules, rule_file_text
from exporter.rulegen.alerting import REGRESSIONS
from exporter.rulegen.profiles import format_duration, parse_spec
from exporter.rulegen.timing import timing
from exporter.webhook.decision import SCOPE_CANARY, SCOPE_CLUSTER
from exporter.webhook.settings import WebhookSettings
from tests.alerts.ruledata import ALERTS, RULES_DIR, UNIT_TESTS, load_yaml, rules_of
from tests.realstack.harness import promtool

SPEC = load_spec()
PROFILES = sorted(SPEC.profiles)
SEVERITIES = {"critical", "warning", "info"}


# --- generation ----------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_committed_rule_file_is_what_the_generator_renders(profile: str) -> None:
    committed = (RULES_DIR / f"{profile}.yaml").read_text(encoding="utf-8")
    assert committed == rule_file_text(profile), (
        f"alerts/rules/{profile}.yaml is stale: run `python -m exporter.rulegen`")


def test_no_rule_file_without_a_profile() -> None:
    assert sorted(p.stem for p in RULES_DIR.glob("*.yaml")) == PROFILES


def test_render_rules_returns_the_rule_file_as_a_dict() -> None:
    doc = render_rules("fast")
    names = [g["name"] for g in doc["groups"]]
    assert names == ["kpr-exporter.service-slis", "kpr-exporter.node-slis", "kpr-exporter.baseline",
                     "kpr-exporter.regressions", "kpr-exporter.measurement", "kpr-exporter.rollback",
                     "kpr-exporter.verification", "kpr-exporter.migration"]
    assert {g["interval"] for g in doc["groups"]} == {"5s"}
    info = doc["groups"][0]["rules"][0]
    assert info["labels"] == {"profile": "fast", "short_window": "30s", "long_window": "3m"}


def test_unknown_profile_is_an_error() -> None:
    with pytest.raises(ProfileError, match="unknown rule profile 'huge'; known: default, fast"):
        render_rules("huge")


def _spec(**default_overrides: object) -> dict[str, object]:
    doc = load_yaml(ALERTS / "profiles.yaml")
    doc["profiles"]["default"].update(default_overrides)
    return doc


def test_profile_validation_reports_every_problem() -> None:
    doc = _spec(windows={"short": "30m", "long": "5m"}, surprise=1)
    doc["profiles"]["default"]["thresholds"] = {"handshake_p99": {"factor": 0.5, "floor": 0.001}}
    with pytest.raises(ProfileError) as caught:
        parse_spec(doc)
    message = str(caught.value)
    for expected in ("unknown keys surprise", "windows.short must be shorter than windows.long",
                     "thresholds.handshake_p99.factor must be at least 1.0",
                     "thresholds.drop_ratio must be a mapping",
                     "thresholds.lost_events_ratio must be a number"):
        assert expected in message


def test_a_pending_time_not_longer_than_the_short_window_is_rejected() -> None:
    doc = _spec(windows={"short": "5m", "long": "30m"})
    with pytest.raises(ProfileError, match="for.regression must be longer than windows.short"):
        parse_spec(doc)


def test_extends_loops_are_reported() -> None:
    doc = load_yaml(ALERTS / "profiles.yaml")
    doc["profiles"]["default"]["extends"] = "fast"
    with pytest.raises(ProfileError, match="'extends' loops"):
        parse_spec(doc)


def test_extends_merges_key_by_key() -> None:
    fast, default = SPEC.profile("fast"), SPEC.profile("default")
    assert fast.thresholds == default.thresholds
    assert (fast.short, fast.long, fast.min_connections) == (30, 180, 20)


# --- promtool ---------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_promtool_check_rules(promtool_bin: str, profile: str) -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal",
                      str(RULES_DIR / f"{profile}.yaml"), binary=promtool_bin)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(promtool_bin: str, test_file: Path) -> None:
    result = promtool("test", "rules", test_file.name, binary=promtool_bin, cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", UNIT_TESTS, ids=lambda p: p.name)
def test_every_unit_test_group_sets_interval(test_file: Path) -> None:
    for group in load_yaml(test_file)["tests"]:
        assert "interval" in group, f"{test_file.name}: group {group.get('name')!r} has no interval"


def _alert_cases() -> dict[str, list[bool]]:
    """alertname -> for each alert_rule_test on the default rules: did it expect alerts?"""
    cases: dict[str, list[bool]] = {}
    for path in UNIT_TESTS:
        doc = load_yaml(path)
        if not any(str(f).endswith("rules/default.yaml") for f in doc["rule_files"]):
            continue
        for group in doc["tests"]:
            for case in group.get("alert_rule_test") or ():
                cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    return cases


def test_every_alert_is_tested_firing_and_silent(default_rules: dict) -> None:
    cases = _alert_cases()
    for rule in rules_of(default_rules, "alert"):
        seen = cases.get(rule["alert"], [])
        assert True in seen, f"{rule['alert']}: no test where it fires"
        assert False in seen, f"{rule['alert']}: no test where it stays silent"


def test_every_recording_rule_has_an_exact_value_test(default_rules: dict) -> None:
    tested: set[str] = set()
    for path in UNIT_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("promql_expr_test") or ():
                if case.get("exp_samples"):
                    tested.add(re.split(r"[{\s]", case["expr"], maxsplit=1)[0])
    missing = [r["record"] for r in rules_of(default_rules, "record") if r["record"] not in tested]
    assert not missing, f"recording rules without an exact-value test: {missing}"


# --- hygiene --------------------------------------------------------------------------------

def _runbook_anchors() -> set[str]:
    text = (ALERTS / "runbook.md").read_text(encoding="utf-8")
    return {m.group(1).lower() for m in re.finditer(r"^## (\w+)\s*$", text, re.MULTILINE)}


@pytest.mark.parametrize("profile", PROFILES)
def test_alert_hygiene(profile: str) -> None:
    anchors = _runbook_anchors()
    for rule in rules_of(render_rules(profile), "alert"):
        name, labels, notes = rule["alert"], rule["labels"], rule["annotations"]
        assert labels.get("severity") in SEVERITIES, name
        assert re.fullmatch(r"\d+[hms](\d+[ms])?", rule["for"]), name
        assert "{{" not in notes["summary"], f"{name}: the summary must be static"
        assert "{{" in notes["description"], f"{name}: the description must be templated"
        assert notes["runbook_url"] == f"{SPEC.profile(profile).runbook_base_url}#{name.lower()}", name
        assert name.lower() in anchors, f"{name}: no section '## {name}' in alerts/runbook.md"
        assert not any("$value" in v for v in labels.values()), f"{name}: $value in a label"


def test_every_runbook_section_belongs_to_an_alert(default_rules: dict) -> None:
    names = {r["alert"].lower() for r in rules_of(default_rules, "alert")}
    assert _runbook_anchors() == names


def test_only_regressions_request_rollback(default_rules: dict) -> None:
    match = WebhookSettings().match_labels
    expected = {r.alert for r in REGRESSIONS} | {"KprNodeSensitiveDropsRegression",
                                                  "KprJudgeServiceWorse", "KprProbeCheckFailing"}
    acting = set()
    for rule in rules_of(default_rules, "alert"):
        labels = rule["labels"]
        if all(labels.get(k) == v for k, v in match.items()):
            acting.add(rule["alert"])
            assert labels["severity"] == "critical"
            assert labels.get("kpr_scope", SCOPE_CANARY) in (SCOPE_CANARY, SCOPE_CLUSTER)
        else:
            assert "kpr_action" not in labels, rule["alert"]
    assert acting == expected


def test_judge_alert_scopes_each_comparison() -> None:
    judged = [r for r in rules_of(render_rules("default"), "alert")
              if r["alert"] == "KprJudgeServiceWorse"]
    scopes = {re.search(r'comparison="([^"]+)"', r["expr"]).group(1): r["labels"].get("kpr_scope")
              for r in judged}
    # The baseline comparison names no scope: the webhook scopes it by phase.
    assert scopes == {"canary-vs-control": SCOPE_CANARY, "after-vs-baseline": None}
    assert {r["for"] for r in judged} == {format_duration(SPEC.profile("default").for_regression)}


def test_judge_stalled_bound_comes_from_the_profile() -> None:
    doc = _spec()
    doc["profiles"]["default"]["thresholds"]["judge_stalled_after"] = "45s"
    with pytest.raises(ProfileError, match="judge_stalled_after must be longer"):
        parse_spec(doc)
    for name in PROFILES:
        stalled = next(r for r in rules_of(render_rules(name), "alert")
                       if r["alert"] == "KprJudgeStalled")
        assert stalled["expr"].endswith(f"> {SPEC.profile(name).judge_stalled_after}")
        assert "kpr_action" not in stalled["labels"]


#: Alerts that name the node to roll back in their ``node`` label (the webhook's node_label).
NODE_ALERTS = ("KprNodeSensitiveDropsRegression", "KprProbeCheckFailing")


@pytest.mark.parametrize("profile", PROFILES)
def test_no_rule_asks_for_the_whole_cluster(profile: str) -> None:
    """A baseline comparison also fires in the canary phase (a Service that no kube-proxy node
    carries): a static kpr_scope="cluster" would roll the whole cluster back for a canary."""
    baseline = canary = 0
    for rule in rules_of(render_rules(profile), "alert"):
        labels = rule["labels"]
        assert labels.get("kpr_scope") != SCOPE_CLUSTER, rule["alert"]
        if "kpr_action" not in labels:
            continue
        comparison = labels.get("comparison")
        if comparison is None:  # the judge's rules select one comparison each
            comparison = re.search(r'comparison="([^"]+)"', rule["expr"]).group(1)
        if comparison == "after-vs-baseline":
            baseline += 1
            assert "kpr_scope" not in labels, rule["alert"]
        elif rule["alert"] not in NODE_ALERTS:  # node alerts name their node
            canary += 1
            assert labels["kpr_scope"] == SCOPE_CANARY, rule["alert"]
    assert baseline >= 4 and canary >= 5


# --- timing -------------------------------------------------------------------------------

def test_default_profile_requests_rollback_within_ten_minutes() -> None:
    t = timing(SPEC.profile("default"))
    assert t.request_seconds <= 600
    assert t.shortest_blip_seconds > 0


def test_readme_timing_table_matches_the_profiles() -> None:
    text = (ALERTS / "README.md").read_text(encoding="utf-8")
    for name in PROFILES:
        p, t = SPEC.profile(name), timing(SPEC.profile(name))
        row = re.search(rf"^\| `{name}` \|(.+)\|\s*$", text, re.MULTILINE)
        assert row, f"alerts/README.md has no timing row for profile {name}"
        cells = [c.strip() for c in row.group(1).split("|")]
        fmt = format_duration
        assert cells == [fmt(p.scrape_interval), fmt(p.evaluation_interval), fmt(p.short),
                         fmt(p.long), fmt(p.for_regression), fmt(p.group_wait),
                         fmt(t.detect_seconds), fmt(t.request_seconds),
                         fmt(t.shortest_blip_seconds)], name
