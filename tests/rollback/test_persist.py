"""The persisting Helm revision, planned: values, diff, refusals, the equivalent command."""

from __future__ import annotations

import pytest

from exporter.rollback.persist import PersistError, plan_persist, values_diff, with_kpr_off
from tests.fakekube.helm import stored_chart


def document(config: dict, *, status: str = "deployed", chart: dict | None = None) -> dict:
    return {"name": "cilium", "namespace": "kube-system", "version": 9, "info": {"status": status},
            "chart": chart if chart is not None else stored_chart(), "config": config}


def test_kpr_goes_off_and_every_other_value_stays() -> None:
    before = {"kubeProxyReplacement": True, "k8sServiceHost": "api.internal",
              "hubble": {"relay": {"enabled": True}}}
    plan = plan_persist(document(before))
    assert plan.values_after == {**before, "kubeProxyReplacement": False}
    assert plan.values_before == before, "the input is not mutated"
    assert plan.diff == ("  - kubeProxyReplacement: true", "  + kubeProxyReplacement: false")
    text = plan.render()
    assert "revision 9 (cilium 1.18.3) -> revision 10" in text
    assert ("helm upgrade cilium <cilium chart> --version 1.18.3 -n kube-system --reuse-values "
            "--set kubeProxyReplacement=false") in text


def test_string_values_stay_strings_and_a_missing_value_is_added() -> None:
    assert with_kpr_off({"kubeProxyReplacement": "true"})["kubeProxyReplacement"] == "false"
    plan = plan_persist(document({}))
    assert plan.values_after == {"kubeProxyReplacement": False}
    assert plan.diff == ("  + kubeProxyReplacement: false",)


def test_nothing_to_do_when_the_release_already_agrees() -> None:
    plan = plan_persist(document({"kubeProxyReplacement": False}))
    assert not plan.needed and "nothing to change" in plan.render()


@pytest.mark.parametrize("doc, text", [
    (document({}, status="superseded"), "superseded, not deployed"),
    (document({}, chart={"metadata": {"name": "cilium"}, "templates": []}), "stores no chart templates"),
    (document({}, chart={**stored_chart(), "metadata": {"name": "cilium", "dependencies": [{"name": "x"}]}}),
     "has dependencies"),
])
def test_refusals_say_why(doc: dict, text: str) -> None:
    with pytest.raises(PersistError, match=text):
        plan_persist(doc)


def test_nested_diff_uses_dotted_keys() -> None:
    assert values_diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": "x"}) == [
        "  - a.c: 2", "  + a.c: 3", '  + d: "x"']
