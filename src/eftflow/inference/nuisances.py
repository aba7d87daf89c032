"""Removing nuisance parameters: profiling (maximise) or marginalising (integrate).

For a main log-likelihood ``loglik(theta, nu)`` and Gaussian constraints
:class:`~eftflow.inference.asimov.GaussianNuisances` with auxiliary values ``aux``:

* profile: ``ln L_p(theta) = max_nu [loglik(theta, nu) + ln N(aux | nu, C)]`` (L-BFGS-B, analytic
  gradient when given, warm starts),
* marginalise: ``ln L_m(theta) = ln  integral exp(loglik(theta, nu)) N(nu | aux, C) dnu``,
  by a tensor-product Gauss-Hermite rule (up to ``max_gh_dim`` nuisances, ``order`` nodes each) or
  by Monte Carlo with a fixed, seeded sample (so that ``L_m`` is a smooth function of theta).

Example
-------
>>> import numpy as np
>>> from eftflow.inference.asimov import GaussianNuisances
>>> nus = GaussianNuisances(["s"], sigma=[0.5])
>>> ll = lambda theta, nu: -0.5 * (1.0 - theta[0] - nu[0]) ** 2
>>> lp, nu_hat = profile_nuisances(ll, np.array([0.0]), nus, np.zeros(1))
>>> round(lp, 6)  # -0.5 * 1 / (1 + 0.25)
-0.4
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from eftflow.errors import InputError

__all__ = ["profile_nuisances", "Marginaliser"]


def profile_nuisances(
    loglik: Callable[[np.ndarray, np.ndarray], float],
    theta: np.ndarray,
    nuisances,
    aux: np.ndarray,
    *,
    start: np.ndarray | None = None,
    grad_nu: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    hess_nu: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Profiled log-likelihood at ``theta`` and the conditional estimate of ``nu``.

    With ``grad_nu`` and ``hess_nu`` (derivatives of ``loglik`` in ``nu``) a damped Newton
    iteration is used (fast, exact to round-off); otherwise L-BFGS-B.
    """
    from scipy.optimize import minimize

    n = len(nuisances)
    aux = np.asarray(aux, dtype=float)
    if n == 0:
        return float(loglik(theta, np.zeros(0))), np.zeros(0)
    x0 = aux.copy() if start is None else np.asarray(start, dtype=float).copy()
    if grad_nu is not None and hess_nu is not None:
        out = _newton(loglik, grad_nu, hess_nu, theta, nuisances, aux, x0)
        if out is not None:
            return out

    def f(nu):
        v = loglik(theta, nu) + nuisances.logpdf(nu, aux)
        return -v if math.isfinite(v) else 1e300

    jac: Callable | str = "3-point"
    if grad_nu is not None:

        def jac(nu):
            return -(np.asarray(grad_nu(theta, nu)) + nuisances.grad_logpdf(nu, aux))

    res = minimize(
        f,
        x0,
        jac=jac,
        method="L-BFGS-B",
        bounds=nuisances.bounds_around(aux),
        options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 500},
    )
    return -float(res.fun), np.asarray(res.x)


def _newton(loglik, grad_nu, hess_nu, theta, nuisances, aux, x0, max_iter: int = 50):
    """Damped Newton maximisation of ``loglik + log N``; ``None`` if it fails (then L-BFGS-B)."""
    lo = np.array([b[0] for b in nuisances.bounds_around(aux)])
    hi = np.array([b[1] for b in nuisances.bounds_around(aux)])
    x = np.clip(x0, lo, hi)

    def val(v):
        r = loglik(theta, v) + nuisances.logpdf(v, aux)
        return r if math.isfinite(r) else -math.inf

    f = val(x)
    if not math.isfinite(f):
        return None
    for _ in range(max_iter):
        g = np.asarray(grad_nu(theta, x)) + nuisances.grad_logpdf(x, aux)
        h = np.asarray(hess_nu(theta, x)) - nuisances.inv
        try:
            step = np.linalg.solve(h, -g)
        except np.linalg.LinAlgError:
            return None
        if float(g @ step) <= 0:  # not an ascent direction (Hessian not negative definite)
            step = g * 1e-3
        t = 1.0
        while t > 1e-10:
            xn = np.clip(x + t * step, lo, hi)
            fn = val(xn)
            if fn >= f - 1e-14 * max(1.0, abs(f)):
                break
            t *= 0.5
        else:
            return None
        done = abs(fn - f) <= 1e-13 * max(1.0, abs(f)) and np.all(np.abs(xn - x) < 1e-10)
        x, f = xn, fn
        if done or np.max(np.abs(g)) < 1e-10:
            return f, x
    return f, x


class Marginaliser:
    """Integrate ``exp(loglik)`` over a Gaussian prior of the nuisances.

    Parameters
    ----------
    nuisances
        :class:`~eftflow.inference.asimov.GaussianNuisances` (the prior's covariance).
    aux
        Prior means.
    method
        ``"auto"`` (Gauss-Hermite up to ``max_gh_dim`` nuisances, Monte Carlo above),
        ``"gauss-hermite"`` or ``"monte-carlo"``.
    order
        Gauss-Hermite nodes per nuisance.
    n_samples, seed
        Monte Carlo sample size and seed (``numpy.random.default_rng(seed)``).
    """

    def __init__(
        self,
        nuisances,
        aux: np.ndarray,
        *,
        method: str = "auto",
        order: int = 12,
        max_gh_dim: int = 3,
        n_samples: int = 2000,
        seed: int = 0,
    ):
        n = len(nuisances)
        aux = np.asarray(aux, dtype=float)
        if method == "auto":
            method = "gauss-hermite" if n <= max_gh_dim else "monte-carlo"
        if method == "gauss-hermite":
            if order < 1:
                raise InputError("order must be >= 1", field="order")
            x, w = np.polynomial.hermite.hermgauss(int(order))  # weight exp(-x^2)
            grids = np.meshgrid(*([x] * n), indexing="ij")
            z = (
                np.sqrt(2.0) * np.stack([g.ravel() for g in grids], axis=-1)
                if n
                else np.zeros((1, 0))
            )
            wgrid = np.meshgrid(*([w] * n), indexing="ij")
            logw = (
                np.sum([np.log(g.ravel()) for g in wgrid], axis=0) - 0.5 * n * np.log(np.pi)
                if n
                else np.zeros(1)
            )
        elif method == "monte-carlo":
            rng = np.random.default_rng(seed)
            z = rng.standard_normal((int(n_samples), n))
            logw = np.full(len(z), -np.log(len(z)))
        else:
            raise InputError(
                f"unknown marginalisation method {method!r}; expected auto, gauss-hermite or "
                "monte-carlo",
                field="method",
            )
        self.method = method
        self.nodes = aux + z @ nuisances.chol.T if n else np.zeros((1, 0))
        self.logw = np.asarray(logw, dtype=float)

    def __call__(self, loglik: Callable[[np.ndarray, np.ndarray], float], theta) -> float:
        """``ln integral exp(loglik(theta, nu)) prior(nu) dnu``."""
        from scipy.special import logsumexp

        vals = np.array([loglik(theta, nu) for nu in self.nodes], dtype=float)
        vals = np.where(np.isfinite(vals), vals, -np.inf)
        return float(logsumexp(vals + self.logw))
