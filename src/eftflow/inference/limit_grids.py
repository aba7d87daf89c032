"""θ grids of one or two parameters and what the limits pipeline computes on them.

:func:`theta_grids` reads the ``limits.grids`` config (or makes the default grids from the setup's
parameter ranges); :func:`fisher_grid` and :func:`histogram_grid` give ``t(θ) = -2 Δln L`` on a
grid for the Gaussian (Fisher) and the binned Poisson likelihood; :func:`intervals_1d` finds the
intervals where ``t`` is below each confidence level's threshold, and ``summary`` collects a grid's
result for the JSON of :func:`eftflow.inference.pipeline_limits.run_limits`.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from eftflow.errors import ConfigError

from .histogram_likelihood import HistogramLikelihood

__all__ = ["theta_grids", "fisher_grid", "histogram_grid", "intervals_1d", "levels", "summary"]

log = logging.getLogger(__name__)


# -- grids -------------------------------------------------------------------------------------
def theta_grids(cfg: dict, setup, *, config_file=None) -> list[dict]:
    """The configured grids: ``[{name, parameters, indices, axes, theta (n, k_all), shape}]``."""
    from eftflow.inference.exclusion import make_grid

    names = list(setup.parameter_names)
    ref = cfg.get("theta_ref")
    ref = np.zeros(len(names)) if ref is None else np.asarray(ref, float)
    if ref.shape != (len(names),):
        raise ConfigError(
            f"theta_ref must have {len(names)} components ({', '.join(names)}), got {ref.size}",
            file=config_file,
            field="limits.theta_ref",
        )
    specs = cfg.get("grids")
    if specs is None:
        n = int(cfg.get("n_points", 41))
        specs = [{"parameters": [p], "n_points": n} for p in names]
        if len(names) >= 2:
            specs.append({"parameters": names[:2], "n_points": n})
    out = []
    for g, spec in enumerate(specs):
        where = f"limits.grids[{g}]"
        pars = list(spec.get("parameters") or [])
        if not 1 <= len(pars) <= 2:
            raise ConfigError(
                f"a grid has one or two parameters, got {len(pars)}",
                file=config_file,
                field=f"{where}.parameters",
            )
        for p in pars:
            if p not in names:
                raise ConfigError(
                    f"unknown parameter {p!r}; the setup has {', '.join(names)}",
                    file=config_file,
                    field=f"{where}.parameters",
                )
        ranges = spec.get("ranges")
        if ranges is None:
            ranges = []
            for p in pars:
                r = setup.parameters[p].parameter_range
                ranges.append([float(r[0]), float(r[1])])
        if not isinstance(ranges, list) or len(ranges) != len(pars):
            raise ConfigError(
                f"the θ grid has {len(pars)} parameter(s) but {len(ranges) if isinstance(ranges, list) else 'no'} "
                "range(s): give one [low, high] per parameter",
                file=config_file,
                field=f"{where}.ranges",
            )
        n = int(spec.get("n_points", cfg.get("n_points", 41)))
        axes = []
        for j, r in enumerate(ranges):
            try:
                lo, hi = (float(v) for v in r)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"expected [low, high], got {r!r}",
                    file=config_file,
                    field=f"{where}.ranges[{j}]",
                ) from None
            if not lo < hi:
                raise ConfigError(
                    f"range needs low < high, got {r}",
                    file=config_file,
                    field=f"{where}.ranges[{j}]",
                )
            axis = np.linspace(lo, hi, n)
            if lo < ref[names.index(pars[j])] < hi:  # put the reference on the grid
                axis = np.unique(np.append(axis, ref[names.index(pars[j])]))
            axes.append(axis)
        pts, shape = make_grid(axes)
        idx = [names.index(p) for p in pars]
        full = np.repeat(ref[None, :], len(pts), axis=0)
        full[:, idx] = pts
        out.append(
            {
                "name": "_".join(pars),
                "parameters": pars,
                "indices": idx,
                "axes": axes,
                "points": pts,
                "theta": full,
                "shape": shape,
            }
        )
    return out


def levels(cls, k: int) -> dict[str, float]:
    from scipy.stats import chi2

    return {f"{cl:g}": float(chi2.ppf(cl, k)) for cl in cls}


def intervals_1d(
    x: np.ndarray, t: np.ndarray, level: float, *, open_ends: bool = False
) -> list[list[float]] | tuple[list[list[float]], list[list[bool]]]:
    """Intervals of a 1D grid where ``t <= level``.

    Crossings are interpolated linearly in ``sqrt(t)``, exact when ``t`` is quadratic in ``x``.
    An interval that reaches the end of the grid ends there (the grid is too small): that end is
    not a limit, only the grid's edge.

    Parameters
    ----------
    x, t
        The grid points (increasing) and ``-2 Δln L`` on them.
    level
        The threshold (``chi2.ppf(cl, 1)``).
    open_ends
        Also return, per interval, ``[open_lower, open_upper]``: ``True`` where the interval
        reaches the grid's first or last point (no crossing of ``level`` was found there).

    Returns
    -------
    list or tuple
        ``[[low, high], ...]``; with ``open_ends``, ``(intervals, [[open_lower, open_upper], ...])``.

    Examples
    --------
    >>> x = np.linspace(-1.0, 1.0, 5)
    >>> intervals_1d(x, 4 * x**2, 1.0)
    [[-0.5, 0.5]]
    >>> intervals_1d(x, 0.1 * x**2, 1.0, open_ends=True)
    ([[-1.0, 1.0]], [[True, True]])
    """
    x = np.asarray(x, float)
    t = np.asarray(t, float)
    inside = np.isfinite(t) & (t <= level)
    out, edges = [], []
    i = 0
    n = len(x)
    while i < n:
        if not inside[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and inside[j + 1]:
            j += 1

        def cross(a, b):  # linear in sqrt(t): exact for a quadratic t
            if not np.isfinite(t[b]):
                return float(x[a])
            ra, rb, rl = math.sqrt(max(t[a], 0.0)), math.sqrt(t[b]), math.sqrt(level)
            return float(x[a] + (rl - ra) * (x[b] - x[a]) / (rb - ra))

        lo = cross(i, i - 1) if i > 0 else float(x[0])
        hi = cross(j, j + 1) if j + 1 < n else float(x[-1])
        out.append([lo, hi])
        edges.append([i == 0, j + 1 == n])
        i = j + 1
    return (out, edges) if open_ends else out


def summary(grid, t, cls, extra=None, *, label: str = "") -> dict:
    from scipy.stats import chi2

    k = len(grid["parameters"])
    t = np.where(np.isfinite(t), np.clip(t, 0.0, None), np.inf)
    best = grid["points"][int(np.argmin(t))]
    d = {
        "minus2_delta_lnL": [float(v) if math.isfinite(v) else None for v in t],
        "p_value": chi2.sf(t, k).tolist(),
        "best_fit": best.tolist(),
        "levels": levels(cls, k),
    }
    if k == 1:
        d["intervals"], d["intervals_open"] = {}, {}
        axis = grid["axes"][0]
        for key, lv in d["levels"].items():
            d["intervals"][key], d["intervals_open"][key] = intervals_1d(
                axis, t, lv, open_ends=True
            )
            if any(a or b for a, b in d["intervals_open"][key]):
                log.warning(
                    "%s%s at CL %s: an interval reaches the edge of the grid [%g, %g], so that "
                    "end is the grid's, not a limit (marked in intervals_open); widen the grid "
                    "(limits.grids ranges, or the parameter's parameter_range)",
                    f"{label}: " if label else "",
                    grid["parameters"][0],
                    key,
                    float(axis[0]),
                    float(axis[-1]),
                )
    if extra:
        d.update(extra)
    return d


def fisher_grid(info: np.ndarray, grid: dict, theta_ref) -> np.ndarray:
    """``-2 Δln L = Δθ^T I Δθ`` on the grid's points (full θ vectors)."""
    dt = grid["theta"] - np.asarray(theta_ref, float)[None, :]
    return np.einsum("ni,ij,nj->n", dt, info, dt)


