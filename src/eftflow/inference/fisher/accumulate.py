"""The streaming kernel of all Fisher-information estimates, and their covariance algebra.

Per event n, at the reference point (θ, ν), v_n = (w_n, ∂_1 w_n, …, ∂_k w_n) (θ then ν
components; :mod:`eftflow.sampling.weights`). One pass over the chunks accumulates per bin b
(one bin for truth/rate information):

    V_b  = Σ_{n∈b} v_n                  (σ_b and ∇σ_b)
    VV_b = Σ_{n∈b} v_n v_nᵀ             (for the covariance of binned/rate information)
    T_b  = L Σ_{n∈b, w_n>0} ∂w ∂wᵀ / w   (truth-level information per event, summed)
    TT_b = Σ_{n∈b, w_n>0} vec(I_n) vec(I_n)ᵀ

Covariances model each simulated event as an independent Poisson count of one (the convention
behind σ ± sqrt(Σ w²)): a sum Σ_n f(v_n) has Cov = Σ_n f f ᵀ, and a smooth function F(V) of sums
has Cov = J (Σ_n v vᵀ) Jᵀ with J = ∂F/∂V. Hence

* truth information I = Σ_n I_n: Cov = TT (MadMiner 0.9.6 reports 9·TT: in its Jacobian the term
  −θ_b ∂σ∂σ/σ² has a + sign, which makes Σ_b J_b w_b = 3 I_n instead of I_n);
* binned information I = L Σ_b ∇σ_b ∇σ_bᵀ / σ_b: J_b = L[(e_i g_j + g_i e_j)/σ_b − g_i g_j/σ_b² e_0]
  with g = ∇σ_b, contracted with VV_b (exact to first order, all correlations kept; MadMiner
  instead assumes benchmark errors sqrt(Σ w_b²) fully correlated across benchmarks).

Events (truth) or bins (binned) with w ≤ 0 or σ_b ≤ 0 carry no information and are skipped;
their number is reported.
"""

from __future__ import annotations

import numpy as np

from eftflow.sampling.weights import ChunkContext, load_chunk

__all__ = ["chunk_moments", "binned_information", "combine"]


def chunk_moments(
    ctx: ChunkContext,
    i0: int,
    i1: int,
    subset,
    m: np.ndarray,
    dm: np.ndarray,
    nu: np.ndarray,
    luminosity: float,
    binning,
    n_bins: int,
    want: tuple,
    n_keep: int,
) -> dict:
    """Per-bin sums over events [i0, i1). ``binning``: None or [(observable fn, boundaries), ...]."""
    ch = load_chunk(ctx, i0, i1, subset, with_x=binning is not None)
    k = n_keep
    out = {"n_events": np.zeros(n_bins, np.int64), "n_nonpositive": 0}
    if "V" in want:
        out["V"] = np.zeros((n_bins, 1 + k))
        out["VV"] = np.zeros((n_bins, 1 + k, 1 + k))
    if "T" in want:
        out["T"] = np.zeros((n_bins, k, k))
    if "TT" in want:
        out["TT"] = np.zeros((n_bins, k * k, k * k))
    if ch.n == 0:
        return out
    w = ch.weights(m[None, :], nu[None, :])[:, 0]
    g = ch.gradients(m[None, :], dm[None, :, :], nu[None, :], w[:, None])[:, 0, :k]
    if binning is None:
        idx = np.zeros(ch.n, np.int64)
    else:
        idx = np.zeros(ch.n, np.int64)
        stride = 1
        for fn, bounds in reversed(binning):
            idx += stride * np.searchsorted(bounds, fn(ch.x))
            stride *= bounds.size + 1
    out["n_events"] += np.bincount(idx, minlength=n_bins)
    v = np.concatenate([w[:, None], g], axis=1)
    pos = w > 0
    out["n_nonpositive"] = int(np.sum(~pos))
    for b in np.unique(idx):
        sel = idx == b
        if "V" in want:
            vb = v[sel]
            out["V"][b] = vb.sum(axis=0)
            out["VV"][b] = vb.T @ vb
        if "T" in want or "TT" in want:
            s2 = sel & pos
            gb = g[s2]
            wb = w[s2]
            per = luminosity * (gb[:, :, None] * gb[:, None, :]) / wb[:, None, None]
            if "T" in want:
                out["T"][b] = per.sum(axis=0)
            if "TT" in want:
                flat = per.reshape(-1, k * k)
                out["TT"][b] = flat.T @ flat
    return out


def combine(results: list) -> dict:
    """Sum the per-chunk outputs of :func:`chunk_moments`."""
    out = {}
    for key in results[0]:
        out[key] = sum(r[key] for r in results)
    return out


def binned_information(
    V: np.ndarray, VV: np.ndarray, luminosity: float, *, covariance: bool = True
):
    """Information L Σ_b g gᵀ/σ_b per bin and summed, with the covariance of the sum.

    Returns ``(info_total (k,k), cov_total (k,k,k,k) or None, info_per_bin (n_bins,k,k), n_empty)``.
    """
    n_bins, kp1 = V.shape
    k = kp1 - 1
    sigma = V[:, 0]
    g = V[:, 1:]
    ok = sigma > 0
    per = np.zeros((n_bins, k, k))
    per[ok] = luminosity * g[ok, :, None] * g[ok, None, :] / sigma[ok, None, None]
    info = per.sum(axis=0)
    cov = None
    if covariance:
        cov = np.zeros((k * k, k * k))
        eye = np.eye(k)
        for b in np.flatnonzero(ok):
            s, gb = sigma[b], g[b]
            jac = np.zeros((k, k, kp1))
            jac[:, :, 1:] = (
                luminosity
                * (eye[:, None, :] * gb[None, :, None] + gb[:, None, None] * eye[None, :, :])
                / s
            )
            jac[:, :, 0] = -luminosity * np.outer(gb, gb) / s**2
            jf = jac.reshape(k * k, kp1)
            cov += jf @ VV[b] @ jf.T
        cov = cov.reshape(k, k, k, k)
    return info, cov, per, int(np.sum(~ok))
