"""Every alert's ``runbook_url`` resolves to a section of ``alerts/runbook.md``.

Matrix: the runbook base URL is a profile setting (inherited through ``extends``, overridable
per profile, validated; the old top-level key is refused with a pointer); the shipped default
points at the runbook file the chart ships, and every anchor is a heading of it, in every
profile; the chart's ``prometheusRule.runbookBaseUrl`` rewrites every ``runbook_url`` of the
PrometheusRule (anchors kept) and its default keeps the generated ones; the schema refuses a
value that is not an http(s) URL.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from urllib.parse import urlsplit

import helm_python as helm
import pytest

from exporter.rulegen import ProfileError, load_spec, render_rules
from exporter.rulegen.profiles import parse_spec
from tests.alerts.ruledata import ALERTS, ROOT, RULES_DIR, load_yaml, rules_of

SPEC = load_spec()
PROFILES = sorted(SPEC.profiles)
RUNBOOK = ALERTS / "runbook.md"
CHART_DIR = ROOT / "chart"


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped, spaces
    to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+?)\s*$", text, re.MULTILINE)}


def repository_file(url: str) -> Path:
    """The repository file a ``.../blob/<ref>/<path>`` URL shows."""
    match = re.fullmatch(r"/[^/]+/[^/]+/blob/[^/]+/(.+)", urlsplit(url).path)
    assert match, f"{url} does not name a file of the repository (/<owner>/<repo>/blob/<ref>/<path>)"
    return ROOT / match.group(1)


def alert_urls(doc: dict) -> dict[str, str]:
    urls = {}
    for rule in rules_of(doc, "alert"):
        urls.setdefault(rule["alert"], rule["annotations"]["runbook_url"])
        assert urls[rule["alert"]] == rule["annotations"]["runbook_url"], rule["alert"]
    return urls


@pytest.mark.parametrize("profile", PROFILES)
def test_every_runbook_url_resolves_to_a_section_of_the_shipped_runbook(profile: str) -> None:
    anchors = runbook_anchors()
    urls = alert_urls(render_rules(profile))
    assert len(urls) >= 15
    for name, url in urls.items():
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.netloc, url
        shown = repository_file(url)
        assert shown.is_file() and shown.samefile(RUNBOOK), f"{name}: {url} is not alerts/runbook.md"
        assert "chart/" in str(shown.relative_to(ROOT)), f"{name}: not the runbook the chart ships"
        assert parts.fragment in anchors, f"{name}: #{parts.fragment} is no section of the runbook"


def test_the_runbook_anchor_helper_sees_the_sections() -> None:
    anchors = runbook_anchors()
    assert "kprhandshakelatencyregression" in anchors and "kprrollbackfailed" in anchors
    assert github_anchor("Before you roll back: check (1) and 2.") == "before-you-roll-back-check-1-and-2"


def _spec() -> dict:
    return copy.deepcopy(load_yaml(ALERTS / "profiles.yaml"))


def test_runbook_base_url_is_a_profile_setting_inherited_and_overridable() -> None:
    doc = _spec()
    doc["profiles"]["fast"]["runbook_base_url"] = "https://wiki.example.com/kpr/runbook"
    spec = parse_spec(doc)
    assert spec.profile("fast").runbook_base_url == "https://wiki.example.com/kpr/runbook"
    assert spec.profile("default").runbook_base_url == SPEC.profile("default").runbook_base_url
    fast = alert_urls(render_rules("fast", spec=spec))
    assert fast["KprRollbackFailed"] == "https://wiki.example.com/kpr/runbook#kprrollbackfailed"
    assert SPEC.profile("fast").runbook_base_url == SPEC.profile("default").runbook_base_url


@pytest.mark.parametrize("value", ["", "ftp://example.com/runbook", "https://x.example/r.md#top",
                                   "https://x.example/a b", 42])
def test_a_bad_runbook_base_url_is_refused(value) -> None:
    doc = _spec()
    doc["profiles"]["default"]["runbook_base_url"] = value
    with pytest.raises(ProfileError, match="profile default: runbook_base_url must be an http"):
        parse_spec(doc)


def test_the_old_top_level_setting_is_refused_with_a_pointer() -> None:
    doc = _spec()
    doc["runbook_base_url"] = "https://wiki.example.com/runbook"
    with pytest.raises(ProfileError, match="runbook_base_url is a profile setting"):
        parse_spec(doc)


# --- the chart ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chart():
    loaded = helm.Chart.load(CHART_DIR)
    try:
        yield loaded
    finally:
        loaded.close()


def rendered_rule(chart, values: dict) -> dict:
    out = chart.render(values, name="kpr", namespace="kpr-system", is_install=True)
    [text] = [t for path, t in out.items() if path.endswith("prometheusrule.yaml")]
    import yaml

    return yaml.safe_load(text)


@pytest.mark.parametrize("profile", PROFILES)
def test_the_chart_keeps_the_profiles_runbook_urls_by_default(chart, profile: str) -> None:
    rule = rendered_rule(chart, {"prometheusRule": {"enabled": True}, "alerts": {"profile": profile}})
    committed = load_yaml(RULES_DIR / f"{profile}.yaml")
    assert alert_urls(rule["spec"]) == alert_urls(committed)


@pytest.mark.parametrize("profile", PROFILES)
def test_the_chart_value_rewrites_every_runbook_url(chart, profile: str) -> None:
    base = "https://wiki.example.com/ops/kpr-runbook"
    rule = rendered_rule(chart, {"prometheusRule": {"enabled": True, "runbookBaseUrl": base},
                                 "alerts": {"profile": profile}})
    urls = alert_urls(rule["spec"])
    anchors = runbook_anchors()
    assert urls and set(urls) == set(alert_urls(load_yaml(RULES_DIR / f"{profile}.yaml")))
    for name, url in urls.items():
        assert url == f"{base}#{name.lower()}"
        assert urlsplit(url).fragment in anchors
    # Only the runbook links change: the rules themselves stay as committed.
    committed = load_yaml(RULES_DIR / f"{profile}.yaml")
    for group in committed["groups"]:
        for r in group["rules"]:
            if "alert" in r:
                r["annotations"]["runbook_url"] = f"{base}#{r['alert'].lower()}"
    assert rule["spec"]["groups"] == committed["groups"]


@pytest.mark.parametrize("value", ["wiki/runbook", "https://x.example/r.md#top"])
def test_the_chart_schema_refuses_a_runbook_base_url_that_is_not_a_plain_url(chart, value) -> None:
    with pytest.raises(Exception, match="runbookBaseUrl"):
        rendered_rule(chart, {"prometheusRule": {"enabled": True, "runbookBaseUrl": value}})