def histogram_grid(hist: HistogramLikelihood, grid: dict, theta_ref, *, mode: str = "profile"):
    """Expected ``-2 Δln L`` (Asimov data at ``theta_ref``), conditional ν and Wald p-value bands."""
    from eftflow.inference.asimov import _grad_fn, _hess_fn, asimov_data
    from eftflow.inference.exclusion import _wald_bands, likelihood_grid

    model = hist.model
    ref = np.asarray(theta_ref, float)
    data = asimov_data(model, None, ref)

    def loglik(th, nu):
        return model.loglik_main(data, th, nu)

    kw = dict(
        nuisances=model.nuisances,
        aux=data.aux,
        mode=mode,
        grad_nu=_grad_fn(model, data),
        hess_nu=_hess_fn(model, data),
    )
    lnl, nu_hat = likelihood_grid(loglik, grid["theta"], **kw)
    lnl_ref, _ = likelihood_grid(loglik, ref[None, :], **kw)
    t = -2.0 * (lnl - lnl_ref[0])
    t = np.where(np.isfinite(t), np.clip(t, 0.0, None), np.inf)
    bands = _wald_bands(np.where(np.isfinite(t), t, 1e12), len(grid["parameters"]))
    return t, nu_hat, bands


# -- the driver --------------------------------------------------------------------------------
