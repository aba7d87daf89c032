"""Likelihood-ratio maps on θ grids for the limits code, and SALLINO histogram likelihoods.

:func:`likelihood_ratio_map` turns per-event log r̂(x_i|θ, θ_ref) on a grid of θ into the
expected (Asimov) or observed log-likelihood of an extended (Poisson) likelihood:

    ln L(θ) − ln L(θ_ref) = N · Σ_i w̃_i log r̂(x_i|θ, θ_ref) + [N log(σ(θ)/σ_ref) − L (σ(θ) − σ_ref)]

with w̃ the normalised event weights (1/n for an unweighted sample), N = L σ_true the expected
number of events (or the observed count) and the bracket the rate term (when the cross sections
are given). ``t(θ) = −2 [ln L(θ) − max ln L]`` is what :func:`eftflow.inference.exclusion`
turns into p-values. The map is saved as NPZ (arrays) and JSON (the same content as lists):
``theta`` (n_θ, n_p), ``shape`` (grid shape or empty), ``log_r`` (n_θ,) summed weighted
per-event log r̂ (per event), ``log_likelihood`` (n_θ,), ``t`` (n_θ,), ``luminosity``,
``n_expected`` and optionally ``log_r_events`` (n_θ, n) — the per-event values.

SALLINO (:func:`sallino_log_likelihood`): the estimated score t̂(x) is a sufficient statistic
near the reference point; its 1-D or 2-D histogram at every θ (from reference events reweighted
to θ) gives log p̂(t̂|θ), and the sum over observed events the kinematic log-likelihood.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "likelihood_ratio_map",
    "save_map",
    "load_map",
    "map_loglik",
    "sallino_log_likelihood",
]


def likelihood_ratio_map(
    theta,
    log_r,
    *,
    weights=None,
    luminosity: float | None = None,
    n_events: float | None = None,
    xsec=None,
    xsec_reference: float | None = None,
    shape=None,
    keep_events: bool = False,
) -> dict:
    """Expected −2Δ ln L on a θ grid from per-event log r̂ (see the module docstring).

    Parameters
    ----------
    theta
        Grid points (n_θ, n_p).
    log_r
        log r̂(x_i|θ_k, θ_ref), shape (n_θ, n).
    weights
        Event weights (n,) (pb per event at the true θ); ``None``: an unweighted sample.
    luminosity
        Integrated luminosity (pb⁻¹). With ``weights`` the expected number of events is
        L Σ w unless ``n_events`` is given.
    xsec, xsec_reference
        σ(θ_k) (n_θ,) and σ(θ_ref) in pb: adds the Poisson rate term.

    Returns
    -------
    dict
        The map (arrays), see the module docstring.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    lr = np.atleast_2d(np.asarray(log_r, dtype=float))
    if lr.shape[0] != theta.shape[0]:
        raise InputError(
            f"log_r has {lr.shape[0]} rows, theta has {theta.shape[0]} points", field="log_r"
        )
    n = lr.shape[1]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float).reshape(n)
    total = w.sum()
    if not total > 0:
        raise InputError("the event weights sum to zero or less", field="weights")
    mean = lr @ (w / total)
    if n_events is None:
        if luminosity is None:
            n_events = float(n)
        elif weights is not None:
            n_events = float(luminosity) * total
        elif xsec_reference is not None:
            n_events = float(luminosity) * float(xsec_reference)
        else:
            n_events = float(n)
    lnl = n_events * mean
    if xsec is not None:
        if xsec_reference is None or luminosity is None:
            raise InputError(
                "the rate term needs xsec_reference and luminosity as well", field="xsec"
            )
        sig = np.asarray(xsec, dtype=float).reshape(len(theta))
        lnl = lnl + n_events * np.log(sig / xsec_reference) - luminosity * (sig - xsec_reference)
    t = -2.0 * (lnl - lnl.max())
    out = {
        "theta": theta,
        "shape": np.asarray(shape if shape is not None else (), dtype=np.int64),
        "log_r": mean,
        "log_likelihood": lnl,
        "t": t,
        "best_theta": theta[int(np.argmax(lnl))],
        "luminosity": np.float64(np.nan if luminosity is None else luminosity),
        "n_expected": np.float64(n_events),
    }
    if keep_events:
        out["log_r_events"] = lr
    return out


