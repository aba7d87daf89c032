"""Analytic gradients in the Fit front end: same answers as finite differences, fewer calls."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.inference.fit import Fit, Parameter

BACKENDS = ["minuit", "scipy"]

# a Poisson NLL of an exponential spectrum with a free normalisation, a slope and an offset:
# λ_i = n exp(-s x_i) + b, smooth and not quadratic
X = np.linspace(0.0, 3.0, 12)
COUNTS = np.array([105, 80, 66, 52, 41, 35, 29, 24, 20, 18, 15, 13], float)


def _lam(p):
    return p[0] * np.exp(-p[1] * X) + p[2]


def nll(p):
    lam = _lam(p)
    return float(np.sum(lam - COUNTS * np.log(lam)))


def nll_grad(p):
    lam = _lam(p)
    w = 1.0 - COUNTS / lam
    e = np.exp(-p[1] * X)
    return np.array([np.sum(w * e), np.sum(w * (-p[0] * X * e)), np.sum(w)])


def nll_hess(p):
    lam = _lam(p)
    e = np.exp(-p[1] * X)
    d = np.stack([e, -p[0] * X * e, np.ones_like(X)])  # dλ/dp (3, n)
    d2 = np.zeros((3, 3, X.size))  # d²λ/dp²
    d2[0, 1] = d2[1, 0] = -X * e
    d2[1, 1] = p[0] * X**2 * e
    w = 1.0 - COUNTS / lam
    return np.einsum("in,jn,n->ij", d, d, COUNTS / lam**2) + np.einsum("ijn,n->ij", d2, w)


def _pars(fix_b=False):
    return [
        Parameter("n", 90.0, scale=5.0, lower=1.0, upper=1000.0),
        Parameter("s", 0.5, scale=0.05, lower=0.0, upper=5.0),
        Parameter("b", 5.0, scale=1.0, lower=0.0, upper=100.0, fixed=fix_b),
    ]


def test_fit_grad_is_the_derivative():
    p = np.array([95.0, 0.7, 8.0])
    h = 1e-5
    fd = np.array([(nll(p + h * e) - nll(p - h * e)) / (2 * h) for e in np.eye(3)])
    np.testing.assert_allclose(nll_grad(p), fd, rtol=1e-6)


@pytest.mark.parametrize(
    ("backend", "hessian"), [("minuit", None), ("minuit", True), ("scipy", None)]
)
@pytest.mark.parametrize("fix_b", [False, True])
def test_fit_grad_agrees_with_finite_differences(backend, hessian, fix_b):
    plain = Fit(nll, _pars(fix_b), kind="nll", backend=backend, tol=1e-6)
    withg = Fit(
        nll, _pars(fix_b), kind="nll", backend=backend, tol=1e-6, grad=nll_grad, hessian=hessian
    )
    r0, r1 = plain.run(), withg.run()
    assert r0.success and r1.success
    free = ["n", "s"] if fix_b else ["n", "s", "b"]
    e0, e1 = r0.covariance.errors, r1.covariance.errors
    assert sorted(e1) == sorted(free)
    # the exact errors from the analytic Hessian at the optimum
    k = len(free)
    exact = np.sqrt(np.diag(np.linalg.inv(nll_hess(r1.optimize.values)[:k, :k])))
    for name, ex in zip(free, exact):
        # best fits agree to 1e-4 of the error
        assert abs(r1.optimize.parameters[name] - r0.optimize.parameters[name]) <= 1e-4 * e0[name]
        # Minuit's Hesse (second differences of the function) is good to ~1e-4; the Hessian
        # from differences of the exact gradient is exact
        assert e0[name] == pytest.approx(ex, rel=1e-4)
        assert e1[name] == pytest.approx(ex, rel=1e-6 if hessian else 1e-4)
        assert e1[name] == pytest.approx(e0[name], rel=1e-4)
    if fix_b:
        assert r1.optimize.parameters["b"] == 5.0
    # the gradient replaced the finite differences: fewer function calls, and some gradients
    assert r1.optimize.ngrad > 0 and r0.optimize.ngrad == 0
    assert r1.optimize.nfev < r0.optimize.nfev
    # MINOS (which reuses the Minuit object or refits with the gradient) is valid and agrees
    # with the profile-likelihood root found by a tight fit
    c0, c1 = plain.confidence("s"), withg.confidence("s")
    ref = _reference_interval(fix_b)
    assert c1.success
    assert (c1.errn, c1.errp) == pytest.approx(ref, rel=1e-4)
    if c0.success:  # Minuit's MINOS without the gradient is not always valid here
        assert (c0.errn, c0.errp) == pytest.approx(ref, rel=1e-4)


@functools.cache
def _reference_interval(fix_b):
    fit = Fit(nll, _pars(fix_b), kind="nll", backend="scipy", tol=1e-10, grad=nll_grad)
    fit.run()
    ci = fit.confidence("s")
    return ci.errn, ci.errp


def test_fit_hessian_from_the_gradient_is_exact_on_a_quadratic():
    """On a quadratic the differences of the gradient give the exact covariance (Minuit)."""
    v = np.array([[0.25, 0.3], [0.3, 4.0]])
    vinv = np.linalg.inv(v)
    mu = np.array([1.0, -2.0])

    def chi2(p):
        r = np.asarray(p) - mu
        return float(r @ vinv @ r)

    fit = Fit(
        chi2,
        [Parameter("a", 0.0), Parameter("b", 0.0)],
        grad=lambda p: 2 * vinv @ (np.asarray(p) - mu),
        hessian=True,
    )
    res = fit.run()
    np.testing.assert_allclose(res.covariance.matrix, v, rtol=1e-9)
    # Migrad's seed and Hesse used gradients only: a handful of function calls
    assert res.optimize.nfev < 10 and fit.ngrad > 0


def test_fit_grad_numeric_covariance_uses_the_gradient():
    """The numeric covariance differentiates the gradient (2n gradient calls, no n² grid)."""
    plain = Fit(nll, _pars(), kind="nll", backend="scipy", tol=1e-8)
    withg = Fit(nll, _pars(), kind="nll", backend="scipy", tol=1e-8, grad=nll_grad)
    plain.optimize()
    withg.optimize()
    n0 = withg.ngrad
    c0, c1 = plain.covariance(method="numeric"), withg.covariance(method="numeric")
    assert withg.ngrad - n0 == 6
    np.testing.assert_allclose(c1.matrix, c0.matrix, rtol=1e-4)


def test_fit_grad_bad_inputs():
    with pytest.raises(InputError, match="grad: the gradient must be callable"):
        Fit(nll, _pars(), grad=3.0)
    bad = Fit(nll, _pars(), kind="nll", grad=lambda p: np.zeros(2))
    with pytest.raises(InputError, match=r"grad: the gradient returned shape \(2,\)"):
        bad.optimize()
    with pytest.raises(InputError, match="hessian: hessian=True .* needs grad"):
        Fit(nll, _pars(), hessian=True)
    bad = Fit(nll, _pars(), kind="nll", grad=nll_grad, hessian=lambda p: np.eye(2))
    with pytest.raises(InputError, match=r"hessian: the Hessian returned shape \(2, 2\)"):
        bad.optimize()
    with pytest.raises(InputError, match="has no analytic gradient"):
        Fit(nll, _pars()).total_grad([1.0, 1.0, 1.0])
