"""Minimiser backends behind one interface: iminuit (Migrad/Hesse/Minos) and SciPy.

A backend minimises a function of the *free* parameters only. Add a backend by writing a class
with ``name`` and ``minimize(...)`` and registering it in :data:`BACKENDS`.

* ``minuit``: :class:`iminuit.Minuit` with ``errordef``, steps, limits; no general constraints.
  Its Minuit object is kept so that Hesse, Minos and ``mncontour`` can run on it. An analytic
  gradient goes to ``Minuit(..., grad=...)`` (Migrad, and the MINOS / contour minimisations
  that reuse the object); an analytic Hessian to ``hessian=`` (Migrad's seed and Hesse).
* ``scipy``: :func:`scipy.optimize.minimize` in scaled coordinates ``u = (x - x0) / scale``;
  L-BFGS-B without constraints, SLSQP (default) or ``trust-constr`` with them; gradients by
  central differences, or the analytic gradient as ``jac`` (``∂f/∂u = scale · ∂f/∂x``).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "FreeConstraint",
    "MinimizeOutcome",
    "Backend",
    "MinuitBackend",
    "ScipyBackend",
    "BACKENDS",
    "get_backend",
]

log = logging.getLogger(__name__)


@dataclass
class FreeConstraint:
    """A constraint ``lower <= fun(x_free) <= upper`` on the free-parameter vector."""

    fun: Callable[[np.ndarray], float]
    lower: float
    upper: float
    jac: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class MinimizeOutcome:
    """What a backend returns (free-parameter vector)."""

    x: np.ndarray
    fval: float
    success: bool
    message: str
    nfev: int
    backend: str
    native: Any = field(default=None, repr=False)
    ngrad: int = 0


class Backend(Protocol):
    """A minimiser."""

    name: str

    def minimize(
        self,
        fun: Callable[[np.ndarray], float],
        x0: np.ndarray,
        *,
        names: Sequence[str],
        bounds: Sequence[tuple[float, float]],
        scales: np.ndarray,
        errordef: float,
        constraints: Sequence[FreeConstraint] = (),
        tol: float | None = None,
        options: dict | None = None,
        grad: Callable[[np.ndarray], np.ndarray] | None = None,
        hessian: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> MinimizeOutcome:
        """Minimise ``fun`` of the free parameters; ``grad`` / ``hessian`` (optional) are its
        gradient and Hessian (a backend may ignore the Hessian)."""
        ...


class MinuitBackend:
    """iminuit's Migrad. ``options``: ``strategy`` (default 1), ``ncall``."""

    name = "minuit"

    def minimize(
        self,
        fun,
        x0,
        *,
        names,
        bounds,
        scales,
        errordef,
        constraints=(),
        tol=None,
        options=None,
        grad=None,
        hessian=None,
    ):
        from iminuit import Minuit

        if constraints:
            raise InputError(
                "the minuit backend cannot handle linear or nonlinear constraints; "
                "use backend='scipy'",
                field="backend",
            )
        opts = dict(options or {})
        with warnings.catch_warnings():
            # iminuit warns that g2 has no effect next to a Hessian, but Migrad's seed calls it
            # when the Hessian is not positive definite (and fails without one)
            warnings.filterwarnings("ignore", "hessian overrides g2")
            m = Minuit(
                fun,
                np.asarray(x0, dtype=float),
                name=list(names),
                grad=grad if grad is not None else False,
                hessian=hessian if hessian is not None else False,
                g2=(lambda x: np.diag(hessian(x))) if hessian is not None else False,
            )
        m.errordef = errordef
        m.errors = np.asarray(scales, dtype=float)
        m.limits = [(lo, hi) for lo, hi in bounds]
        m.strategy = int(opts.pop("strategy", 1))
        m.tol = 0.01 if tol is None else float(tol)
        ncall = opts.pop("ncall", None)
        if opts:
            raise InputError(f"unknown minuit options: {', '.join(sorted(opts))}", field="options")
        m.migrad(ncall=ncall)
        fmin = m.fmin
        msg = "valid minimum" if m.valid else "invalid minimum: " + _minuit_reasons(fmin)
        return MinimizeOutcome(
            x=np.array(m.values, dtype=float),
            fval=float(m.fval),
            success=bool(m.valid),
            message=msg,
            nfev=int(m.nfcn),
            backend=self.name,
            native=m,
            ngrad=int(m.ngrad),
        )


def _minuit_reasons(fmin) -> str:
    """Why Migrad's minimum is not valid, in words (iminuit's ``FMin`` flags)."""
    reasons = []
    if fmin.has_reached_call_limit:
        reasons.append("call limit reached")
    if fmin.is_above_max_edm:
        reasons.append(f"EDM {fmin.edm:.3g} above the goal {fmin.edm_goal:.3g}")
    if fmin.hesse_failed:
        reasons.append("Hesse failed")
    elif not fmin.has_posdef_covar:
        reasons.append("covariance not positive definite (a flat direction?)")
    if fmin.has_made_posdef_covar:
        reasons.append("covariance forced positive definite")
    return "; ".join(reasons) or "Migrad did not converge"


