"""Constrained fits against Lagrange-multiplier solutions, constrained MINOS and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eftflow.inference.fit import (
    Fit,
    InfeasibleConstraintError,
    LinearConstraint,
    NonlinearConstraint,
    Parameter,
    Parameters,
)

SIG = np.array([1.0, 2.0, 0.5])
MU = np.array([1.0, 2.0, -1.0])


def chi2(p):
    return float(np.sum(((np.asarray(p) - MU) / SIG) ** 2))


def test_fit_linear_equality_constraint_vs_lagrange():
    # minimise sum((x - mu)/s)^2 subject to a.x = c: x = mu + W^-1 a (c - a.mu) / (a W^-1 a)
    a = np.array([1.0, 1.0, 2.0])
    c = 1.0
    winv = np.diag(SIG**2)
    x_true = MU + winv @ a * (c - a @ MU) / (a @ winv @ a)
    cov_true = winv - np.outer(winv @ a, a @ winv) / (a @ winv @ a)
    fit = Fit(
        chi2,
        Parameters({"x": 0.0, "y": 0.0, "z": 0.0}),
        constraints=[LinearConstraint({"x": 1, "y": 1, "z": 2}, lower=c, upper=c)],
    )
    res = fit.run()
    np.testing.assert_allclose(res.optimize.values, x_true, atol=1e-6)
    assert res.optimize.active_constraints == ["linear"]
    np.testing.assert_allclose(res.covariance.matrix, cov_true, atol=1e-5)
    # MINOS under the constraint equals the constrained Hessian error (quadratic problem)
    ci = fit.confidence("y")
    assert ci.errp == pytest.approx(math.sqrt(cov_true[1, 1]), rel=1e-4)
    assert ci.errn == pytest.approx(math.sqrt(cov_true[1, 1]), rel=1e-4)
    prof = fit.minos_profile("y", values=[x_true[1] + math.sqrt(cov_true[1, 1])])
    assert prof.delta[0] == pytest.approx(1.0, rel=1e-4)


def test_fit_linear_inequality_inactive_and_active():
    # x + y <= 10 is inactive at the unconstrained optimum: same answer as no constraint
    fit = Fit(
        chi2,
        Parameters({"x": 0.0, "y": 0.0, "z": 0.0}),
        constraints=[LinearConstraint({"x": 1, "y": 1}, upper=10.0)],
    )
    res = fit.run()
    np.testing.assert_allclose(res.optimize.values, MU, atol=1e-6)
    assert res.optimize.active_constraints == []
    np.testing.assert_allclose(res.covariance.errors["y"], 2.0, rtol=1e-4)
    # x + y <= 0 is active: answer of the equality problem
    fit2 = Fit(
        chi2,
        Parameters({"x": 0.0, "y": 0.0, "z": 0.0}),
        constraints=[LinearConstraint({"x": 1, "y": 1}, upper=0.0, name="cap")],
    )
    r2 = fit2.optimize()
    a = np.array([1.0, 1.0, 0.0])
    winv = np.diag(SIG**2)
    x_true = MU + winv @ a * (0.0 - a @ MU) / (a @ winv @ a)
    np.testing.assert_allclose(r2.values, x_true, atol=1e-6)
    assert r2.active_constraints == ["cap"]


def test_fit_nonlinear_circle_constraint():
    # nearest point of the unit circle to (2, 1) with isotropic errors: (2, 1) / sqrt(5)
    def f(p):
        return (p[0] - 2.0) ** 2 + (p[1] - 1.0) ** 2

    circle = NonlinearConstraint(
        lambda p: p[0] ** 2 + p[1] ** 2, lower=1.0, upper=1.0, name="circle"
    )
    fit = Fit(f, Parameters({"x": 0.5, "y": 0.5}), constraints=[circle])
    res = fit.run()
    np.testing.assert_allclose(res.optimize.values, np.array([2.0, 1.0]) / math.sqrt(5), atol=1e-6)
    # on the circle one degree of freedom remains: the angle phi with
    # F(phi) = 6 - 2 sqrt(5) cos(phi - phi0), F'' = 2 sqrt(5); var(phi) = 2 UP / F''
    var_phi = 2.0 / (2.0 * math.sqrt(5.0))
    t = np.array([-1.0, 2.0]) / math.sqrt(5)  # tangent at the solution
    np.testing.assert_allclose(res.covariance.matrix, var_phi * np.outer(t, t), atol=1e-5)
    # constrained MINOS of x: solve F(phi) - F_min = 1 on the circle
    phi0 = math.atan2(1.0, 2.0)
    dphi = math.acos(1.0 - 1.0 / (2 * math.sqrt(5.0)))
    assert phi0 - dphi < 0 < phi0 + dphi  # the region reaches phi = 0, i.e. x = 1
    ci = fit.confidence("x")
    assert ci.value - ci.errn == pytest.approx(math.cos(phi0 + dphi), abs=1e-5)
    assert ci.value + ci.errp == pytest.approx(1.0, abs=1e-5)  # the edge of the feasible set


def test_fit_infeasible_constraints_raise():
    cons = [
        LinearConstraint({"x": 1.0}, lower=2.0, name="x_ge_2"),
        LinearConstraint({"x": 1.0}, upper=1.0, name="x_le_1"),
    ]
    fit = Fit(chi2, Parameters({"x": 0.0, "y": 0.0, "z": 0.0}), constraints=cons)
    with pytest.raises(InfeasibleConstraintError, match="cannot be satisfied"):
        fit.optimize()
    with pytest.raises(InfeasibleConstraintError, match="empty"):
        Fit(
            chi2,
            Parameters({"x": 0.0, "y": 0.0, "z": 0.0}),
            constraints=[LinearConstraint({"x": 1.0}, lower=2.0, upper=1.0)],
        )


def test_fit_minuit_backend_rejects_constraints():
    from eftflow.errors import InputError

    fit = Fit(
        chi2,
        [Parameter("x", 0.0), Parameter("y", 0.0), Parameter("z", 0.0)],
        constraints=[LinearConstraint([1, 1, 0], upper=0.0)],
        backend="minuit",
    )
    with pytest.raises(InputError, match="use backend='scipy'"):
        fit.optimize()


def test_fit_minos_interval_ends_at_the_edge_of_the_constrained_region():
    # on the unit circle x <= 1: the upward profile never reaches UP (it stays below 1 up to
    # x = 1, the edge), so the interval ends at the edge and says so
    f = lambda p: (p[0] - 2.0) ** 2 + (p[1] - 1.0) ** 2  # noqa: E731
    circle = NonlinearConstraint(lambda p: p[0] ** 2 + p[1] ** 2, lower=1.0, upper=1.0)
    fit = Fit(f, Parameters({"x": 0.5, "y": 0.5}), constraints=[circle])
    fit.run()
    x0 = 2 / math.sqrt(5)  # the optimum (2, 1)/sqrt(5)
    ci = fit.confidence("x")
    assert ci.value == pytest.approx(x0, abs=1e-6)
    assert ci.at_upper_limit and not ci.at_lower_limit
    assert ci.errp == pytest.approx(1.0 - x0, abs=1e-5)
    assert ci.success
    # below: P(x) = (x - 2)^2 + (sqrt(1 - x^2) - 1)^2 - P(x0) = 1 at the lower end
    p = lambda x: (x - 2) ** 2 + (math.sqrt(1 - x * x) - 1) ** 2  # noqa: E731
    assert p(x0 - ci.errn) - p(x0) == pytest.approx(1.0, abs=1e-6)