def save_map(path, result: dict) -> tuple[Path, Path]:
    """Write ``<path>.npz`` and ``<path>.json`` atomically."""
    from eftflow.store.atomic import atomic_path

    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in result.items()})
    small = {k: np.asarray(v).tolist() for k, v in result.items() if k != "log_r_events"}
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(small, indent=1))
    return npz, js


def load_map(path) -> dict:
    """Read a map written by :func:`save_map` (NPZ, no pickles)."""
    p = Path(path)
    p = p if p.suffix == ".npz" else p.with_suffix(".npz")
    if not p.exists():
        raise InputError("likelihood-ratio map is missing", file=str(p))
    with np.load(p, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def map_loglik(result: dict):
    """``loglik(theta, nu)`` for :func:`eftflow.inference.exclusion.exclusion_grid`.

    Linear interpolation on a regular grid (when the map has a ``shape``), nearest grid point
    otherwise; ν is ignored (a map has no nuisance parameters).
    """
    theta = np.asarray(result["theta"], float)
    lnl = np.asarray(result["log_likelihood"], float)
    shape = tuple(int(s) for s in np.asarray(result.get("shape", ())).ravel())
    if shape and int(np.prod(shape)) == len(theta):
        from scipy.interpolate import RegularGridInterpolator

        axes = [np.unique(theta[:, j]) for j in range(theta.shape[1])]  # ij-ordered product grid
        interp = RegularGridInterpolator(axes, lnl.reshape(shape), bounds_error=False)

        def loglik(th, nu=None):
            return float(interp(np.atleast_2d(th))[0])

        return loglik

    def nearest(th, nu=None):
        return float(lnl[np.argmin(((theta - np.asarray(th, float)) ** 2).sum(1))])

    return nearest


def sallino_log_likelihood(
    t_observed, t_reference, weights_theta, *, bins: int = 20, weights_observed=None
) -> np.ndarray:
    """SALLINO: Σ_events log p̂(t̂|θ) from histograms of the estimated score.

    Parameters
    ----------
    t_observed
        t̂ of the observed (or Asimov) events, (n_obs, d) with d = 1 or 2.
    t_reference
        t̂ of reference events (m, d) that are reweighted to every θ.
    weights_theta
        Their weights at each θ of the grid, (n_θ, m).
    bins
        Bins per dimension (edges from the reference events' quantiles, open-ended).
    weights_observed
        Weights of the observed events (Asimov); ``None``: each counts once.

    Returns
    -------
    ndarray
        (n_θ,) kinematic log-likelihood (add the rate term separately).
    """
    to = np.asarray(t_observed, float)
    tr = np.asarray(t_reference, float)
    to = to.reshape(len(to), -1)
    tr = tr.reshape(len(tr), -1)
    d = tr.shape[1]
    if d not in (1, 2) or to.shape[1] != d:
        raise InputError(
            f"SALLINO histograms are 1-D or 2-D; got scores of dimension {d} and {to.shape[1]}",
            field="t_observed",
        )
    wt = np.atleast_2d(np.asarray(weights_theta, float))
    if wt.shape[1] != len(tr):
        raise InputError(
            f"weights_theta has {wt.shape[1]} columns for {len(tr)} reference events",
            field="weights_theta",
        )
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    edges = [np.concatenate(([-np.inf], np.quantile(tr[:, j], qs), [np.inf])) for j in range(d)]
    idx_r = [np.clip(np.searchsorted(e, tr[:, j], side="right") - 1, 0, bins - 1)
             for j, e in enumerate(edges)]  # fmt: skip
    idx_o = [np.clip(np.searchsorted(e, to[:, j], side="right") - 1, 0, bins - 1)
             for j, e in enumerate(edges)]  # fmt: skip
    flat_r = idx_r[0] if d == 1 else idx_r[0] * bins + idx_r[1]
    flat_o = idx_o[0] if d == 1 else idx_o[0] * bins + idx_o[1]
    n_bins = bins**d
    wo = np.ones(len(to)) if weights_observed is None else np.asarray(weights_observed, float)
    counts_o = np.bincount(flat_o, weights=wo, minlength=n_bins)
    out = np.empty(len(wt))
    for k, w in enumerate(wt):
        h = np.bincount(flat_r, weights=w, minlength=n_bins)
        p = np.maximum(h / h.sum(), 1e-12)
        out[k] = counts_o @ np.log(p)
    return out
