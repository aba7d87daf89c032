"""MINOS intervals, 1D profiles/slices and MINOS contours for :class:`Fit`.

Without constraints on the minuit backend these call Minuit's ``minos`` and ``mncontour``.
Otherwise (SciPy backend, linear/nonlinear constraints) they use the definition directly: the
profile ``P(v) = min F`` over the other free parameters with the parameter(s) of interest fixed
at ``v`` (subject to the constraints), and the crossing ``P(v) - F_min = UP`` is found by bracketing
and Brent's method along a line (intervals) or along rays from the optimum (contours). A point
where the constraints cannot be met with the parameter(s) fixed counts as outside the region.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from eftflow.errors import BackendError, InputError

from .result import ConfidenceResult, ContourResult, ProfileResult

__all__ = ["confidence", "scan", "contour"]

log = logging.getLogger(__name__)

_OUTSIDE = 1e30


def _require_valid_optimum(fit, what: str):
    """The optimum, or :class:`BackendError` when the minimisation did not converge: MINOS
    intervals and contours are only defined around a valid minimum (as in Minuit)."""
    opt = fit._require_optimum()
    if not opt.success:
        raise BackendError(
            f"{what} needs a valid minimum, but the fit did not converge ({opt.message}); "
            "check the starting values, scales and bounds, or the call limit",
            field="minimum",
        )
    return opt


def _free_index(fit, name: str) -> int:
    i = fit.parameters.index(name)
    if fit.parameters[name].fixed:
        raise InputError(f"parameter {name!r} is fixed: it has no interval", field=name)
    return i


class _Profiler:
    """Profile ``min F`` with some parameters fixed, warm-started from the last solution."""

    def __init__(self, fit):
        self.fit = fit
        self.fmin = fit._opt.fval
        self.best = fit._opt.values.copy()
        self.last = self.best.copy()
        self.ok = True
        self.lowest = self.fmin  # a profile value below F_min: the optimum was not the minimum
        scales = fit.parameters.scales
        self.ctol = 1e-6 * max(1.0, float(np.abs(scales).max()))
        # an infeasible fixing makes SLSQP run to its iteration limit: keep that short
        self.options = {"maxiter": 200} if fit.backend_name == "scipy" else None

    def __call__(self, fix: dict[str, float]) -> float:
        start = self.last.copy()
        out, full = self.fit._minimize(fix=fix, start=start, options=self.options)
        viol = max((c.violation(full) for c in self.fit.constraints), default=0.0)
        # outside: the constraints are not met, or only nearly met by a failed minimisation
        # (a fixing within the tolerance of the region's edge)
        if viol > self.ctol or (not out.success and viol > 1e-3 * self.ctol):
            return _OUTSIDE
        if not math.isfinite(out.fval):
            return _OUTSIDE
        self.ok = self.ok and out.success
        self.last = full
        self.lowest = min(self.lowest, out.fval)
        return out.fval

    @property
    def new_minimum(self) -> bool:
        """Whether a profile point fell below ``F_min`` by more than 1e-6 UP (Minuit's
        "new minimum found": the interval around the old optimum is then not valid)."""
        return self.lowest < self.fmin - 1e-6 * self.fit.errordef


def _bracket_root(g, x0: float, step: float, limit: float, direction: int, tol: float):
    """Root of ``g`` (``g(x0) < 0``) along ``direction``; returns (root, hit_limit, found).

    ``hit_limit`` is true when the region ends first: at the parameter's bound, or where the
    constraints can no longer be met (the edge is then found by bisection, to ``tol``).
    ``found`` is false when ``g`` stays below 0 for 10^6 steps without a bound (a flat
    direction: no crossing, the returned point is only where the search gave up).
    """
    from scipy.optimize import brentq

    a = x0
    dist = step
    while True:
        b = x0 + direction * dist
        hit = direction * (b - limit) >= 0
        if hit:
            b = limit
        gb = g(b)
        if gb >= 0:
            break
        if hit:
            return b, True, True
        a = b
        dist *= 2.0
        if dist > 1e6 * step:
            return b, False, False
    if gb >= _OUTSIDE / 2:  # b is infeasible: is the crossing before the edge of the region?
        inside, outside = a, b
        while abs(outside - inside) > 1e3 * tol:  # the edge is known to the constraints' tolerance
            mid = 0.5 * (inside + outside)
            gm = g(mid)
            if gm >= _OUTSIDE / 2:
                outside = mid
            elif gm >= 0:
                b = mid
                break
            else:
                inside = mid
        else:
            return inside, True, True
        a = inside
    root = brentq(g, min(a, b), max(a, b), xtol=tol, rtol=4 * np.finfo(float).eps, maxiter=200)
    return root, False, True


def _error_guess(fit, name: str) -> float:
    try:
        err = fit.errors().get(name, 0.0)
    except Exception:  # noqa: BLE001 - a failed Hessian only loses the starting step
        err = 0.0
    return err if err > 0 and math.isfinite(err) else fit.parameters[name].scale


def confidence(fit, name: str, *, sigma=None, cl=None) -> ConfidenceResult:
    """MINOS interval; see :meth:`Fit.confidence`."""
    from scipy.stats import chi2

    opt = _require_valid_optimum(fit, f"the MINOS interval of {name!r}")
    i = _free_index(fit, name)
    target = fit.up(sigma=sigma, cl=cl, n_params=1)
    value = float(opt.values[i])
    nfev0 = fit.nfev
    method = "profile-root"
    if fit._native is not None and not fit.constraints:
        m = fit._native
        ratio = target / fit.errordef
        clarg = math.sqrt(ratio) if ratio >= 1 else float(chi2.cdf(ratio, 1))
        try:
            m.minos(name, cl=clarg)
            me = m.merrors[name]
        except RuntimeError as err:  # iminuit refuses (e.g. after a failed Hesse)
            log.warning("Minuit's MINOS failed for %s (%s): using the profile", name, err)
            me = None
        if me is not None and me.is_valid:
            return ConfidenceResult(
                name=name,
                value=value,
                errn=-float(me.lower),
                errp=float(me.upper),
                up=target,
                success=True,
                nfev=int(me.nfcn),
                method="minuit-minos",
                at_lower_limit=bool(me.at_lower_limit),
                at_upper_limit=bool(me.at_upper_limit),
            )
        # an invalid MINOS side (typically a parameter on its bound, where Minuit reports a
        # crossing outside the bound): the profile definition handles bounds exactly
        if me is not None:
            log.info("Minuit's MINOS is not valid for %s: using the profile", name)
        method = "profile-root (minuit-minos invalid)"
    prof = _Profiler(fit)
    step = _error_guess(fit, name) * math.sqrt(target / fit.errordef)

    def g(v):
        return prof({name: v}) - prof.fmin - target

    par = fit.parameters[name]
    tol = 1e-9 * step
    hi, hit_hi, found_hi = _bracket_root(g, value, step, par.upper, +1, tol)
    prof.last = prof.best.copy()
    lo, hit_lo, found_lo = _bracket_root(g, value, step, par.lower, -1, tol)
    success = prof.ok and found_hi and found_lo and not prof.new_minimum
    if prof.new_minimum:
        log.warning(
            "the profile of %s went below the minimum by %.3g: the fit had not found the "
            "minimum; the interval is not valid",
            name,
            prof.fmin - prof.lowest,
        )
    if not (found_hi and found_lo):
        log.warning("the profile of %s does not reach UP = %g on one side (flat)", name, target)
    return ConfidenceResult(
        name=name,
        value=value,
        errn=value - lo if found_lo else math.inf,
        errp=hi - value if found_hi else math.inf,
        up=target,
        success=success,
        nfev=fit.nfev - nfev0,
        method=method,
        at_lower_limit=hit_lo,
        at_upper_limit=hit_hi,
    )


def scan(
    fit, name: str, *, values=None, bounds=2, nvalues: int = 11, profile: bool
) -> ProfileResult:
    """Slice (``profile=False``) or profile; see :meth:`Fit.likelihood_profile`."""
    opt = fit._require_optimum()
    i = _free_index(fit, name)
    par = fit.parameters[name]
    if values is None:
        if isinstance(bounds, int | float):
            err = _error_guess(fit, name)
            lo, hi = opt.values[i] - bounds * err, opt.values[i] + bounds * err
        else:
            try:
                lo, hi = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise InputError("bounds must be a number or (min, max)", field="bounds") from None
        values = np.linspace(max(lo, par.lower), min(hi, par.upper), int(nvalues))
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise InputError("values must be a non-empty 1D array of finite numbers", field="values")
    stat = np.empty(values.size)
    ok = np.ones(values.size, dtype=bool)
    prof = _Profiler(fit)
    order = np.argsort(np.abs(values - opt.values[i]))  # outward from the optimum: warm starts
    for k in order:
        if profile:
            prof.ok = True
            stat[k] = prof({name: values[k]})
            ok[k] = prof.ok and stat[k] < _OUTSIDE
        else:
            full = opt.values.copy()
            full[i] = values[k]
            stat[k] = fit.total_stat(full)
            ok[k] = math.isfinite(stat[k])
    if not opt.success:
        log.warning("the fit did not converge (%s): the scan of %s is not valid", opt.message, name)
        ok[:] = False
    # a point below the minimum: the optimum was not the minimum, no point is trustworthy
    if np.any(stat < opt.fval - 1e-6 * fit.errordef):
        log.warning("the scan of %s went below the minimum: the fit had not converged", name)
        ok[:] = False
    return ProfileResult(name, values, stat, opt.fval, "profile" if profile else "slice", ok)


def contour(fit, x: str, y: str, *, numpoints=20, sigma=None, cl=None, n_params=2) -> ContourResult:
    """MINOS contour; see :meth:`Fit.minos_contour`."""
    from scipy.stats import chi2

    opt = _require_valid_optimum(fit, f"the contour of {x!r} and {y!r}")
    ix, iy = _free_index(fit, x), _free_index(fit, y)
    if ix == iy:
        raise InputError("a contour needs two different parameters", field=y)
    if int(numpoints) < 4:
        raise InputError("numpoints must be at least 4", field="numpoints")
    target = fit.up(sigma=sigma, cl=cl, n_params=n_params)
    center = (float(opt.values[ix]), float(opt.values[iy]))
    if fit._native is not None and not fit.constraints:
        m = fit._native
        try:
            pts = np.asarray(
                m.mncontour(x, y, cl=float(chi2.cdf(target / fit.errordef, 2)), size=int(numpoints))
            )
        except RuntimeError as err:
            raise BackendError(f"Minuit's contour of {x!r} and {y!r} failed: {err}") from None
        if len(pts) > int(numpoints) and np.array_equal(pts[0], pts[-1]):
            pts = pts[:-1]  # iminuit closes the polygon; numpoints distinct points, as scipy's
        ok = bool(len(pts) == int(numpoints) and np.isfinite(pts).all())
        return ContourResult(x, y, pts[:, 0], pts[:, 1], target, center, ok, "minuit-mncontour")
    sx, sy = _error_guess(fit, x), _error_guess(fit, y)
    prof = _Profiler(fit)
    px, py = fit.parameters[x], fit.parameters[y]
    xs, ys = [], []
    all_found = True
    for phi in np.linspace(0.0, 2 * np.pi, int(numpoints), endpoint=False):
        dx, dy = sx * math.cos(phi), sy * math.sin(phi)
        # largest r that keeps the ray inside the bounds
        rmax = math.inf
        for c, d, p in ((center[0], dx, px), (center[1], dy, py)):
            if d > 0 and math.isfinite(p.upper):
                rmax = min(rmax, (p.upper - c) / d)
            elif d < 0 and math.isfinite(p.lower):
                rmax = min(rmax, (p.lower - c) / d)

        def g(r, dx=dx, dy=dy):
            return prof({x: center[0] + r * dx, y: center[1] + r * dy}) - prof.fmin - target

        r0 = math.sqrt(target / fit.errordef)
        r, _, found = _bracket_root(g, 0.0, min(r0, 0.5 * rmax), rmax, +1, 1e-9 * r0)
        all_found = all_found and found
        xs.append(center[0] + r * dx)
        ys.append(center[1] + r * dy)
    if prof.new_minimum:
        log.warning("the contour's profile went below the minimum: the contour is not valid")
    ok = prof.ok and all_found and not prof.new_minimum
    return ContourResult(x, y, np.array(xs), np.array(ys), target, center, ok, "profile-rays")
