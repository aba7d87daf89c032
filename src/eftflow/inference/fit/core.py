"""The :class:`Fit` front end (after gammapy's ``Fit``/``MapFit`` and the Gemini guide).

Example
-------
>>> import numpy as np
>>> from eftflow.inference.fit import Fit, Parameter
>>> def chi2(p):
...     return ((p[0] - 1.0) / 0.5) ** 2 + ((p[1] + 2.0) / 2.0) ** 2
>>> fit = Fit(chi2, [Parameter("a", 0.0), Parameter("b", 0.0)], kind="chi2")
>>> res = fit.run()
>>> round(res.covariance.errors["a"], 6), round(res.covariance.errors["b"], 6)
(0.5, 2.0)

With an analytic gradient (``grad(values) -> (P,)`` on the full vector, e.g. by autograd), the
minimisers use it instead of finite differences:

>>> def chi2_grad(p):
...     return np.array([2 * (p[0] - 1.0) / 0.25, 2 * (p[1] + 2.0) / 4.0])
>>> fit = Fit(chi2, [Parameter("a", 0.0), Parameter("b", 0.0)], kind="chi2", grad=chi2_grad)
>>> round(fit.run().covariance.errors["a"], 6)
0.5
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from eftflow.errors import BackendError, InputError

from .backends import FreeConstraint, MinimizeOutcome, get_backend
from .constraints import InfeasibleConstraintError, bind_constraints
from .errordef import errordef_of, up
from .numdiff import hessian, jacobian
from .parameters import Parameter, Parameters
from .result import (
    ConfidenceResult,
    ContourResult,
    CovarianceResult,
    FitResult,
    OptimizeResult,
    ProfileResult,
)

__all__ = ["Fit"]

log = logging.getLogger(__name__)


class Fit:
    """Minimise an objective over named parameters and analyse its errors.

    Parameters
    ----------
    objective
        ``objective(values) -> float`` on the full vector of parameter values (in the order of
        ``parameters``): a chi-squared, ``-2 ln L`` or ``-ln L``.
    parameters
        :class:`Parameters`, a list of :class:`Parameter` or a mapping ``name -> start``.
    kind
        ``"chi2"``, ``"-2lnL"`` (UP = 1 for 1 sigma) or ``"nll"``/``"-lnL"`` (UP = 0.5).
    constraints
        :class:`LinearConstraint` / :class:`NonlinearConstraint` objects.
    backend
        ``"minuit"`` (default without constraints) or ``"scipy"`` (default with constraints).
    tol
        Backend tolerance (Minuit's ``tol``; SciPy's ``tol``), ``None`` for the defaults.
    grad
        Optional analytic gradient ``grad(values) -> array (P,)`` of ``objective`` on the same
        full vector. The fit passes the components of the free parameters to the minimiser
        (Minuit's ``grad``, SciPy's ``jac``, chain rule through its scaled coordinates) in
        place of finite differences; fixed parameters are dropped. ``None``: finite differences.
        The number of gradient calls is counted in :attr:`ngrad`.
    hessian
        Optional Hessian for Minuit (Migrad's seed and Hesse, instead of second differences of
        the objective): a callable ``hessian(values) -> array (P, P)`` on the full vector, or
        ``True`` for central differences of ``grad`` (2 gradient calls per free parameter, steps
        of 1e-3 of each parameter's error estimate). ``None`` (default): Minuit's own.
    """

    def __init__(
        self,
        objective: Callable[[np.ndarray], float],
        parameters: Parameters | Iterable[Parameter] | Mapping[str, float],
        *,
        kind: str = "chi2",
        constraints=None,
        backend: str | None = None,
        tol: float | None = None,
        grad: Callable[[np.ndarray], np.ndarray] | None = None,
        hessian: Callable[[np.ndarray], np.ndarray] | bool | None = None,
    ):
        if not callable(objective):
            raise InputError("the objective must be callable", field="objective")
        if grad is not None and not callable(grad):
            raise InputError("the gradient must be callable or None", field="grad")
        self.objective = objective
        self.grad = grad
        if hessian is True and grad is None:
            raise InputError(
                "hessian=True (differences of the gradient) needs grad", field="hessian"
            )
        if hessian not in (None, True, False) and not callable(hessian):
            raise InputError("the Hessian must be callable, True or None", field="hessian")
        self.hessian = hessian or None
        self.parameters = (
            parameters.copy() if isinstance(parameters, Parameters) else Parameters(parameters)
        )
        self.kind = kind
        self.errordef = errordef_of(kind)
        self.constraints = bind_constraints(constraints, self.parameters.names)
        default = "scipy" if self.constraints else "minuit"
        self.backend_name = backend or default
        get_backend(self.backend_name)  # validate the name now
        self.tol = tol
        self.nfev = 0
        self.ngrad = 0
        self._opt: OptimizeResult | None = None
        self._native = None
        self._cov: CovarianceResult | None = None

    # -- evaluation ---------------------------------------------------------------------------
    def total_stat(self, values: Sequence[float] | Mapping[str, float]) -> float:
        """Objective at the given full vector (or ``{name: value}``, others at current values)."""
        if isinstance(values, Mapping):
            full = self.parameters.values
            for k, v in values.items():
                full[self.parameters.index(k)] = float(v)
        else:
            full = np.asarray(values, dtype=float)
        self.nfev += 1
        return float(self.objective(full))

    def total_grad(self, values: Sequence[float]) -> np.ndarray:
        """The analytic gradient (P,) at the full vector ``values`` (:class:`InputError` when the
        fit has none or it returns the wrong shape)."""
        if self.grad is None:
            raise InputError("this fit has no analytic gradient", field="grad")
        self.ngrad += 1
        full = np.asarray(values, dtype=float)
        g = np.asarray(self.grad(full), dtype=float)
        if g.shape != full.shape:
            raise InputError(
                f"the gradient returned shape {g.shape}, expected {full.shape}", field="grad"
            )
        return g

    def _free_hessian(self, full: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The Hessian block of the free parameters ``idx`` at the full vector ``full``."""
        if self.hessian is True:

            def gk(y):
                v = full.copy()
                v[idx] = y
                return self.total_grad(v)[idx]

            h = jacobian(gk, full[idx], self._steps(full, list(idx)))
        else:
            h = np.asarray(self.hessian(full), dtype=float)
            if h.shape != (full.size, full.size):
                raise InputError(
                    f"the Hessian returned shape {h.shape}, expected {(full.size,) * 2}",
                    field="hessian",
                )
            h = h[np.ix_(idx, idx)]
        return 0.5 * (h + h.T)

    def _problem(self, fix: Mapping[str, float] | None = None, start: np.ndarray | None = None):
        """Free-vector objective with extra parameters ``fix``-ed; returns (fun, embed, idx,
        base, gfun, hfun) with ``gfun``/``hfun`` the gradient / Hessian of the free parameters
        (``None`` without one)."""
        pars = self.parameters
        base = pars.values if start is None else np.array(start, dtype=float)
        free = pars.free_mask.copy()
        for name, val in (fix or {}).items():
            i = pars.index(name)
            base[i] = float(val)
            free[i] = False
        idx = np.flatnonzero(free)

        def embed(x):
            full = base.copy()
            full[idx] = x
            return full

        def fun(x):
            self.nfev += 1
            return float(self.objective(embed(x)))

        gfun = None
        if self.grad is not None:

            def gfun(x):
                return self.total_grad(embed(x))[idx]

        hfun = None
        if self.hessian is not None:

            def hfun(x):
                return self._free_hessian(embed(x), idx)

        return fun, embed, idx, base, gfun, hfun

    def _minimize(
        self, fix: Mapping[str, float] | None = None, start: np.ndarray | None = None, options=None
    ) -> tuple[MinimizeOutcome, np.ndarray]:
        """Minimise over the free parameters minus ``fix``; returns (outcome, full vector)."""
        pars = self.parameters
        fun, embed, idx, base, gfun, hfun = self._problem(fix, start)
        names = [pars.names[i] for i in idx]
        cons = [
            FreeConstraint(
                fun=lambda x, c=c: c.value(embed(x)),
                lower=c.lower,
                upper=c.upper,
                jac=None if not c.linear else (lambda x, c=c: c._coef[idx]),
            )
            for c in self.constraints
        ]
        if idx.size == 0:
            fval = float(self.objective(base))
            ok = all(c.violation(base) <= 1e-8 for c in self.constraints)
            return MinimizeOutcome(base[idx], fval, ok, "nothing free", 1, "none"), base
        x0 = np.clip(base[idx], pars.lower[idx], pars.upper[idx])
        try:
            f0 = fun(x0)
        except (ArithmeticError, ValueError) as err:
            raise InputError(
                f"the objective failed at the starting values ({type(err).__name__}: {err})",
                field="parameters",
            ) from None
        if not math.isfinite(f0):
            raise InputError(
                f"the objective is not finite ({f0}) at the starting values "
                + ", ".join(f"{n}={v:.6g}" for n, v in zip(names, x0)),
                field="parameters",
            )
        backend = get_backend(self.backend_name)
        out = backend.minimize(
            fun,
            x0,
            names=names,
            bounds=list(zip(pars.lower[idx], pars.upper[idx])),
            scales=pars.scales[idx],
            errordef=self.errordef,
            constraints=cons,
            tol=self.tol,
            options=options,
            grad=gfun,
            hessian=hfun,
        )
        full = embed(out.x)
        return out, full

    # -- optimisation ---------------------------------------------------------------------------
    def optimize(self, **options) -> OptimizeResult:
        """Run the minimisation; the parameters are updated to the best fit.

        ``options`` go to the backend (Minuit: ``strategy``, ``ncall``; SciPy: ``method`` and
        the method's options).
        """
        out, full = self._minimize(options=options or None)
        viol = {c.name: c.violation(full) for c in self.constraints}
        bad = {
            k: v for k, v in viol.items() if v > 1e-6 * max(1.0, abs(self.parameters.scales).max())
        }
        if bad:
            raise InfeasibleConstraintError(
                "the constraints cannot be satisfied together (violation "
                + ", ".join(f"{k}: {v:.3g}" for k, v in bad.items())
                + f"; minimiser said: {out.message})",
                field="constraints." + next(iter(bad)),
            )
        if not math.isfinite(out.fval):
            raise BackendError(f"minimisation ended at a non-finite objective ({out.fval})")
        self.parameters.set_values(full)
        self._native = out.native
        self._cov = None
        active = [c.name for c in self.constraints if c.is_active(full, 1e-6)]
        self._opt = OptimizeResult(
            names=self.parameters.names,
            values=full.copy(),
            fixed=[p.fixed for p in self.parameters],
            fval=out.fval,
            success=out.success,
            message=out.message,
            nfev=out.nfev,
            backend=out.backend,
            active_constraints=active,
            ngrad=out.ngrad,
        )
        if not out.success:
            log.warning("fit did not converge: %s", out.message)
        return self._opt

    def run(self, **optimize_options) -> FitResult:
        """:meth:`optimize` then :meth:`covariance`."""
        opt = self.optimize(**optimize_options)
        return FitResult(optimize=opt, covariance=self.covariance())

    def _require_optimum(self) -> OptimizeResult:
        if self._opt is None:
            self.optimize()
        return self._opt

    # -- covariance -------------------------------------------------------------------------------
    def covariance(self, *, method: str = "auto") -> CovarianceResult:
        """Covariance ``2 UP H^-1`` of the free parameters at the optimum (1 sigma for the kind).

        ``method``: ``"hesse"`` (Minuit's Hesse; unconstrained fits on the minuit backend),
        ``"numeric"`` (central differences, Gemini's treatment of active bounds and constraints)
        or ``"auto"``. Parameters at a bound count as fixed (zero error), as in Gemini.
        """
        opt = self._require_optimum()
        pars = self.parameters
        free = [i for i, p in enumerate(pars) if not p.fixed]
        names = [pars.names[i] for i in free]
        x = opt.values
        at_bound = [pars.names[i] for i in free if self._at_active_bound(x, i)]
        if method not in ("auto", "hesse", "numeric"):
            raise InputError(f"unknown covariance method {method!r}", field="method")
        use_hesse = method == "hesse" or (
            method == "auto" and self._native is not None and not self.constraints and not at_bound
        )
        if use_hesse:
            if self._native is None:
                raise InputError("method='hesse' needs an optimum from the minuit backend")
            m = self._native
            m.hesse()
            cov = np.array(m.covariance, dtype=float)  # already 2 * errordef * H^-1
            res = CovarianceResult(names, cov, bool(m.accurate), "hesse", self.errordef)
        else:
            res = self._numeric_covariance(x, free, names, at_bound)
        self._cov = res
        return res

    def _at_active_bound(self, x: np.ndarray, i: int) -> bool:
        """Whether parameter ``i`` sits on a bound that holds it (Gemini: it counts as fixed).

        Minimisers stop near a bound, not on it (Minuit's transformation keeps them ~1e-7
        inside). Within 1e-7 of its scale a parameter is on the bound; within 1e-3 of its scale,
        the objective along the parameter decides: on a line through ``x`` pointing inwards,
        the Newton step from three points finds where the minimum of that line lies, and the
        bound holds the parameter when that minimum is beyond the bound (an interior minimum
        that merely lies close to the bound has its line minimum at ``x``).
        """
        pars = self.parameters
        scale = float(pars.scales[i])
        lo, hi = float(pars.lower[i]), float(pars.upper[i])
        dist_lo, dist_hi = x[i] - lo, hi - x[i]
        dist, inward = (dist_lo, 1.0) if dist_lo <= dist_hi else (dist_hi, -1.0)
        if not np.isfinite(dist) or dist > 1e-3 * scale:
            return False
        if dist <= 1e-7 * scale:
            return True
        h = 1e-3 * scale
        f = []
        for k in range(3):
            y = np.array(x, dtype=float)
            y[i] += inward * k * h
            self.nfev += 1
            f.append(float(self.objective(y)))
        slope = (-3.0 * f[0] + 4.0 * f[1] - f[2]) / (2.0 * h)  # df/dt inwards at x
        curv = (f[0] - 2.0 * f[1] + f[2]) / h**2
        if not (np.isfinite(slope) and np.isfinite(curv)) or slope <= 0.0:
            return False
        if curv <= 0.0:
            return True  # rising inwards and not convex: no minimum inside on this line
        return -slope / curv < -(dist + 0.01 * h)

    def _numeric_covariance(self, x, free, names, at_bound) -> CovarianceResult:
        pars = self.parameters
        keep = [i for i in free if pars.names[i] not in at_bound]
        n = len(free)
        cov = np.zeros((n, n))
        if not keep:
            return CovarianceResult(names, cov, True, "numeric", self.errordef, at_bound)
        base = x.copy()

        def f(y):
            full = base.copy()
            full[keep] = y
            self.nfev += 1
            return float(self.objective(full))

        def gk(y):
            full = base.copy()
            full[keep] = y
            return self.total_grad(full)[keep]

        steps = self._steps(x, keep)
        if self.hessian is not None and self.hessian is not True:
            h = self._free_hessian(x, np.asarray(keep))
        elif self.grad is not None:  # central differences of the analytic gradient: 2n calls
            h = jacobian(gk, x[keep], steps)
            h = 0.5 * (h + h.T)
        else:
            h = hessian(f, x[keep], steps)
        full_steps = np.full(len(x), 1e-6)
        full_steps[keep] = steps
        active = [c for c in self.constraints if c.is_active(x, 1e-6)]
        success = True
        if active:
            a_full = np.array([c.grad(x, full_steps) for c in active])
            a = a_full[:, keep]
            # Lagrange multipliers from grad F = A^T lambda, then the Lagrangian's Hessian
            from .numdiff import gradient

            g = gk(x[keep]) if self.grad is not None else gradient(f, x[keep], steps)
            lam, *_ = np.linalg.lstsq(a.T, g, rcond=None)
            for c, lm in zip(active, lam):
                if not c.linear:
                    h = h - lm * c.hessian(x, full_steps)[np.ix_(keep, keep)]
            u, sv, vt = np.linalg.svd(a)
            rank = int(np.sum(sv > 1e-10 * max(sv.max(), 1e-300)))
            z = vt[rank:].T  # null space of the active constraints
        else:
            z = np.eye(len(keep))
        if z.shape[1] == 0:
            sub = np.zeros((len(keep), len(keep)))
        else:
            hz = z.T @ h @ z
            try:
                evals = np.linalg.eigvalsh(hz)
                success = bool(evals.min() > 0)
                sub = z @ np.linalg.inv(hz) @ z.T * (2.0 * self.errordef)
            except np.linalg.LinAlgError:
                success = False
                sub = np.full((len(keep), len(keep)), np.nan)
        pos = [free.index(i) for i in keep]
        cov[np.ix_(pos, pos)] = sub
        if not success:
            log.warning("the Hessian is not positive definite: covariance unreliable")
        return CovarianceResult(names, cov, success, "numeric", self.errordef, at_bound)

    def _steps(self, x: np.ndarray, idx: list[int]) -> np.ndarray:
        """Finite-difference steps: 1e-3 of the error estimate (from a first pass) or scale."""
        pars = self.parameters
        steps = 1e-3 * pars.scales[idx]
        if self._cov is not None:
            err = np.sqrt(np.clip(np.diag(self._cov.matrix), 0, None))
            names = self._cov.names
            for k, i in enumerate(idx):
                e = err[names.index(pars.names[i])]
                if e > 0:
                    steps[k] = 1e-3 * e
        # stay inside the bounds
        room = np.minimum(x[idx] - pars.lower[idx], pars.upper[idx] - x[idx])
        return np.where(room < 2 * steps, np.maximum(room / 2, 1e-12), steps)

    def errors(self) -> dict[str, float]:
        """Hessian errors ``{name: error}`` (computes the covariance if needed)."""
        return (self._cov or self.covariance()).errors

    # -- MINOS, profiles and contours (see profiles.py) -----------------------------------------
    def confidence(
        self, parameter: str, *, sigma: float | None = None, cl: float | None = None
    ) -> ConfidenceResult:
        """MINOS interval of one parameter: where the profile rises by UP(sigma or cl, 1)."""
        from .profiles import confidence

        return confidence(self, parameter, sigma=sigma, cl=cl)

    def likelihood_profile(
        self, parameter: str, *, values=None, bounds=2, nvalues: int = 11
    ) -> ProfileResult:
        """Slice: vary one parameter, the others fixed at the best fit."""
        from .profiles import scan

        return scan(self, parameter, values=values, bounds=bounds, nvalues=nvalues, profile=False)

    def minos_profile(
        self, parameter: str, *, values=None, bounds=2, nvalues: int = 11
    ) -> ProfileResult:
        """Profile: vary one parameter, re-optimise all other free ones (under the constraints)."""
        from .profiles import scan

        return scan(self, parameter, values=values, bounds=bounds, nvalues=nvalues, profile=True)

    def minos_contour(
        self,
        x: str,
        y: str,
        *,
        numpoints: int = 20,
        sigma: float | None = None,
        cl: float | None = None,
        n_params: int = 2,
    ) -> ContourResult:
        """MINOS contour in (x, y) at ``UP(sigma or cl, n_params)`` (2-parameter region default)."""
        from .profiles import contour

        return contour(self, x, y, numpoints=numpoints, sigma=sigma, cl=cl, n_params=n_params)

    def up(self, *, sigma=None, cl=None, n_params: int = 1) -> float:
        """UP of this fit's kind (see :func:`eftflow.inference.fit.errordef.up`)."""
        return up(sigma=sigma, cl=cl, n_params=n_params, kind=self.kind)
