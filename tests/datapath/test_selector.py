"""LabelSelector matching as metav1 defines it (CiliumNodeConfig.spec.nodeSelector).

Matrix: nil vs empty selector; matchLabels; In, NotIn (also on a missing key), Exists,
DoesNotExist; both combined; invalid selectors (unknown operator, In without values,
Exists with values, no key) select nothing.
"""

from __future__ import annotations

import pytest

from exporter.datapath.selector import selector_matches

LABELS = {"io.cilium.migration/kube-proxy-replacement": "true", "zone": "a"}
KEY = "io.cilium.migration/kube-proxy-replacement"


@pytest.mark.parametrize(("selector", "expected"), [
    (None, False),
    ({}, True),
    ({"matchLabels": {KEY: "true"}}, True),
    ({"matchLabels": {KEY: "false"}}, False),
    ({"matchLabels": {KEY: "true", "zone": "b"}}, False),
    ({"matchExpressions": [{"key": KEY, "operator": "In", "values": ["true", "x"]}]}, True),
    ({"matchExpressions": [{"key": KEY, "operator": "In", "values": ["x"]}]}, False),
    ({"matchExpressions": [{"key": "missing", "operator": "In", "values": ["x"]}]}, False),
    ({"matchExpressions": [{"key": KEY, "operator": "NotIn", "values": ["true"]}]}, False),
    ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["x"]}]}, True),
    ({"matchExpressions": [{"key": KEY, "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "missing", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": KEY, "operator": "DoesNotExist"}]}, False),
    ({"matchLabels": {"zone": "a"},
      "matchExpressions": [{"key": KEY, "operator": "In", "values": ["true"]}]}, True),
    ({"matchLabels": {"zone": "b"},
      "matchExpressions": [{"key": KEY, "operator": "In", "values": ["true"]}]}, False),
    # invalid selectors select nothing
    ({"matchExpressions": [{"key": KEY, "operator": "Equals", "values": ["true"]}]}, False),
    ({"matchExpressions": [{"key": KEY, "operator": "In", "values": []}]}, False),
    ({"matchExpressions": [{"key": KEY, "operator": "Exists", "values": ["true"]}]}, False),
    ({"matchExpressions": [{"operator": "Exists"}]}, False),
])
def test_selector_matches(selector, expected):
    assert selector_matches(selector, LABELS) is expected
