"""Dependency resolution: order, missing / ambiguous / cyclic providers, rules, user functions."""

import pytest

from eftflow.errors import ConfigError
from eftflow.inference.scan import build_scan

PARAMS = {
    "M": {
        "parameters": {
            "x": {"prior": "flat", "range": [0, 1]},
            "y": {"prior": "flat", "range": [0, 1]},
        }
    }
}


def expr(e):
    return {"function": "expression", "options": {"expr": e}}


def like(pred):
    return {"function": "gaussian", "options": {"prediction": pred, "observed": 0.5, "sigma": 0.1}}


def scan(components, **extra):
    return {"models": PARAMS, "components": components, **extra}


def test_resolution_order_follows_dependencies():
    built = build_scan(
        scan(
            {
                "l": like("c"),
                "c": expr("b + a"),
                "b": expr("2*a"),
                "a": expr("x + y"),
                "unused": expr("x"),
            }
        )
    )
    order = [c.key for c in built.pipeline.components]
    assert order.index("a") < order.index("b") < order.index("c") < order.index("l")
    assert "unused" not in order
    assert built.pipeline.likelihood_keys == ["l"]


def test_missing_provider_names_requirement_and_requester():
    with pytest.raises(ConfigError) as err:
        build_scan(scan({"l": like("c"), "c": expr("x + zz")}))
    msg = str(err.value)
    assert "'zz'" in msg and "component 'c'" in msg and "components.c" in msg


def test_ambiguous_provider_and_rule():
    comps = {
        "l": like("pred"),
        "p1": {**expr("x"), "provides": "pred"},
        "p2": {**expr("y"), "provides": "pred"},
    }
    with pytest.raises(ConfigError) as err:
        build_scan(scan(comps))
    assert (
        "several candidates" in str(err.value) and "p1" in str(err.value) and "p2" in str(err.value)
    )
    built = build_scan(scan(comps, rules={"pred": "p2"}))
    assert [c.key for c in built.pipeline.components] == ["p2", "l"]
    with pytest.raises(ConfigError, match="rules.pred"):
        build_scan(scan(comps, rules={"pred": "nope"}))


def test_parameter_and_component_with_same_capability_is_ambiguous():
    with pytest.raises(ConfigError, match="several candidates"):
        build_scan(scan({"l": like("x"), "x": expr("y")}))


def test_cycle_is_reported():
    with pytest.raises(ConfigError) as err:
        build_scan(scan({"l": like("a"), "a": expr("b + x"), "b": expr("c"), "c": expr("a")}))
    assert "circular" in str(err.value) and "->" in str(err.value)


def test_likelihood_target_must_be_a_likelihood():
    with pytest.raises(ConfigError, match="likelihood"):
        build_scan(scan({"l": like("a"), "a": expr("x")}, likelihood=["a"]))


def test_user_function_via_imports(monkeypatch):
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parent))
    comps = {
        "h": {"function": "scan_userfuncs:half_or_invalid"},
        "l": like("halfx"),
    }
    with pytest.raises(ConfigError, match="not registered"):
        build_scan(scan(comps))
    built = build_scan(scan(comps, imports=["scan_userfuncs"]))
    comp = built.pipeline.components[0]
    assert comp.capability == "halfx" and comp.label == "#halfx @scan_userfuncs::half_or_invalid"
