"""Closure tests of the fit front end: textbook fits with known answers, both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from eftflow.inference.fit import Fit, Parameter, Parameters, up

BACKENDS = ["minuit", "scipy"]

# a correlated 2-parameter Gaussian chi2 with known covariance V
V = np.array([[0.25, 0.3], [0.3, 4.0]])
VINV = np.linalg.inv(V)
MU = np.array([1.0, -2.0])


def chi2_corr(p):
    r = np.asarray(p[:2]) - MU
    return float(r @ VINV @ r)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_gaussian_linear_regression_matches_analytic(backend):
    # straight-line chi2 fit with known errors: covariance = (A^T W A)^-1 exactly
    x = np.linspace(0.0, 4.0, 9)
    sig = 0.2 + 0.05 * x
    rng = np.random.default_rng(1)
    y = 0.5 + 1.5 * x + sig * rng.standard_normal(x.size)
    a = np.stack([np.ones_like(x), x], axis=1)
    w = np.diag(1 / sig**2)
    cov_true = np.linalg.inv(a.T @ w @ a)
    best_true = cov_true @ a.T @ w @ y

    def chi2(p):
        return float(np.sum(((y - p[0] - p[1] * x) / sig) ** 2))

    fit = Fit(
        chi2, [Parameter("c", 0.0, scale=0.1), Parameter("m", 1.0, scale=0.1)], backend=backend
    )
    res = fit.run()
    assert res.success
    np.testing.assert_allclose(res.optimize.values, best_true, atol=1e-5)
    np.testing.assert_allclose(res.covariance.matrix, cov_true, rtol=1e-4)
    # MINOS = Hessian for a quadratic objective
    for name, i in (("c", 0), ("m", 1)):
        ci = fit.confidence(name)
        assert ci.errn == pytest.approx(math.sqrt(cov_true[i, i]), rel=1e-4)
        assert ci.errp == pytest.approx(math.sqrt(cov_true[i, i]), rel=1e-4)
        ci2 = fit.confidence(name, sigma=2)
        assert ci2.errp == pytest.approx(2 * math.sqrt(cov_true[i, i]), rel=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_correlated_minos_and_contour(backend):
    fit = Fit(chi2_corr, Parameters({"a": 0.0, "b": 0.0}), backend=backend)
    res = fit.run()
    np.testing.assert_allclose(res.covariance.matrix, V, rtol=1e-4)
    ci = fit.confidence("b", cl=0.95)
    assert ci.errp == pytest.approx(1.959964 * 2.0, rel=1e-4)
    c = fit.minos_contour("a", "b", numpoints=12)
    target = up(sigma=1, n_params=2)
    assert c.up == pytest.approx(target)
    # each contour point lies on chi2 - min = UP (2 params: nothing else to profile)
    for xa, yb in zip(c.x, c.y):
        assert chi2_corr([xa, yb]) == pytest.approx(target, rel=2e-3)
    # no point beyond the region's projection on a, sqrt(UP * V_aa)
    extent = math.sqrt(target * V[0, 0])
    assert 0.8 * extent < c.x.max() - MU[0] <= extent * (1 + 1e-3)


def test_fit_contour_profiles_third_parameter():
    # with a third, correlated parameter the contour must profile it (scipy path)
    cov = np.array([[1.0, 0.2, 0.5], [0.2, 1.0, -0.3], [0.5, -0.3, 2.0]])
    inv = np.linalg.inv(cov)

    def f(p):
        r = np.asarray(p)
        return float(r @ inv @ r)

    fit = Fit(f, Parameters({"x": 0.1, "y": -0.1, "z": 0.2}), backend="scipy")
    fit.optimize()
    c = fit.minos_contour("x", "y", numpoints=8, sigma=1)
    sub_inv = np.linalg.inv(cov[:2, :2])  # profiled chi2 in (x, y)
    for xv, yv in zip(c.x, c.y):
        r = np.array([xv, yv])
        assert r @ sub_inv @ r == pytest.approx(c.up, rel=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_poisson_asymmetric_minos_vs_brentq(backend):
    n = 3.0

    def nll2(p):  # -2 ln L of a Poisson count, up to a constant
        lam = p[0]
        return 2.0 * (lam - n * math.log(lam))

    fit = Fit(nll2, [Parameter("lam", 2.0, scale=0.5, lower=1e-6)], kind="-2lnL", backend=backend)
    fit.optimize()
    ci = fit.confidence("lam")
    fmin = nll2([n])
    lo = brentq(lambda x: nll2([x]) - fmin - 1.0, 1e-3, n)
    hi = brentq(lambda x: nll2([x]) - fmin - 1.0, n, 20.0)
    assert ci.value == pytest.approx(n, rel=1e-3)
    assert ci.value - ci.errn == pytest.approx(lo, rel=1e-4)
    assert ci.value + ci.errp == pytest.approx(hi, rel=1e-4)
    assert ci.errp > ci.errn  # asymmetric


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_rosenbrock(backend):
    def rosen(p):
        return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2

    fit = Fit(rosen, Parameters({"x": -1.2, "y": 1.0}), backend=backend)
    opt = fit.optimize()
    np.testing.assert_allclose(opt.values, [1.0, 1.0], atol=2e-3)


def test_fit_backends_agree_and_nll_kind():
    rng = np.random.default_rng(7)
    data = rng.normal(3.0, 2.0, size=200)

    def nll(p):  # -ln L of a Gaussian with unknown mean and width
        m, s = p
        return float(np.sum(0.5 * ((data - m) / s) ** 2 + np.log(s)))

    out = {}
    for backend in BACKENDS:
        fit = Fit(
            nll, [Parameter("m", 2.0), Parameter("s", 1.5, lower=0.1)], kind="nll", backend=backend
        )
        out[backend] = (fit.run(), fit.confidence("s"))
    (ra, ca), (rb, cb) = out["minuit"], out["scipy"]
    np.testing.assert_allclose(ra.optimize.values, rb.optimize.values, rtol=1e-5)
    np.testing.assert_allclose(ra.covariance.matrix, rb.covariance.matrix, rtol=2e-3, atol=1e-5)
    assert ca.errn == pytest.approx(cb.errn, rel=1e-3)
    assert ca.errp == pytest.approx(cb.errp, rel=1e-3)
    # the mean's error is s / sqrt(N) with UP = 0.5 for -ln L
    assert ra.covariance.errors["m"] == pytest.approx(data.std() / math.sqrt(data.size), rel=1e-3)


def test_fit_fixed_parameter_and_profiles():
    def f(p):
        return (p[0] - 1) ** 2 + (p[1] - p[2]) ** 2 / 0.25

    pars = [Parameter("a", 0.0), Parameter("b", 0.0), Parameter("c", 0.7, fixed=True)]
    fit = Fit(f, pars)
    res = fit.run()
    assert res.optimize.parameters["c"] == 0.7
    assert res.optimize.parameters["b"] == pytest.approx(0.7, abs=1e-5)
    assert res.covariance.names == ["a", "b"]
    sl = fit.likelihood_profile("a", nvalues=5, bounds=2)
    np.testing.assert_allclose(sl.delta, (sl.values - 1) ** 2, atol=1e-8)
    pr = fit.minos_profile("b", values=[0.2, 0.7, 1.2])
    np.testing.assert_allclose(pr.delta, [1.0, 0.0, 1.0], atol=1e-6)
    assert "profile" in pr.summary() and "b" in res.summary()


def test_fit_parameter_at_bound_is_treated_as_fixed():
    fit = Fit(
        lambda p: (p[0] + 1.0) ** 2 + (p[1] - 2.0) ** 2,
        [Parameter("a", 0.5, lower=0.0), Parameter("b", 0.0)],
        backend="scipy",
    )
    res = fit.run()
    assert res.optimize.parameters["a"] == pytest.approx(0.0, abs=1e-8)
    assert res.covariance.at_bound == ["a"]
    assert res.covariance.errors["a"] == 0.0
    assert res.covariance.errors["b"] == pytest.approx(1.0, rel=1e-4)


def test_fit_correlated_parameter_near_its_bound_on_minuit_is_at_the_bound():
    # Migrad stops ~1e-7 inside a bound; the bound still holds the parameter: a = 0.5 ± 0, and
    # b is the conditional Gaussian at a = 0.5: mean −2 + 0.6/0.25·(0.5 − 1) = −3.2, σ² = 4 − 0.36/0.25
    mu = np.array([1.0, -2.0])
    ci = np.linalg.inv([[0.25, 0.6], [0.6, 4.0]])
    fit = Fit(
        lambda p: float((np.asarray(p) - mu) @ ci @ (np.asarray(p) - mu)),
        [Parameter("a", 0.0, upper=0.5), Parameter("b", 0.0)],
        kind="chi2",
    )
    res = fit.run()
    assert res.covariance.at_bound == ["a"]
    assert res.covariance.errors["a"] == 0.0
    assert res.optimize.parameters["b"] == pytest.approx(-3.2, abs=1e-2)
    assert res.covariance.errors["b"] == pytest.approx(1.6, rel=1e-4)


def test_fit_interior_minimum_close_to_a_bound_is_not_at_the_bound():
    # the minimum lies 1e-5 inside the bound: a free parameter with its full error
    fit = Fit(
        lambda p: (p[0] - (1.0 - 1e-5)) ** 2 / 0.04 + p[1] ** 2,
        [Parameter("a", 0.0, upper=1.0, scale=0.2), Parameter("b", 0.3)],
        kind="chi2",
        backend="scipy",
    )
    res = fit.run()
    assert res.covariance.at_bound == []
    assert res.covariance.errors["a"] == pytest.approx(0.2, rel=1e-3)
