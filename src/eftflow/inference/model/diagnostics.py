"""Diagnostic gates of a learned likelihood ratio beyond the Asimov closure (plain functions on
arrays, no I/O).

* :func:`calibration_curve` — the classifier output s(x) = r̂/(1 + r̂) = sigmoid(log r̂) of a
  ratio r̂(x) = p(x|θ0)/p(x|θ1), evaluated on an equal mixture of events from θ0 (label 1) and
  θ1 (label 0), is the probability that an event comes from θ0. Binned in s (equal-weight
  quantile bins), the mean predicted s against the observed (weighted) fraction of label-1 events
  per bin; χ² of the curve against the diagonal.
* :func:`reweighting_closure` — the reference sample (θ1) reweighted with r̂ against the target
  sample (θ0), histogram by histogram (one per observable column), with χ²/ndf from both
  samples' Σw².

  Both take **paired** samples too: the same events weighted at θ0 and at θ1 (a store's pool, as
  ``eftflow build-model`` uses). Their errors are then those of the per-event differences
  (``events`` / ``same_events``): the two samples are fully correlated, and the independent-
  sample errors would be far too large — they hide a miscalibration the events can see.
* :func:`spread_map` — per-event mean and standard deviation of the ensemble members' log r̂.
* :func:`variance_vs_ensemble_size` — the mean per-event variance of the ensemble mean of K
  members (bootstrap subsets of the members) for K = 1..n_members.
* :func:`run_diagnostics` — evaluates those that have inputs and flags them against thresholds.
* :func:`check_store_fits` — flags the fits of the model to the pool weighted with the store's own
  weights at points between the reference and a target (``eftflow build-model`` runs them:
  :func:`eftflow.cli.cmd_model.store_weight_fits`). The data are then the Monte Carlo truth, not
  the model's own prediction: an estimator that is too insensitive (a region it barely saw) fits
  too large a parameter, a noisy one (per-event noise in its θ dependence) fits too small a one
  with too small an error. Neither the Asimov closure nor the toys can see either, as both take
  the model's prediction as the truth. The pull (fitted − true)/error also carries the Monte
  Carlo noise of the pool (its events' parton-level information, which no detector-level model
  has): a few tenths for a pool of hundreds of events.

**Policy.** The Asimov closure (:func:`eftflow.inference.model.inference.asimov_closure`) is the
only *hard* gate: it fails the stage. The diagnostics here produce **warnings** (listed in
``model.json`` under ``diagnostics`` and shown in the report) and never fail a stage: a
calibration χ² p-value below ``calibration_p_value`` (default 1e-3), a reweighting χ²/ndf above
``reweighting_chi2_ndf`` (default 2) with a p-value below ``reweighting_p_value`` (default 0.01)
for any observable (both: with one or two bins, χ²/ndf > 2 happens by chance one time in six
or seven; with 19 bins the χ²/ndf condition is the stricter), a variance-vs-K log-log slope further
than ``variance_slope_tol`` (default 0.25) from −1, or a median per-event spread above
``max_median_spread`` (default ``None``: not checked), or a store-weight fit whose pull is
larger than ``store_fit_pull`` (default 2) in magnitude.

Resampling the members cannot see correlations between them (members trained on the same events
share a common error): the variance-vs-K curve measures how the statistical uncertainty of the
ensemble mean falls with K *for exchangeable members*; it follows 1/K by construction when the
members scatter independently around their mean.

Example
-------
>>> rng = np.random.default_rng(0)
>>> spread_map(np.zeros((3, 5)))[1].tolist()
[0.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "calibration_curve",
    "reweighting_closure",
    "spread_map",
    "variance_vs_ensemble_size",
    "run_diagnostics",
    "check_store_fits",
]

log = logging.getLogger(__name__)

#: warning thresholds of :func:`run_diagnostics` (see the module docstring for the policy)
DEFAULT_THRESHOLDS = {
    "calibration_p_value": 1e-3,
    "reweighting_chi2_ndf": 2.0,
    "reweighting_p_value": 0.01,
    "variance_slope_tol": 0.25,
    "max_median_spread": None,
    "store_fit_pull": 2.0,
}


def check_store_fits(fits: list[dict], thresholds: Mapping | None = None) -> list[str]:
    """Warnings for store-weight fits (``{parameter, reference, true, fitted, error, pull}``
    each) whose |pull| exceeds ``store_fit_pull``. A fit further from the reference than the
    truth means an estimator too insensitive, a fit closer one too noisy or too sensitive."""
    lim = float({**DEFAULT_THRESHOLDS, **dict(thresholds or {})}["store_fit_pull"])
    bad = [f for f in fits if f.get("pull") is not None and abs(f["pull"]) > lim]
    if not bad:
        return []
    worst = max(bad, key=lambda f: abs(f["pull"]))
    ref = float(worst.get("reference", 0.0))
    away = abs(worst["fitted"] - ref) > abs(worst["true"] - ref)
    trend = "too insensitive" if away else "too noisy or too sensitive"
    return [
        f"fit to the store's own weights at {worst['parameter']} = {worst['true']:.4g}: "
        f"{worst['fitted']:.4g} ± {worst['error']:.2g} (pull {worst['pull']:+.2f}, "
        f"{len(bad)} of {len(fits)} fits beyond ±{lim:g}): the estimator looks {trend}"
    ]


def _weights(w, n, what):
    if w is None:
        return np.ones(n)
    w = np.asarray(w, float).reshape(-1)
    if w.shape != (n,) or not np.all(np.isfinite(w)):
        raise InputError(f"{what} must be {n} finite numbers", field=what)
    return w


def _quantile_edges(values, weights, n_bins):
    """Bin edges with (about) equal weight per bin, covering all values; duplicates removed."""
    order = np.argsort(values)
    v, w = values[order], np.clip(weights[order], 0, None)
    cw = np.cumsum(w)
    if not cw[-1] > 0:
        return np.array([v[0], v[-1] + 1e-12])
    q = np.interp(np.linspace(0, 1, n_bins + 1)[1:-1] * cw[-1], cw, v)
    edges = np.unique(np.concatenate([[v[0]], q, [v[-1]]]))
    if len(edges) < 2:
        edges = np.array([v[0], v[0] + 1e-12])
    edges[-1] = np.nextafter(edges[-1], np.inf)  # the largest value in the last bin
    return edges


def calibration_curve(log_r, labels, weights=None, n_bins: int = 10, events=None) -> dict:
    """Calibration curve of the classifier s = r̂/(1 + r̂) = sigmoid(log r̂).

    Parameters
    ----------
    log_r
        log r̂(x) = log p(x|θ0)/p(x|θ1) per event (n,).
    labels
        1 for events drawn from θ0 (the numerator), 0 for events from θ1 (n,).
    weights
        Event weights (default 1); each class is rescaled to the same total weight (an equal
        mixture, whose Bayes-optimal classifier is s).
    n_bins
        Number of bins in s (equal total weight per bin).
    events
        Optional event id per row (n,): rows with the same id are one event weighted at θ0
        (label 1) and at θ1 (label 0), as when a store's pool is weighted at both points. The
        error of a bin's observed fraction f = T/(T + R) (T, R: its label-1 and label-0 weight)
        is then the delta-method one over its events, √Σ_e (R t_e − T r_e)² / (T + R)², with
        t_e, r_e the event's two weights; for rows that are all different events this is the
        binomial error of the observed fraction. Both rows of an event fall in the same bin
        (they share x, so log r̂): rows of one id with different ``log_r`` are refused.

    Returns
    -------
    dict
        ``predicted``, ``observed``, ``error`` (binomial, from the bin's effective number of
        events and the predicted fraction; with ``events``, the delta-method error above),
        ``weight`` per bin, ``edges`` in s, and ``chi2``, ``ndf`` (= number of bins) and
        ``p_value`` of the observed against the predicted fractions (the diagonal).
    """
    from scipy.stats import chi2 as chi2_dist

    lr = np.asarray(log_r, float).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    n = len(lr)
    if y.shape != (n,) or not np.isin(y, (0, 1)).all():
        raise InputError(f"labels must be {n} zeros and ones", field="labels")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise InputError("both classes need events", field="labels")
    w = _weights(weights, n, "weights")
    w = w.copy()
    for c in (0, 1):
        tot = w[y == c].sum()
        if not tot > 0:
            raise InputError(f"class {c} has no positive total weight", field="weights")
        w[y == c] /= tot
    s = 1.0 / (1.0 + np.exp(-np.clip(lr, -700, 700)))
    edges = _quantile_edges(s, w, int(n_bins))
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    nb = len(edges) - 1
    sw = np.bincount(idx, w, nb)
    sw2 = np.bincount(idx, w * w, nb)
    pred = np.bincount(idx, w * s, nb) / np.where(sw > 0, sw, 1)
    obs = np.bincount(idx, w * y, nb) / np.where(sw > 0, sw, 1)
    if events is None:
        n_eff = np.where(sw2 > 0, sw**2 / np.where(sw2 > 0, sw2, 1), 0)
        var = pred * (1 - pred) / np.where(n_eff > 0, n_eff, 1)
    else:
        var = _paired_fraction_variance(events, lr, idx, w, y, nb)
    use = (sw > 0) & (var > 0)
    chi2 = float(np.sum((obs[use] - pred[use]) ** 2 / var[use]))
    ndf = int(use.sum())
    return {
        "edges": edges,
        "predicted": pred,
        "observed": obs,
        "error": np.sqrt(var),
        "weight": sw,
        "chi2": chi2,
        "ndf": ndf,
        "chi2_ndf": chi2 / max(ndf, 1),
        "p_value": float(chi2_dist.sf(chi2, ndf)) if ndf else 1.0,
    }


def _paired_fraction_variance(events, log_r, idx, w, y, nb) -> np.ndarray:
    """Per bin, the delta-method variance of T/(T + R) over events that carry a row of each
    label (see :func:`calibration_curve`)."""
    ev = np.asarray(events).reshape(-1)
    if ev.shape != log_r.shape:
        raise InputError(f"events must hold one id per row ({len(log_r)})", field="events")
    ids, first, inv = np.unique(ev, return_index=True, return_inverse=True)  # first: a row each
    if not np.allclose(log_r, log_r[first[inv]], rtol=0, atol=1e-9):
        raise InputError(
            "rows of one event have different log r̂: paired rows must be the same x",
            field="events",
        )
    t_bin = np.bincount(idx, w * y, nb)
    r_bin = np.bincount(idx, w * (1 - y), nb)
    # each row's term of R·t_e − T·r_e, summed per event, then squared and summed per bin
    d = np.where(y == 1, r_bin[idx] * w, -t_bin[idx] * w)
    d_event = np.bincount(inv, d, len(ids))
    var = np.bincount(idx[first], d_event**2, nb)
    tot = t_bin + r_bin
    return var / np.where(tot > 0, tot, 1) ** 4


def _largest_gap(cal: Mapping) -> float:
    """The largest |observed − predicted| fraction over the bins with weight: how far off the
    calibration is, next to how significant (the χ²)."""
    use = np.asarray(cal["weight"]) > 0
    gap = np.abs(np.asarray(cal["observed"]) - np.asarray(cal["predicted"]))[use]
    return float(gap.max()) if gap.size else 0.0


def reweighting_closure(
    x_ref,
    w_ref,
    log_r,
    x_target,
    w_target,
    bins: int = 20,
    names=None,
    *,
    same_events: bool = False,
) -> dict:
    """Reference events reweighted with r̂ against the target events, per observable column.

    Both histograms are normalised to the target's total weight (a shape comparison; the mean
    of r̂ over the reference, which is 1 for a normalised ratio, is reported as ``mean_ratio``).
    Bin edges are quantiles of the target events in each column, equal numbers of events per bin
    (not equal weight: where the weights fall steeply, as in a high-mass tail that carries the
    EFT information but 0.1 % of the cross section, equal-weight bins would put the whole tail
    into one bin with the bulk and hide a wrong ratio there). The χ² adds the variances
    Σ(w r̂)² and Σw² of the two samples, ``ndf`` = bins with entries − 1 (the normalisation).
    When the two samples are the same events weighted differently (a store's pool), pass
    ``same_events=True``: the variance of a bin is then that of the per-event differences,
    Σ_e (w_ref,e r̂_e c − w_target,e)² (c the normalisation), not the sum of the two samples'
    variances, which would make the χ² far too small for such fully correlated samples.

    Parameters
    ----------
    x_ref, w_ref
        Reference events (n, d) drawn from θ1 and their weights (``None``: 1).
    log_r
        log r̂ = log p(x|θ0)/p(x|θ1) on the reference events (n,).
    x_target, w_target
        Target events (m, d) from θ0 and their weights (``None``: 1).
    bins
        Number of bins per observable.
    names
        Observable names (default ``x0``, ``x1``, ...).
    same_events
        The reference and target rows are the same events (same x, row by row).

    Returns
    -------
    dict
        ``mean_ratio`` and ``observables``: {name: {chi2, ndf, chi2_ndf, p_value, edges,
        reference, reweighted, reweighted_err, target, target_err}}; with ``same_events``
        also ``difference_err`` (the paired error of reweighted − target).
    """
    from scipy.stats import chi2 as chi2_dist

    xr = np.asarray(x_ref, float)
    xt = np.asarray(x_target, float)
    xr = xr[:, None] if xr.ndim == 1 else xr
    xt = xt[:, None] if xt.ndim == 1 else xt
    if xr.ndim != 2 or xt.ndim != 2 or xr.shape[1] != xt.shape[1]:
        raise InputError(
            f"reference {xr.shape} and target {xt.shape} events need the same columns",
            field="x_target",
        )
    lr = np.asarray(log_r, float).reshape(-1)
    if lr.shape != (len(xr),) or not np.all(np.isfinite(lr)):
        raise InputError(f"log_r must be {len(xr)} finite numbers", field="log_r")
    if same_events and (xr.shape != xt.shape or not np.array_equal(xr, xt, equal_nan=True)):
        raise InputError(
            "same_events: the reference and target rows must be the same events",
            field="x_target",
        )
    wr = _weights(w_ref, len(xr), "w_ref")
    wt = _weights(w_target, len(xt), "w_target")
    names = list(names) if names is not None else [f"x{j}" for j in range(xr.shape[1])]
    r = np.exp(np.clip(lr, -700, 700))
    wrw = wr * r
    t_tot = wt.sum()
    scale_rw = t_tot / wrw.sum()
    scale_ref = t_tot / wr.sum()
    out = {"mean_ratio": float(wrw.sum() / wr.sum()), "observables": {}}
    for j, name in enumerate(names):
        edges = _quantile_edges(xt[:, j], np.ones(len(xt)), int(bins))  # equal counts
        edges[0] = min(edges[0], xr[:, j].min())
        edges[-1] = max(edges[-1], np.nextafter(xr[:, j].max(), np.inf))
        h_t, _ = np.histogram(xt[:, j], edges, weights=wt)
        v_t, _ = np.histogram(xt[:, j], edges, weights=wt * wt)
        h_rw, _ = np.histogram(xr[:, j], edges, weights=wrw)
        v_rw, _ = np.histogram(xr[:, j], edges, weights=wrw * wrw)
        h_ref, _ = np.histogram(xr[:, j], edges, weights=wr)
        h_rw, v_rw = h_rw * scale_rw, v_rw * scale_rw**2
        if same_events:
            var, _ = np.histogram(xt[:, j], edges, weights=(wrw * scale_rw - wt) ** 2)
            # an exact ratio leaves only rounding in the differences (of the normalisation, a
            # sum over all events): 1e-9 of the total is no signal
            var = np.maximum(var, (1e-9 * h_t.sum()) ** 2)
        else:
            var = v_t + v_rw
        use = var > 0
        chi2 = float(np.sum((h_rw[use] - h_t[use]) ** 2 / var[use]))
        ndf = max(int(use.sum()) - 1, 1)
        out["observables"][name] = {
            "chi2": chi2,
            "ndf": ndf,
            "chi2_ndf": chi2 / ndf,
            "p_value": float(chi2_dist.sf(chi2, ndf)),
            "edges": edges,
            "reference": h_ref * scale_ref,
            "reweighted": h_rw,
            "reweighted_err": np.sqrt(v_rw),
            "target": h_t,
            "target_err": np.sqrt(v_t),
        }
        if same_events:
            out["observables"][name]["difference_err"] = np.sqrt(var)
    return out


def _members(members_log_r) -> np.ndarray:
    m = np.asarray(members_log_r, float)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise InputError(
            f"members_log_r must be (n_members, n_events), got {m.shape}", field="members_log_r"
        )
    return m


def spread_map(members_log_r) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard deviation) over the members of log r̂ per event, from (K, n) member
    outputs; the standard deviation uses ddof = 1 (0 for a single member)."""
    m = _members(members_log_r)
    dev = m - m[0]  # shifted by the first member: exactly 0 for identical members
    std = dev.std(0, ddof=1) if m.shape[0] > 1 else np.zeros(m.shape[1])
    return m[0] + dev.mean(0), std


def variance_vs_ensemble_size(
    members_log_r, *, n_resample: int = 200, rng: np.random.Generator | None = None
) -> dict:
    """Mean per-event variance of the ensemble mean of K members, K = 1..n_members.

    For each K, ``n_resample`` subsets of K members are drawn with replacement (a bootstrap of
    the members), their mean log r̂ per event is taken, and its variance over the subsets is
    averaged over the events. For members scattering independently around their mean it falls
    like 1/K; ``expected`` is variance(K=1)/K and ``slope`` the least-squares slope of
    log variance against log K (−1 expected).

    Returns
    -------
    dict
        ``k`` (list), ``variance``, ``expected``, ``slope`` (``None`` with one member).
    """
    m = _members(members_log_r)
    rng = rng if rng is not None else np.random.default_rng(0)
    n_m = m.shape[0]
    ks = list(range(1, n_m + 1))
    var = []
    for k in ks:
        pick = rng.integers(0, n_m, size=(int(n_resample), k))
        means = (m[pick] - m[0]).mean(1)  # (n_resample, n), shifted as in spread_map
        var.append(float(means.var(0, ddof=1).mean()))
    var = np.asarray(var)
    slope = None
    if n_m > 1 and np.all(var > 0):
        slope = float(np.polyfit(np.log(ks), np.log(var), 1)[0])
    return {"k": ks, "variance": var, "expected": var[0] / np.asarray(ks, float), "slope": slope}


def run_diagnostics(
    *,
    members_log_r=None,
    calibration: Mapping | None = None,
    reweighting: Mapping | None = None,
    thresholds: Mapping | None = None,
    rng: np.random.Generator | None = None,
) -> dict:
    """Evaluate the diagnostics that have inputs and flag them (warnings; see the policy in the
    module docstring).

    Parameters
    ----------
    members_log_r
        (K, n) member outputs on the pool: spread map and variance against K.
    calibration
        Keyword arguments of :func:`calibration_curve`.
    reweighting
        Keyword arguments of :func:`reweighting_closure`.
    thresholds
        Overrides of :data:`DEFAULT_THRESHOLDS`.

    Returns
    -------
    dict
        ``spread`` (summary: mean/median/max std, the std per event), ``variance_vs_k``,
        ``calibration``, ``reweighting`` (present when computed), ``thresholds``, ``warnings``
        (messages) and ``passed`` (no warnings).
    """
    th = {**DEFAULT_THRESHOLDS, **dict(thresholds or {})}
    unknown = sorted(set(th) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise InputError(
            f"unknown diagnostic threshold {unknown[0]!r}; known: {', '.join(DEFAULT_THRESHOLDS)}",
            field=f"diagnostics.{unknown[0]}",
        )
    out: dict = {"thresholds": th, "warnings": []}
    warn = out["warnings"]
    if members_log_r is not None:
        mean, std = spread_map(members_log_r)
        out["spread"] = {
            "n_members": int(np.shape(members_log_r)[0]),
            "n_events": int(len(std)),
            "mean_std": float(std.mean()),
            "median_std": float(np.median(std)),
            "max_std": float(std.max()),
            "std": std,
            "mean": mean,
        }
        lim = th["max_median_spread"]
        if lim is not None and out["spread"]["median_std"] > float(lim):
            warn.append(
                f"median per-event ensemble spread {out['spread']['median_std']:.3g} above "
                f"{float(lim):.3g}"
            )
        vk = variance_vs_ensemble_size(members_log_r, rng=rng)
        out["variance_vs_k"] = vk
        if vk["slope"] is not None and abs(vk["slope"] + 1) > float(th["variance_slope_tol"]):
            warn.append(
                f"ensemble-mean variance falls like K^{vk['slope']:.2f}, not 1/K "
                f"(tolerance {float(th['variance_slope_tol']):.2g})"
            )
    if calibration is not None:
        cal = calibration_curve(**calibration)
        out["calibration"] = cal
        if cal["p_value"] < float(th["calibration_p_value"]):
            warn.append(
                f"classifier calibration χ² = {cal['chi2']:.1f} for {cal['ndf']} bins "
                f"(p = {cal['p_value']:.2g} < {float(th['calibration_p_value']):.2g}; "
                f"largest |observed − predicted| = {_largest_gap(cal):.3g})"
            )
    if reweighting is not None:
        rw = reweighting_closure(**reweighting)
        out["reweighting"] = rw
        for name, o in rw["observables"].items():
            if o["chi2_ndf"] > float(th["reweighting_chi2_ndf"]) and o["p_value"] < float(
                th["reweighting_p_value"]
            ):
                warn.append(
                    f"reweighting closure of {name}: χ²/ndf = {o['chi2']:.1f}/{o['ndf']} "
                    f"above {float(th['reweighting_chi2_ndf']):.3g} (p = {o['p_value']:.2g})"
                )
    out["passed"] = not warn
    for w in warn:
        log.warning("diagnostic: %s", w)
    return out
