"""Exclusion of EFT parameter points on theta grids, nuisances profiled or marginalised.

From any main log-likelihood ``loglik(theta, nu)`` (rate, histogram, per-event log r sums):
``t(theta) = -2 [ln L(theta) - ln L(theta_hat)]`` with ``p = chi2.sf(t, k)``, k = dim theta
(Wilks). The expected exclusion uses the Asimov data at ``theta_asimov`` for the median and the
non-central chi-squared ``chi2'(k, t_A)`` (Wald) for the +-1, +-2 sigma bands. These functions are
also available from :mod:`eftflow.inference.limits`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError

from .asimov import Data, _grad_fn, _hess_fn, asimov_data
from .nuisances import Marginaliser, profile_nuisances

__all__ = ["ExclusionResult", "likelihood_grid", "exclusion_grid", "model_exclusion", "make_grid"]

BAND_SIGMAS = (-2, -1, 0, 1, 2)


def _phi(x):
    from scipy.special import ndtr

    return ndtr(x)


def make_grid(axes: Sequence[Sequence[float]]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Points ``(n_points, k)`` of the Cartesian product of ``axes`` (``ij`` order) and its shape."""
    axes = [np.asarray(a, dtype=float) for a in axes]
    if not axes or any(a.ndim != 1 or a.size == 0 for a in axes):
        raise InputError("grid axes must be non-empty 1D sequences", field="grid")
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1), tuple(a.size for a in axes)


