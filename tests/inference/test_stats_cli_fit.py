"""``eftflow fit SPEC`` (fits described in YAML/JSON) and the ``eftflow limits`` alias."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from scipy.optimize import brentq

from eftflow.cli import main
from eftflow.errors import EftflowError, ExpressionError, InputError
from eftflow.inference.specs import run_fit_spec


def _gauss(**extra):
    """chi2 = (a - 1)^2 + ((b - 2) / 2)^2."""
    spec = {
        "kind": "gaussian",
        "parameters": {"a": 0.0, "b": {"value": 0.0, "lower": -10, "upper": 10}},
        "gaussian": {"mean": [1.0, 2.0], "covariance": [[1.0, 0.0], [0.0, 4.0]]},
    }
    spec.update(extra)
    return spec


def test_fit_cli_linear_constraint_matches_lagrange(tmp_path):
    spec = _gauss(
        constraints=[
            {"name": "sum", "type": "linear", "coefficients": {"a": 1, "b": 1}, "upper": 1}
        ],
        profiles=["a"],
        contours=[["a", "b"]],
        contour_points=8,
    )
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(spec))
    out, plots = tmp_path / "fit.json", tmp_path / "plots"
    assert main(["fit", str(path), "-o", str(out), "--plot", str(plots)]) == 0
    res = json.loads(out.read_text())
    # Lagrange: a = 1 - l/2, b = 2 - 2 l, a + b = 1 -> l = 0.8
    assert res["best_fit"]["a"] == pytest.approx(0.6, abs=1e-6)
    assert res["best_fit"]["b"] == pytest.approx(0.4, abs=1e-6)
    assert res["active_constraints"] == ["sum"]
    # profile of a along the active constraint: 1.25 (a - 0.6)^2 -> MINOS +-sqrt(1/1.25)
    ma, mb = res["minos"]["a"], res["minos"]["b"]
    assert ma["errn"] == pytest.approx(math.sqrt(0.8), rel=1e-5)
    assert ma["errp"] == pytest.approx(math.sqrt(0.8), rel=1e-5)
    assert mb["errp"] == pytest.approx(math.sqrt(0.8), rel=1e-5)
    # below b = 0 the constraint lets a = 1: (b - 2)^2 / 4 = 1.8 -> b = 2 - sqrt(7.2)
    assert mb["errn"] == pytest.approx(0.4 - (2 - math.sqrt(7.2)), rel=1e-5)
    assert ma["success"] and mb["success"]
    assert res["errors"]["a"] == pytest.approx(math.sqrt(0.8), rel=1e-3)  # numeric Hessian
    assert len(res["contours"][0]["x"]) == 8
    assert sorted(p.name for p in plots.glob("*.png")) == ["contour_a_b.png", "profile_a.png"]


def test_fit_nonlinear_constraint_matches_lagrange():
    spec = _gauss(constraints=[{"name": "circle", "expression": "a**2 + b**2", "equal": 1.0}])
    spec["parameters"] = {"a": 0.5, "b": 0.5}  # the constraint's gradient vanishes at (0, 0)
    spec["minos"] = False
    res, _ = run_fit_spec(spec)
    # (a - 1) = -l a, (b - 2)/4 = -l b -> a = 1/(1 + l), b = 2/(1 + 4 l) on the unit circle
    lam = brentq(lambda x: (1 / (1 + x)) ** 2 + (2 / (1 + 4 * x)) ** 2 - 1, 0.0, 10.0)
    assert res["best_fit"]["a"] == pytest.approx(1 / (1 + lam), abs=1e-5)
    assert res["best_fit"]["b"] == pytest.approx(2 / (1 + 4 * lam), abs=1e-5)
    assert res["backend"] == "scipy"


@pytest.mark.parametrize("others, sigma", [("fixed", 0.1), ("profiled", 1 / math.sqrt(96.0))])
def test_fit_fisher_subset_fixes_or_profiles_the_others(tmp_path, others, sigma):
    # I = [[100, 10], [10, 25]]: theta_2 fixed -> 1/sqrt(100); profiled -> 1/sqrt(100 - 10²/25)
    info = {"information": [[100.0, 10.0], [10.0, 25.0]], "parameter_names": ["t1", "t2"]}
    (tmp_path / "fi.json").write_text(json.dumps({"theta": [0, 0], "analyses": {"truth": info}}))
    spec = {
        "kind": "gaussian",
        "parameters": {"t1": 0.1},
        "gaussian": {"fisher": {"file": "fi.json", "others": others}},
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(spec))
    res, _ = run_fit_spec(spec, file=str(path))
    assert res["best_fit"]["t1"] == pytest.approx(0.0, abs=1e-6)
    assert res["errors"]["t1"] == pytest.approx(sigma, rel=1e-4)


def test_fit_unconstrained_backends_agree_and_hesse_is_exact():
    cov = [[1.0, 0.6], [0.6, 4.0]]
    base = {"kind": "gaussian", "parameters": {"a": 0.0, "b": 0.0}, "minos": True}
    base["gaussian"] = {"mean": [1.0, 2.0], "covariance": cov}
    r_m, _ = run_fit_spec({**base, "backend": "minuit"})
    r_s, _ = run_fit_spec({**base, "backend": "scipy"})
    for r in (r_m, r_s):
        np.testing.assert_allclose(r["covariance"]["matrix"], cov, rtol=1e-3)
        assert r["minos"]["a"]["errp"] == pytest.approx(1.0, rel=1e-4)
        assert r["minos"]["b"]["errn"] == pytest.approx(2.0, rel=1e-4)
    assert r_m["backend"] == "minuit" and r_s["backend"] == "scipy"


def test_fit_counting_and_histogram_poisson():
    res, _ = run_fit_spec(
        {
            "kind": "counting",
            "parameters": {"mu": {"value": 1.0, "lower": -1, "upper": 10}},
            "counting": {"observed": 17, "expected": "5*mu + 10"},
            "tol": 1e-6,
        }
    )
    assert res["best_fit"]["mu"] == pytest.approx(1.4, abs=1e-5)
    # Poisson: d2(-2 ln L)/dmu2 = 2 n s^2 / lam^2 at lam = n -> sigma = sqrt(n) / s
    assert res["errors"]["mu"] == pytest.approx(math.sqrt(17) / 5, rel=1e-3)
    hist, _ = run_fit_spec(
        {
            "kind": "histogram",
            "parameters": {"mu": 1.0},
            "histogram": {"observed": [60, 25], "signal": [50, 20], "background": [10, 5]},
        }
    )
    assert hist["best_fit"]["mu"] == pytest.approx(1.0, abs=1e-5)  # saturated: lam = n


def test_limits_alias_equals_compute_limits(tmp_path):
    spec = {"kind": "counting", "counting": {"signal": 5.0, "background": 10.0, "observed": 12}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["compute-limits", str(path), "-o", str(a)]) == 0
    assert main(["limits", str(path), "-o", str(b)]) == 0
    assert json.loads(a.read_text()) == json.loads(b.read_text())
    assert json.loads(a.read_text())["observed"] > 0


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        (  # both constraints cannot hold
            {
                "constraints": [
                    {"name": "lo", "coefficients": {"a": 1, "b": 1}, "lower": 3},
                    {"name": "hi", "coefficients": {"a": 1, "b": 1}, "upper": 1},
                ]
            },
            "constraints.",
            InputError,
        ),
        (
            {"constraints": [{"coefficients": {"a": 1}, "lower": 2, "upper": 1}]},
            "constraints[0]",
            InputError,
        ),
        (
            {"constraints": [{"coefficients": {"z": 1}, "upper": 1}]},
            "constraints[0].coefficients.z",
            InputError,
        ),
        (
            {"constraints": [{"expression": "__import__('os')", "upper": 1}]},
            "constraints[0].expression",
            ExpressionError,
        ),
        ({"kind": "poisson"}, "kind", InputError),
        ({"colour": "red"}, "colour", InputError),
        ({"parameters": {"a": {"value": 5, "upper": 1}}}, "parameters.a", InputError),
        (
            {"gaussian": {"mean": [1.0, 2.0], "covariance": [[1.0, 2.0], [2.0, 1.0]]}},
            "gaussian.covariance",
            InputError,
        ),
        ({"contours": [["a", "a"]]}, "contours", InputError),
        ({"gaussian": {"fisher": {"file": "missing.json"}}}, "gaussian.fisher.file", InputError),
        (
            {"gaussian": {"fisher": {"file": "missing.json", "others": "marginal"}}},
            "gaussian.fisher.others",
            InputError,
        ),
    ],
)
def test_fit_bad_inputs_name_file_and_field_and_write_nothing(tmp_path, change, field, error):
    spec = _gauss()
    spec.update(change)
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "out.json"
    with pytest.raises(error) as info:
        from eftflow.cli.cmd_fit import run_fit

        run_fit(type("A", (), {"spec": str(path), "output": str(out), "plot": str(tmp_path / "p")}))
    assert info.value.file == str(path)
    assert info.value.field is not None and info.value.field.startswith(field)
    assert isinstance(info.value, EftflowError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.json"]
    assert main(["fit", str(path), "-o", str(out)]) == 2  # one-line error, exit status 2
    assert not out.exists()
