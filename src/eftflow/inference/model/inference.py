"""Inference on a :class:`~eftflow.inference.model.model.StatModel`.

Single fits go through the :class:`~eftflow.inference.fit.Fit` front end (Minuit by default):
best fit and Hesse covariance, profile scans, MINOS intervals, 2-D MINOS contours, nuisance pulls,
impacts and their ranking, asymptotic CLs upper limits. Many-fit studies (impacts, toys, coverage,
the Neyman construction) use the batched torch minimiser
(:func:`~eftflow.inference.model.batchfit.minimize_batched`), which fits all toys at once.

Conventions
-----------
* Pull of a constrained parameter: ``(p̂ − a) / σ`` (a: nominal auxiliary datum, σ: constraint
  width; for Poisson constraints σ = 1/√τ), with the post-fit constraint ``σ̂ / σ``.
* Impact of a nuisance ν_j on a POI μ: fix ν_j at ν̂_j ± δ and refit the rest; the impact is
  ``μ̂(ν̂_j ± δ) − μ̂``. Pre-fit: δ = the constraint width σ_j; post-fit: δ = the Hesse error of
  ν_j. The ranking orders nuisances by max(|Δ⁺|, |Δ⁻|) post-fit.
* Profile-likelihood test statistic: ``t_μ = 2 (NLL(μ, ν̂̂) − NLL(μ̂, ν̂))``.
* Neyman construction: at each grid value μ_k the nuisances are profiled on the data (ν̂̂(μ_k));
  toys generated at (μ_k, ν̂̂(μ_k)) give the distribution of t_μ; the interval is the set of μ_k
  whose observed t_μ lies below the toys' quantile at the confidence level (Feldman-Cousins
  ordering by the likelihood ratio, with profiled nuisances).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from eftflow.errors import EftflowError, InputError
from eftflow.progress import progress

from .batchfit import minimize_batched

__all__ = [
    "ClosureError",
    "ModelFitter",
    "asimov_closure",
    "cls_upper_limit",
    "toy_study",
    "neyman_construction",
    "NeymanResult",
]

log = logging.getLogger(__name__)


class ClosureError(EftflowError):
    """The Asimov fit does not return the injected parameters (the numbers are in the message)."""


def _poi(model, poi):
    name = poi or model.poi[0]
    model.index(name)
    return name


class ModelFitter:
    """Fits of one data set through the Fit front end.

    Parameters
    ----------
    model, data
        The model and one data set (``data.n_toys == 1``).
    backend, tol
        Passed to :class:`~eftflow.inference.fit.Fit` (default Minuit, tolerance 1e-4).
    start
        Starting values (mapping or full vector; default the model's initial values).
    grad
        Give the minimiser the autograd gradient of the NLL (:meth:`StatModel.gradient`)
        instead of finite differences, and Minuit the Hessian from central differences of
        that gradient (2 gradient calls per free parameter instead of Hesse's ~P²/2 + 2P
        function calls) (default ``True``).
    """

    def __init__(
        self,
        model,
        data,
        *,
        backend: str = "minuit",
        tol: float = 1e-4,
        start=None,
        grad: bool = True,
    ):
        from eftflow.inference.fit import Fit

        if data.n_toys != 1:
            raise InputError(f"fit one data set at a time, got {data.n_toys}", field="data")
        self.model, self.data = model, data
        self.objective = model.objective(data)
        self.gradient = model.gradient(data) if grad else None
        self.backend, self.tol, self.use_grad = backend, tol, bool(grad)
        self.fit = Fit(
            self.objective,
            model.fit_parameters(start=start),
            kind="nll",
            backend=backend,
            tol=tol,
            grad=self.gradient,
            hessian=True if grad else None,
        )
        self.result = None

    def run(self):
        """Best fit + covariance (a :class:`~eftflow.inference.fit.FitResult`)."""
        self.result = self.fit.run()
        return self.result

    def _best(self):
        if self.result is None:
            self.run()
        return self.result

    def profile(self, name: str, *, values=None, bounds=2, nvalues: int = 11):
        self._best()
        return self.fit.minos_profile(name, values=values, bounds=bounds, nvalues=nvalues)

    def minos(self, name: str, *, cl: float | None = None, sigma: float | None = None):
        """MINOS interval of ``name``; where Minuit's MINOS fails (typically for a parameter
        whose best fit sits at a bound), the interval comes from root-finding on the profile
        likelihood (``method`` says which)."""
        self._best()
        res = self.fit.confidence(name, cl=cl, sigma=sigma if cl is None else None)
        if res.success:
            return res
        log.info("MINOS of %s failed; the interval comes from the profile likelihood", name)
        return self._profile_interval(res)

    def _profile_interval(self, res):
        """(lower, upper) crossings of the profile −ln L at ``res.up`` above the minimum, found
        with the batched minimiser (the other free parameters profiled at every point)."""
        from dataclasses import replace

        from scipy.optimize import brentq

        m, i = self.model, self.model.index(res.name)
        best = self.result.optimize.values.copy()
        fixed = np.zeros(len(m.names), bool)
        fixed[i] = True

        def prof(v):
            x = best.copy()
            x[i] = v
            return float(minimize_batched(m, self.data, x, fixed=fixed).nll[0])

        fmin = min(prof(res.value), float(self.result.optimize.fval))
        err = self.result.covariance.errors.get(res.name) or 0.1
        ends, hits = [], []
        for sign, bound in ((-1, m.lower[i]), (+1, m.upper[i])):
            a, step = res.value, err
            for _ in range(40):  # 2^40 errors: a flat profile ends at the last point
                b = res.value + sign * step
                if (b - bound) * sign >= 0:
                    b = bound
                fb = prof(b) - fmin - res.up
                if fb >= 0 or b == bound:
                    break
                a, step = b, 2.0 * step
            if fb < 0 or a == b:  # the profile stays below UP up to the bound
                ends.append(b)
                hits.append(True)
            else:
                ends.append(brentq(lambda v: prof(v) - fmin - res.up, min(a, b), max(a, b)))
                hits.append(False)
        return replace(
            res,
            errn=res.value - ends[0],
            errp=ends[1] - res.value,
            success=True,
            method="profile-root",
            at_lower_limit=hits[0],
            at_upper_limit=hits[1],
        )

    def contour(self, x: str, y: str, *, cl: float = 0.68, numpoints: int = 20):
        self._best()
        return self.fit.minos_contour(x, y, cl=cl, numpoints=numpoints)

    def pulls(self) -> list[dict]:
        """Post-fit pulls and constraints of every constrained parameter."""
        res = self._best()
        vals, errs = res.optimize.parameters, res.covariance.errors
        out = []
        for p in self.model.parameters:
            if p.constraint is None:
                continue
            width = p.sigma if p.constraint == "normal" else 1.0 / math.sqrt(p.tau)
            center = p.aux if p.constraint == "normal" else 1.0
            out.append(
                {
                    "name": p.name,
                    "kind": p.kind,
                    "value": vals[p.name],
                    "error": errs.get(p.name, 0.0),
                    "pull": (vals[p.name] - center) / width,
                    "constraint": errs.get(p.name, 0.0) / width,
                }
            )
        return out

    def impacts(
        self,
        poi: str | None = None,
        *,
        nuisances: Sequence[str] | None = None,
        batched: bool = True,
    ) -> list[dict]:
        """Pre- and post-fit impacts on ``poi`` of every constrained nuisance, ranked.

        Each row lists in ``at_bound`` the impacts whose refit ended at a bound of ``poi``:
        those are lower limits of the impact's size (widen the POI's bounds to get them), and a
        warning says so."""
        poi = _poi(self.model, poi)
        res = self._best()
        best = res.optimize.values
        errs = res.covariance.errors
        m = self.model
        names = nuisances or [
            p.name
            for p in m.parameters
            if p.constraint == "normal" and p.kind in ("nuisance", "spread") and not p.fixed
        ]
        rows, fixes = [], []
        for n in names:
            p = m.parameters[m.index(n)]
            for tag, delta in (("prefit", p.sigma), ("postfit", errs.get(n, 0.0))):
                for sign in (1, -1):
                    v = best.copy()
                    i = m.index(n)
                    v[i] = float(np.clip(best[i] + sign * delta, p.lower, p.upper))
                    rows.append((n, tag, sign))
                    fixes.append(v)
        if not rows:
            return []
        starts = np.array(fixes)
        if batched:
            fixed = np.zeros(starts.shape, bool)
            for k, (n, _, _) in enumerate(rows):
                fixed[k, m.index(n)] = True
            fr = minimize_batched(m, self.data, starts, fixed=fixed)
            mus = fr.values[:, m.index(poi)]
        else:
            mus = []
            for (n, _, _), v in zip(rows, starts):
                f = ModelFitter(
                    m, self.data, backend=self.backend, tol=self.tol, start=v, grad=self.use_grad
                )
                f.fit.parameters[n].fixed = True
                mus.append(f.fit.optimize().parameters[poi])
            mus = np.array(mus)
        mu_hat = best[m.index(poi)]
        pp = m.parameters[m.index(poi)]
        span = max(abs(pp.upper - pp.lower), 1.0) if np.isfinite(pp.upper - pp.lower) else 1.0
        table = {}
        for (n, tag, sign), mu in zip(rows, mus):
            key = f"{tag}_{'up' if sign > 0 else 'down'}"
            row = table.setdefault(n, {"name": n, "at_bound": []})
            row[key] = float(mu - mu_hat)
            if min(abs(mu - pp.lower), abs(mu - pp.upper)) <= 1e-9 * span:
                row["at_bound"].append(key)  # the shift was stopped by the POI's bound
        out = list(table.values())
        clipped = [f"{r['name']} ({', '.join(r['at_bound'])})" for r in out if r["at_bound"]]
        if clipped:
            log.warning(
                "impacts on %s stopped at its bound [%g, %g], so they are lower limits of their "
                "size: %s",
                poi, pp.lower, pp.upper, "; ".join(clipped),
            )  # fmt: skip
        for row in out:
            row["pull"] = (best[m.index(row["name"])] - m.parameters[m.index(row["name"])].aux) / (
                m.parameters[m.index(row["name"])].sigma
            )
            row["rank_key"] = max(abs(row["postfit_up"]), abs(row["postfit_down"]))
        out.sort(key=lambda r: -r["rank_key"])
        return out


def asimov_closure(model, truth=None, *, eps: float = 1e-3, batched: bool = True) -> dict:
    """Fit the Asimov data at ``truth``; raise :class:`ClosureError` if any parameter comes back
    further than ``eps`` × its error (nuisances: × constraint width) from the injected value."""
    v = model.vector(truth)
    data = model.asimov(v)
    if batched:
        fr = minimize_batched(model, data, model.init)
        best, err = fr.values[0], fr.errors()[0]
    else:
        f = ModelFitter(model, data, tol=1e-6)
        r = f.run()
        best = r.optimize.values
        err = np.array([r.covariance.errors.get(n, 0.0) for n in model.names])
    scale = np.where(err > 0, err, 1.0)
    dev = (best - v) / scale
    report = {
        "injected": dict(zip(model.names, v.tolist())),
        "fitted": dict(zip(model.names, best.tolist())),
        "deviation_in_errors": dict(zip(model.names, dev.tolist())),
        "eps": eps,
    }
    bad = [n for n, d in zip(model.names, dev) if abs(d) > eps]
    report["passed"] = not bad
    if bad:
        raise ClosureError(
            "Asimov non-closure: "
            + ", ".join(
                f"{n} injected {v[model.index(n)]:.6g} fitted {best[model.index(n)]:.6g} "
                f"({dev[model.index(n)]:+.3g} sigma)"
                for n in bad
            )
            + f" (allowed {eps} sigma)",
            field="closure",
        )
    return report


def _qtilde(model, data, poi, mu, best_nll, mu_hat, cond_cache):
    i = model.index(poi)
    if mu_hat > mu:
        return 0.0
    v = model.vector(cond_cache.get("start"))
    v[i] = mu
    fixed = np.zeros(len(model.names), bool)
    fixed[i] = True
    fr = minimize_batched(model, data, v, fixed=fixed)
    ref = best_nll
    if mu_hat < 0:
        v0 = v.copy()
        v0[i] = 0.0
        ref = minimize_batched(model, data, v0, fixed=fixed).nll[0]
    return max(2.0 * (fr.nll[0] - ref), 0.0)


def cls_upper_limit(
    model, data, poi: str | None = None, *, cl: float = 0.95, scan: Sequence[float] | None = None
) -> dict:
    """Asymptotic CLs upper limit on ``poi`` with q̃_μ (arXiv:1007.1727), observed and expected
    (−2..+2 σ). The Asimov data are background-only (μ = 0) with the nuisances profiled on
    ``data`` at μ = 0, as pyhf does."""
    from scipy.optimize import brentq

    from eftflow.inference.limits import cls_from_q, expected_cls

    poi = _poi(model, poi)
    i = model.index(poi)
    if model.lower[i] > 0:
        raise InputError(f"CLs limits need {poi} >= 0 allowed", field="poi")
    free = minimize_batched(model, data, model.init)
    best_nll, mu_hat = free.nll[0], free.values[0, i]
    fixed = np.zeros(len(model.names), bool)
    fixed[i] = True
    v0 = free.values[0].copy()
    v0[i] = 0.0
    bkg = minimize_batched(model, data, v0, fixed=fixed).values[0]
    asimov = model.asimov(bkg)
    afree = minimize_batched(model, asimov, bkg)
    hi = model.upper[i] if math.isfinite(model.upper[i]) else 10.0
    grid = np.asarray(scan if scan is not None else np.linspace(0, hi, 41)[1:], float)

    def cls_at(mu):
        q = _qtilde(model, data, poi, mu, best_nll, mu_hat, {"start": free.values[0]})
        qa = _qtilde(model, asimov, poi, mu, afree.nll[0], 0.0, {"start": bkg})
        return cls_from_q(q, qa, "qtilde")[2], expected_cls(qa)

    target = 1.0 - cl
    obs = np.array([cls_at(mu)[0] for mu in grid])
    exp = np.array([cls_at(mu)[1] for mu in grid])

    def root(values, fn):
        below = np.flatnonzero(values < target)
        if not below.size:
            return math.nan
        k = below[0]
        lo = grid[k - 1] if k else 0.0  # CLs(0) = 1: the limit lies below the first scan point
        if k == 0 and not fn(lo) > target:
            log.warning("CLs of %s is below %g at %s = 0: no limit", poi, target, poi)
            return math.nan
        return float(brentq(lambda m: fn(m) - target, lo, grid[k], xtol=1e-6 * max(grid[k], 1e-3)))

    observed = root(obs, lambda m: cls_at(m)[0])
    expected = [root(exp[:, j], lambda m, j=j: cls_at(m)[1][j]) for j in range(5)]
    return {
        "poi": poi,
        "cl": cl,
        "observed": observed,
        "expected": expected,
        "mu_hat": float(mu_hat),
        "scan": grid.tolist(),
        "cls_observed": obs.tolist(),
        "cls_expected": exp.tolist(),
    }


def toy_study(
    model,
    truth,
    n_toys: int,
    rng: np.random.Generator,
    *,
    poi=None,
    levels=(0.68, 0.95),
    batch: int = 500,
    generator=None,
) -> dict:
    """Toys at ``truth``: pulls of every free parameter ((p̂ − p_true)/σ̂_Hesse) and coverage of
    the profile-likelihood intervals of each POI (``t_μ(true) < χ²₁ quantile``).

    ``generator(values, n, rng) -> ModelData`` draws the pseudo-data (default
    :meth:`StatModel.toys`, Poisson weights on the pool, i.e. toys from the model itself; an
    independent exact generator, e.g. :meth:`SystToy.toy_generator`, tests the model against
    the truth)."""
    from scipy.stats import chi2

    v = model.vector(truth)
    model.check_in_bounds(v, "truth")
    pois = [poi] if isinstance(poi, str) else list(poi or model.poi)
    free_mask = ~model.fixed
    vals, errs, ts, conv = [], [], {p: [] for p in pois}, []
    t0 = time.perf_counter()
    with progress(n_toys, "toy study", unit="toys", logger=log) as bar:
        for start in range(0, n_toys, batch):
            n = min(batch, n_toys - start)
            toys = model.toys(v, n, rng) if generator is None else generator(v, n, rng)
            fr = minimize_batched(model, toys, v)
            vals.append(fr.values)
            errs.append(fr.errors())
            conv.append(fr.converged)
            for p in pois:
                fixed = np.zeros(len(v), bool)
                fixed[model.index(p)] = True
                cr = minimize_batched(model, toys, v, fixed=fixed)
                ts[p].append(np.maximum(2.0 * (cr.nll - fr.nll), 0.0))
            bar.update(n)
    seconds = time.perf_counter() - t0
    vals, errs, conv = np.concatenate(vals), np.concatenate(errs), np.concatenate(conv)
    pulls = {}
    for j, name in enumerate(model.names):
        if not free_mask[j]:
            continue
        pv = (vals[:, j] - v[j]) / np.where(errs[:, j] > 0, errs[:, j], np.nan)
        pulls[name] = {
            "mean": float(np.nanmean(pv)),
            "width": float(np.nanstd(pv, ddof=1)),
            "mean_error": float(np.nanstd(pv) / math.sqrt(len(pv))),
        }
    coverage = {}
    for p in pois:
        t = np.concatenate(ts[p])
        coverage[p] = {}
        for lev in levels:
            c = float(np.mean(t < chi2.ppf(lev, 1)))
            coverage[p][str(lev)] = {
                "coverage": c,
                "binomial_error": math.sqrt(lev * (1 - lev) / len(t)),
            }
    return {
        "n_toys": n_toys,
        "converged": float(conv.mean()),
        "pulls": pulls,
        "coverage": coverage,
        "seconds": seconds,
        "toys_per_second": n_toys / seconds,
    }


@dataclass
class NeymanResult:
    """A Neyman-constructed interval on a grid."""

    poi: str
    cl: float
    grid: np.ndarray
    t_observed: np.ndarray
    t_critical: np.ndarray
    accepted: np.ndarray
    n_toys: int
    seconds: float
    toys_per_second: float
    asymptotic_critical: float = field(default=math.nan)

    @property
    def interval(self) -> tuple[float, float]:
        acc = self.grid[self.accepted]
        return (float(acc.min()), float(acc.max())) if acc.size else (math.nan, math.nan)

    def to_dict(self) -> dict:
        return {
            "poi": self.poi,
            "cl": self.cl,
            "grid": self.grid.tolist(),
            "t_observed": self.t_observed.tolist(),
            "t_critical": self.t_critical.tolist(),
            "accepted": self.accepted.tolist(),
            "interval": list(self.interval),
            "n_toys": self.n_toys,
            "seconds": self.seconds,
            "toys_per_second": self.toys_per_second,
            "asymptotic_critical": self.asymptotic_critical,
        }


def neyman_construction(
    model,
    data,
    grid: Sequence[float],
    n_toys: int,
    rng: np.random.Generator,
    *,
    poi: str | None = None,
    cl: float = 0.68,
    batch: int = 2000,
) -> NeymanResult:
    """Neyman construction for one POI on ``grid`` with ``n_toys`` toys per grid point, all
    toys of a batch fitted at once (see the module docstring)."""
    from scipy.stats import chi2

    poi = _poi(model, poi)
    i = model.index(poi)
    grid = np.asarray(grid, dtype=float)
    g = len(grid)
    pts = np.repeat(model.init[None], g, 0)
    pts[:, i] = grid
    model.check_in_bounds(pts, "grid")
    if n_toys < 10:
        raise InputError("the Neyman construction needs at least 10 toys per point", field="n_toys")
    fixed = np.zeros(len(model.names), bool)
    fixed[i] = True
    free = minimize_batched(model, data, model.init)
    cond = minimize_batched(model, data, pts, fixed=fixed)
    t_obs = np.maximum(2.0 * (cond.nll - free.nll[0]), 0.0)
    gen = cond.values  # (G, P): μ_k and ν̂̂(μ_k)
    t0 = time.perf_counter()
    per = max(1, batch // n_toys)
    crit = np.empty(g)
    with progress(g * n_toys, f"Neyman construction ({poi})", unit="toys", logger=log) as bar:
        for k0 in range(0, g, per):
            kk = slice(k0, min(g, k0 + per))
            toys = model.toys(gen[kk], n_toys, rng)
            starts = np.repeat(gen[kk], n_toys, 0)
            fr = minimize_batched(model, toys, starts)
            cr = minimize_batched(model, toys, starts, fixed=fixed)
            t = np.maximum(2.0 * (cr.nll - fr.nll), 0.0).reshape(-1, n_toys)
            crit[kk] = np.quantile(t, cl, axis=1)
            bar.update(len(t) * n_toys)
    seconds = time.perf_counter() - t0
    total = g * n_toys
    log.info(
        "Neyman construction: %d toys in %.2f s (%.1f toys/s)", total, seconds, total / seconds
    )
    return NeymanResult(
        poi,
        cl,
        grid,
        t_obs,
        crit,
        t_obs <= crit,
        n_toys,
        seconds,
        total / seconds,
        float(chi2.ppf(cl, 1)),
    )
