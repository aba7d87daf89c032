"""Correlated error propagation: analytic, Monte Carlo, error budgets, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.inference import uncertainties as gv


def test_uncertainties_higgs_example_matches_analytic():
    m = gv.gvar(125.7, 0.4)
    p = gv.gvar(50.0, 0.15)
    e = (p**2 + m**2) ** 0.5
    e_mean = math.sqrt(50.0**2 + 125.7**2)
    de_dm, de_dp = 125.7 / e_mean, 50.0 / e_mean
    assert e.mean == pytest.approx(e_mean)
    assert e.sdev == pytest.approx(math.hypot(de_dm * 0.4, de_dp * 0.15), rel=1e-12)
    cov = gv.evalcov([m, e])
    np.testing.assert_allclose(cov, [[0.16, de_dm * 0.16], [de_dm * 0.16, e.var]], rtol=1e-12)
    assert gv.evalcorr([m, e])[0, 1] == pytest.approx(0.98905722, abs=1e-8)
    ratio = (e**2 - p**2) / m**2  # exactly 1 with no uncertainty: correlations tracked
    assert ratio.mean == pytest.approx(1.0) and ratio.sdev < 1e-12
    assert str(m) == "125.70(40)" and str(e) == "135.28(38)"


def test_uncertainties_ufuncs_and_correlated_inputs_vs_analytic():
    cov = np.array([[0.04, 0.01], [0.01, 0.09]])
    x, y = gv.gvar([1.0, 2.0], cov)
    funcs = {
        "exp": (lambda a, b: np.exp(a) * b, lambda a, b: np.array([np.exp(a) * b, np.exp(a)])),
        "log": (lambda a, b: np.log(a * b), lambda a, b: np.array([1 / a, 1 / b])),
        "sqrt": (lambda a, b: np.sqrt(a + b), lambda a, b: 0.5 / np.sqrt(a + b) * np.ones(2)),
        "trig": (
            lambda a, b: np.sin(a) * np.cos(b) + np.tan(a / 4),
            lambda a, b: np.array(
                [np.cos(a) * np.cos(b) + 0.25 / np.cos(a / 4) ** 2, -np.sin(a) * np.sin(b)]
            ),
        ),
        "div_pow": (
            lambda a, b: a / b + b**a,
            lambda a, b: np.array([1 / b + b**a * np.log(b), -a / b**2 + a * b ** (a - 1)]),
        ),
        "arctan2": (
            lambda a, b: np.arctan2(a, b),
            lambda a, b: np.array([b, -a]) / (a * a + b * b),
        ),
    }
    for name, (f, grad) in funcs.items():
        out = f(x, y)
        g = grad(1.0, 2.0)
        assert out.mean == pytest.approx(f(1.0, 2.0)), name
        assert out.sdev == pytest.approx(math.sqrt(g @ cov @ g), rel=1e-10), name


def test_uncertainties_linear_propagation_vs_monte_carlo():
    rng = np.random.default_rng(2)
    a, b = gv.gvar([0.5, 1.5], [[0.0025, -0.001], [-0.001, 0.005]])  # mildly non-linear
    f = np.exp(a) / b
    g = a * b
    draws = gv.sample([a, b], 200_000, rng)
    fs = np.exp(draws[:, 0]) / draws[:, 1]
    gs = draws[:, 0] * draws[:, 1]
    assert np.std(fs) == pytest.approx(f.sdev, rel=0.03)
    assert np.corrcoef(fs, gs)[0, 1] == pytest.approx(gv.evalcorr([f, g])[0, 1], abs=0.02)
    boots = [float(np.exp(c[0]) / c[1]) for c in gv.bootstrap_iter([a, b], 2000, rng)]
    assert np.std(boots) == pytest.approx(f.sdev, rel=0.06)


def test_uncertainties_propagate_numerical_jacobian():
    x = gv.gvar([1.0, 2.0, 0.5], [0.1, 0.2, 0.05])

    def f(v):
        return np.array([v[0] * v[1] + np.sin(v[2]), v[1] ** 2])

    num = gv.propagate(f, x)
    exact = np.array([x[0] * x[1] + np.sin(x[2]), x[1] ** 2])
    np.testing.assert_allclose(gv.evalcov(num), gv.evalcov(exact), rtol=1e-7)
    # results stay correlated with their inputs
    np.testing.assert_allclose(gv.evalcov([num[1], x[1]]), gv.evalcov([exact[1], x[1]]), rtol=1e-7)


def test_uncertainties_error_budget_adds_in_quadrature_for_linear_outputs():
    x, y = gv.gvar([0.1, 10.0], [0.125, 2.0])
    z = gv.gvar(3.0, 0.5)
    f = 2 * x + y - 3 * z
    budget = gv.error_budget({"f": f}, {"x": x, "y": y, "z": z})["f"]
    assert budget["x"] == pytest.approx(0.25)
    assert budget["y"] == pytest.approx(2.0)
    assert budget["z"] == pytest.approx(1.5)
    quad = math.sqrt(budget["x"] ** 2 + budget["y"] ** 2 + budget["z"] ** 2)
    assert quad == pytest.approx(budget["total"])
    # gvar's documented example (percent)
    table = gv.fmt_errorbudget({"f/y": (x + y) / y, "f": x + y}, {"y": y, "x": x})
    assert "19.80" in table and "19.84" in table and "1.24" in table and "1.25" in table
    assert gv.partial_sdev(f, x, y) == pytest.approx(math.hypot(0.25, 2.0))


def test_uncertainties_from_fit_result_propagates():
    from eftflow.inference.fit import Fit, Parameters

    v = np.array([[0.25, 0.1], [0.1, 1.0]])
    inv = np.linalg.inv(v)

    def chi2(p):
        r = np.asarray(p) - np.array([1.0, 2.0])
        return float(r @ inv @ r)

    res = Fit(chi2, Parameters({"a": 0.0, "b": 0.0})).run()
    pars = gv.from_fit(res)
    np.testing.assert_allclose(gv.evalcov([pars["a"], pars["b"]]), v, rtol=1e-4)
    s = pars["a"] + pars["b"]
    assert s.sdev == pytest.approx(math.sqrt(0.25 + 1.0 + 0.2), rel=1e-4)


def test_uncertainties_json_roundtrip_keeps_correlations(tmp_path):
    a, b = gv.gvar([1.0, 2.0], [[0.04, 0.03], [0.03, 0.09]])
    c = a * b
    path = tmp_path / "g.json"
    gv.dump({"a": a, "c": c}, path)
    back = gv.load(path)
    np.testing.assert_allclose(gv.evalcov([back["a"], back["c"]]), gv.evalcov([a, c]))
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]
    arr = gv.loads(gv.dumps([a, b]))
    np.testing.assert_allclose(gv.evalcorr(arr), gv.evalcorr([a, b]))


def test_uncertainties_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="sdev"):
        gv.gvar(1.0, -1.0)
    with pytest.raises(InputError, match="positive semi-definite"):
        gv.gvar([1.0, 2.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(InputError, match="shape"):
        gv.gvar([1.0, 2.0], [1.0, 2.0, 3.0])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not an eftflow GVar dump") as err:
        gv.load(bad)
    assert err.value.file == str(bad)
    with pytest.raises(InputError, match="Generator"):
        gv.sample([gv.gvar(1.0, 1.0)], 10, rng=3)