class ScipyBackend:
    """SciPy minimisers. ``options``: ``method`` plus the method's own options."""

    name = "scipy"

    def minimize(
        self,
        fun,
        x0,
        *,
        names,
        bounds,
        scales,
        errordef,
        constraints=(),
        tol=None,
        options=None,
        grad=None,
        hessian=None,  # noqa: ARG002 - the SciPy methods used here take no Hessian
    ):
        from scipy.optimize import minimize

        opts = dict(options or {})
        x0 = np.asarray(x0, dtype=float)
        s = np.asarray(scales, dtype=float)

        def to_x(u):
            return x0 + s * u

        ub = [
            (
                None if math.isinf(lo) else (lo - x0[i]) / s[i],
                None if math.isinf(hi) else (hi - x0[i]) / s[i],
            )
            for i, (lo, hi) in enumerate(bounds)
        ]
        has_bounds = any(b != (None, None) for b in ub)
        method = opts.pop("method", "SLSQP" if constraints else "L-BFGS-B")
        nfev = 0

        def fu(u):
            nfev_box[0] += 1
            return fun(to_x(u))

        nfev_box = [0]
        ngrad_box = [0]
        kwargs: dict[str, Any] = {"jac": "3-point"}
        if grad is not None:

            def ju(u):
                ngrad_box[0] += 1
                return np.asarray(grad(to_x(u)), dtype=float) * s

            kwargs["jac"] = ju
        if method == "L-BFGS-B":
            kwargs["options"] = {"ftol": 1e-15, "gtol": 1e-9, "maxiter": 10000, "maxls": 50}
        elif method == "SLSQP":
            kwargs["options"] = {"ftol": 1e-13, "maxiter": 2000}
        elif method == "trust-constr":
            kwargs["options"] = {"gtol": 1e-10, "xtol": 1e-12, "maxiter": 5000}
        elif method == "Nelder-Mead":
            kwargs = {"options": {"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}}
        kwargs.setdefault("options", {}).update(opts)
        if tol is not None:
            kwargs["tol"] = float(tol)
        if has_bounds:
            if method == "trust-constr":
                from scipy.optimize import Bounds

                lo = [-np.inf if b[0] is None else b[0] for b in ub]
                hi = [np.inf if b[1] is None else b[1] for b in ub]
                kwargs["bounds"] = Bounds(lo, hi)
            else:
                kwargs["bounds"] = ub
        if constraints:
            kwargs["constraints"] = _scipy_constraints(constraints, to_x, s, method)
        res = minimize(fu, np.zeros_like(x0), method=method, **kwargs)
        nfev = nfev_box[0]
        x = to_x(res.x)
        lo = np.array([b[0] for b in bounds])
        hi = np.array([b[1] for b in bounds])
        x = np.clip(x, lo, hi)
        fval = float(fun(x))
        success = bool(res.success)
        message = str(res.message)
        if not success and method == "L-BFGS-B" and "ABNORMAL" in message.upper():
            # line search failed at the precision limit: accept if a restart does not improve
            res2 = minimize(fu, res.x, method=method, **kwargs)
            x2 = np.clip(to_x(res2.x), lo, hi)
            f2 = float(fun(x2))
            nfev = nfev_box[0]
            if f2 >= fval - 1e-9 * max(1.0, abs(fval)) * errordef:
                success = math.isfinite(fval)
                message = f"converged to the precision limit ({message})"
            else:
                x, fval, success, message = x2, f2, bool(res2.success), str(res2.message)
        elif not success and method == "SLSQP" and getattr(res, "status", None) == 8:
            # "positive directional derivative in the line search": SLSQP started at (or reached)
            # the optimum to round-off; accept when a restart from there does not improve
            res2 = minimize(fu, res.x, method=method, **kwargs)
            x2 = np.clip(to_x(res2.x), lo, hi)
            f2 = float(fun(x2))
            nfev = nfev_box[0]
            if f2 >= fval - 1e-9 * max(1.0, abs(fval)) * errordef:
                success = math.isfinite(fval)
                message = f"converged to the precision limit ({message})"
            elif res2.success:
                x, fval, success, message = x2, f2, True, str(res2.message)
        return MinimizeOutcome(
            x=x,
            fval=fval,
            success=success,
            message=message,
            nfev=nfev,
            backend=self.name,
            ngrad=ngrad_box[0],
        )


def _scipy_constraints(constraints, to_x, s, method):
    out = []
    for c in constraints:

        def cu(u, c=c):
            return c.fun(to_x(u))

        jac = None
        if c.jac is not None:

            def jac(u, c=c):
                return np.asarray(c.jac(to_x(u))) * s

        if method == "trust-constr":
            from scipy.optimize import NonlinearConstraint as SNC

            out.append(SNC(cu, c.lower, c.upper, jac=jac if jac is not None else "3-point"))
            continue
        if c.lower == c.upper:
            d = {"type": "eq", "fun": lambda u, cu=cu, v=c.lower: cu(u) - v}
            if jac is not None:
                d["jac"] = jac
            out.append(d)
            continue
        if not math.isinf(c.lower):
            d = {"type": "ineq", "fun": lambda u, cu=cu, v=c.lower: cu(u) - v}
            if jac is not None:
                d["jac"] = jac
            out.append(d)
        if not math.isinf(c.upper):
            d = {"type": "ineq", "fun": lambda u, cu=cu, v=c.upper: v - cu(u)}
            if jac is not None:
                d["jac"] = lambda u, jac=jac: -jac(u)
            out.append(d)
    return out


#: registered backends by name
BACKENDS: dict[str, type] = {"minuit": MinuitBackend, "scipy": ScipyBackend}


def get_backend(name: str) -> Backend:
    """Instantiate a backend by name (:class:`InputError` listing the known ones)."""
    try:
        return BACKENDS[name]()
    except KeyError:
        raise InputError(
            f"unknown fit backend {name!r}; known: {', '.join(BACKENDS)}", field="backend"
        ) from None