def likelihood_grid(
    loglik: Callable[[np.ndarray, np.ndarray], float],
    grid: np.ndarray,
    *,
    nuisances=None,
    aux: np.ndarray | None = None,
    mode: str = "profile",
    grad_nu: Callable | None = None,
    hess_nu: Callable | None = None,
    marginaliser: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``ln L(theta)`` on grid points with the nuisances profiled or marginalised.

    Returns ``(lnL, nu_hat)``; ``nu_hat`` is ``(n_points, n_nu)`` (NaN when marginalising).
    """
    grid = np.atleast_2d(np.asarray(grid, dtype=float))
    n_nu = 0 if nuisances is None else len(nuisances)
    aux = np.zeros(n_nu) if aux is None else np.asarray(aux, dtype=float)
    if mode not in ("profile", "marginalise"):
        raise InputError(f"mode must be 'profile' or 'marginalise', got {mode!r}", field="mode")
    lnl = np.empty(len(grid))
    nu_hat = np.full((len(grid), n_nu), np.nan)
    if mode == "marginalise" and n_nu:
        marg = Marginaliser(nuisances, aux, **(marginaliser or {}))
        for i, th in enumerate(grid):
            lnl[i] = marg(loglik, th)
        return lnl, nu_hat
    start = None
    for i, th in enumerate(grid):
        if n_nu:
            lnl[i], nu = profile_nuisances(
                loglik, th, nuisances, aux, start=start, grad_nu=grad_nu, hess_nu=hess_nu
            )
            nu_hat[i] = nu
            start = nu if np.all(np.isfinite(nu)) else None
        else:
            lnl[i] = float(loglik(th, np.zeros(0)))
    return lnl, nu_hat


@dataclass
class ExclusionResult:
    """Exclusion on a theta grid."""

    theta: np.ndarray
    shape: tuple[int, ...] | None
    lnL: np.ndarray
    t: np.ndarray
    p_value: np.ndarray
    cl: float
    best_theta: np.ndarray
    lnL_max: float
    mode: str
    kind: str  # "observed" or "expected"
    p_bands: dict[int, np.ndarray] | None = None

    @property
    def excluded(self) -> np.ndarray:
        """Grid points excluded at ``cl`` (``p < 1 - cl``)."""
        return self.p_value < 1.0 - self.cl

    def summary(self) -> str:
        return (
            f"{self.kind} exclusion ({self.mode} nuisances): {int(self.excluded.sum())} of "
            f"{len(self.theta)} points excluded at {100 * self.cl:g}% CL; best theta "
            f"{np.array2string(self.best_theta, precision=5)}"
        )

    def to_dict(self) -> dict:
        d = {
            "kind": self.kind,
            "mode": self.mode,
            "cl": self.cl,
            "theta": self.theta.tolist(),
            "shape": None if self.shape is None else list(self.shape),
            "t": self.t.tolist(),
            "p_value": self.p_value.tolist(),
            "excluded": self.excluded.tolist(),
            "best_theta": self.best_theta.tolist(),
        }
        if self.p_bands is not None:
            d["p_bands"] = {f"{k:+d}sigma": v.tolist() for k, v in self.p_bands.items()}
        return d


def exclusion_grid(
    loglik: Callable[[np.ndarray, np.ndarray], float],
    grid,
    *,
    cl: float = 0.95,
    nuisances=None,
    aux=None,
    mode: str = "profile",
    grad_nu: Callable | None = None,
    hess_nu: Callable | None = None,
    refine: bool = True,
    shape: tuple[int, ...] | None = None,
    kind: str = "observed",
    marginaliser: dict | None = None,
) -> ExclusionResult:
    """Exclusion of theta grid points from ``loglik(theta, nu)`` (see the module docstring).

    ``grid`` is ``(n_points, k)`` points or a list of k axes (Cartesian product).
    ``refine`` polishes the global maximum off the grid (Nelder-Mead from the best point); turn
    it off when ``loglik`` is only defined on the grid points.
    """
    from scipy.stats import chi2

    if not 0 < cl < 1:
        raise InputError(f"cl must be in (0, 1), got {cl}", field="cl")
    if isinstance(grid, list | tuple) and grid and np.ndim(grid[0]) == 1:
        grid, shape = make_grid(grid)
    grid = np.atleast_2d(np.asarray(grid, dtype=float))
    kw = dict(
        nuisances=nuisances,
        aux=aux,
        mode=mode,
        grad_nu=grad_nu,
        hess_nu=hess_nu,
        marginaliser=marginaliser,
    )
    lnl, _ = likelihood_grid(loglik, grid, **kw)
    if not np.any(np.isfinite(lnl)):
        raise InputError("the log-likelihood is not finite at any grid point", field="grid")
    i_best = int(np.nanargmax(np.where(np.isfinite(lnl), lnl, -np.inf)))
    best, ll_max = grid[i_best].copy(), float(lnl[i_best])
    if refine:
        from scipy.optimize import minimize

        def neg(th):
            v = likelihood_grid(loglik, th[None, :], **kw)[0][0]
            return -v if math.isfinite(v) else 1e300

        span = np.ptp(grid, axis=0)
        span = np.where(span > 0, span, 1.0)
        simplex = np.vstack([best] + [best + 0.02 * span * e for e in np.eye(grid.shape[1])])
        res = minimize(
            neg,
            best,
            method="Nelder-Mead",
            options={
                "initial_simplex": simplex,
                "xatol": 1e-9 * span.max(),
                "fatol": 1e-10,
                "maxiter": 2000,
            },
        )
        if -res.fun > ll_max:
            best, ll_max = np.asarray(res.x), -float(res.fun)
    t = np.clip(-2.0 * (lnl - ll_max), 0.0, None)
    k = grid.shape[1]
    p = chi2.sf(t, k)
    return ExclusionResult(grid, shape, lnl, t, p, cl, best, ll_max, mode, kind)


def _wald_bands(t_asimov: np.ndarray, k: int) -> dict[int, np.ndarray]:
    """p-values at the -2..+2 sigma quantiles of ``t ~ chi2'(k, t_A)``."""
    from scipy.stats import chi2, ncx2

    out = {}
    for n in BAND_SIGMAS:
        q = float(_phi(n))
        tq = np.where(t_asimov > 1e-12, ncx2.ppf(q, k, np.maximum(t_asimov, 1e-12)), chi2.ppf(q, k))
        out[n] = chi2.sf(tq, k)
    return out


def model_exclusion(
    model,
    grid,
    *,
    data: Data | None = None,
    theta_asimov: Sequence[float] | None = None,
    cl: float = 0.95,
    mode: str = "profile",
    refine: bool = True,
    marginaliser: dict | None = None,
) -> dict[str, ExclusionResult]:
    """Observed (if ``data``) and expected (Asimov at ``theta_asimov``) exclusion for a model.

    Returns ``{"observed": ..., "expected": ...}``; the expected result carries ``p_bands``
    (keys -2..+2: quantile ``Phi(N)`` of the test statistic, N > 0 excludes more).
    """
    shape = None
    if isinstance(grid, list | tuple) and grid and np.ndim(grid[0]) == 1:
        grid, shape = make_grid(grid)
    grid = np.atleast_2d(np.asarray(grid, dtype=float))
    out: dict[str, ExclusionResult] = {}
    common = dict(
        cl=cl,
        nuisances=model.nuisances,
        mode=mode,
        refine=refine,
        shape=shape,
        marginaliser=marginaliser,
    )
    if data is not None:
        out["observed"] = exclusion_grid(
            lambda th, nu: model.loglik_main(data, th, nu),
            grid,
            aux=data.aux,
            grad_nu=_grad_fn(model, data),
            hess_nu=_hess_fn(model, data),
            kind="observed",
            **common,
        )
    if theta_asimov is not None:
        theta_asimov = np.atleast_1d(np.asarray(theta_asimov, dtype=float))
        if theta_asimov.shape != (grid.shape[1],):
            raise InputError(
                f"theta_asimov must have {grid.shape[1]} components", field="theta_asimov"
            )
        a = asimov_data(model, None, theta_asimov)
        res = exclusion_grid(
            lambda th, nu: model.loglik_main(a, th, nu),
            grid,
            aux=a.aux,
            grad_nu=_grad_fn(model, a),
            hess_nu=_hess_fn(model, a),
            kind="expected",
            **common,
        )
        res.p_bands = _wald_bands(res.t, grid.shape[1])
        out["expected"] = res
    if not out:
        raise InputError("give data (observed) and/or theta_asimov (expected)", field="data")
    return out
