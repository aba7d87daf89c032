"""Cross sections σ(θ, ν) and gradients ∇σ with statistical errors, streamed over a store partition.

σ(θ, ν) = Σ_events w(θ, ν) and its error sqrt(Σ w²), ∂σ/∂θ_p = Σ ∂w/∂θ_p with error
sqrt(Σ (∂w/∂θ_p)²); weights as defined in :mod:`eftflow.sampling.weights` (partition factor 1/f,
mixing factors, nuisance morphing). At ν = 0 the sums come from the per-chunk benchmark moments
S = Σ W and Q = Σ W Wᵀ (σ = m·S, Σ w² = mᵀ Q m), so thousands of θ cost one pass and no per-event
work per θ; at ν ≠ 0 the weights are evaluated per event.

:func:`point_sums` is the shared first pass of the augmentation (it also returns per-chunk sums of
the positive parts of the weights at the sampling points, which the unweighting needs).

Example
-------
With a combined event store and its setup file::

    res = cross_sections("events.zarr", "setup.h5", [[0.0, 0.0], [0.5, 0.0]], partition="train")
    res["xsec"], res["xsec_error"]
"""

from __future__ import annotations

import logging

import numpy as np

from eftflow.sampling.parallel import map_chunks
from eftflow.sampling.specs import warn_outside_parameter_range
from eftflow.sampling.weights import ChunkCache, ChunkContext, WeightModel, load_chunk

__all__ = ["cross_sections", "xsec_gradients", "point_sums", "BLOCK"]

log = logging.getLogger(__name__)

#: θ points processed together per chunk when weights are evaluated per event.
BLOCK = 64
#: Events processed together (keeps the (events × points) block in cache).
ROWS = 8192
#: Up to this many sampling points per chunk, their cumulative weights are kept for the draws.
KEEP_CUMSUM = 4


def _chunk_sums(
    ctx: ChunkContext,
    i0: int,
    i1: int,
    groups: list,
    M: np.ndarray,
    dM: np.ndarray | None,
    NU: np.ndarray,
    sampling: np.ndarray,
    cache: ChunkCache | None = None,
) -> dict:
    """Sums over events [i0, i1) for every point; ``groups`` = [(subset, point indices)]."""
    n_pts = M.shape[0]
    n_nu = NU.shape[1] if ctx.include_nuisance else 0
    n_g = 0 if dM is None else dM.shape[1] + n_nu
    out = {
        "sum_w": np.zeros(n_pts),
        "sum_w2": np.zeros(n_pts),
        "sum_g": np.zeros((n_pts, n_g)),
        "sum_g2": np.zeros((n_pts, n_g)),
        "pos": np.zeros(n_pts),
        "pos2": np.zeros(n_pts),
        "max": np.zeros(n_pts),
        "n_neg": np.zeros(n_pts, np.int64),
        "n_events": np.zeros(n_pts, np.int64),
    }
    for subset, idx in groups:
        ch = load_chunk(ctx, i0, i1, subset) if cache is None else cache.get(ctx, i0, i1, subset)
        if ch.n == 0:
            continue
        out["n_events"][idx] = ch.n
        W = ch.W
        nominal = ~np.any(NU[idx] != 0, axis=1) if n_nu else np.ones(len(idx), bool)
        nom = idx[nominal]
        if nom.size:
            S = np.ones(ch.n) @ W  # BLAS: faster than W.sum(axis=0) on (n, n_b)
            Q = W.T @ W
            m = M[nom]
            out["sum_w"][nom] = m @ S
            out["sum_w2"][nom] = np.einsum("kb,bc,kc->k", m, Q, m)
            if dM is not None:
                d = dM[nom]
                out["sum_g"][nom, : d.shape[1]] = np.einsum("kpb,b->kp", d, S)
                out["sum_g2"][nom, : d.shape[1]] = np.einsum("kpb,bc,kpc->kp", d, Q, d)
                if n_nu:
                    A1 = W.T @ ch.a.T  # (n_b, n_nu)
                    A2 = np.einsum("nb,nc,in->bci", W, W, ch.a * ch.a)
                    out["sum_g"][nom, d.shape[1] :] = m @ A1
                    out["sum_g2"][nom, d.shape[1] :] = np.einsum("kb,bci,kc->ki", m, A2, m)
        other = idx[~nominal]
        for k0 in range(0, other.size, BLOCK // 4):
            blk = other[k0 : k0 + BLOCK // 4]
            w = ch.weights(M[blk], NU[blk])
            out["sum_w"][blk] = w.sum(axis=0)
            out["sum_w2"][blk] = (w * w).sum(axis=0)
            if dM is not None:
                g = ch.gradients(M[blk], dM[blk], NU[blk], w)
                out["sum_g"][blk] = g.sum(axis=0)
                out["sum_g2"][blk] = (g * g).sum(axis=0)
        samp = idx[sampling[idx]]
        rows = max(ROWS, ROWS * BLOCK // max(min(samp.size, BLOCK), 1))  # (points × rows) ≈ 4 MB
        # few sampling points and a cached chunk: keep the cumulative sums for the draws
        keep = cache is not None and samp.size <= KEEP_CUMSUM and rows >= ch.n
        for r0 in range(0, ch.n if samp.size else 0, rows):
            sub = ch.take(slice(r0, r0 + rows))
            for k0 in range(0, samp.size, BLOCK):
                blk = samp[k0 : k0 + BLOCK]
                w = sub.weights_t(
                    M[blk], NU[blk]
                )  # (points, events): row reductions are contiguous
                out["n_neg"][blk] += np.count_nonzero(w < 0, axis=1)
                np.maximum(w, 0.0, out=w)
                out["pos2"][blk] += np.einsum("ij,ij->i", w, w)
                out["max"][blk] = np.maximum(out["max"][blk], w.max(axis=1))
                if keep:
                    np.cumsum(w, axis=1, out=w)
                    out["pos"][blk] += w[:, -1]
                    for row, i in enumerate(blk):
                        cache.put_extra((i0, i1, subset, "cum", int(i)), w[row])
                    continue
                out["pos"][blk] += w.sum(axis=1)
    return out


def point_sums(
    model: WeightModel,
    thetas: np.ndarray,
    nus: np.ndarray | None = None,
    *,
    subsets: list | np.ndarray | None = None,
    gradients: bool = False,
    sampling: np.ndarray | None = None,
    n_workers: int = 1,
    scheduler=None,
    chunk_size: int | None = None,
    cache: ChunkCache | None = None,
) -> dict:
    """One streaming pass: totals per point and, for ``sampling`` points, per-chunk positive sums.

    Parameters
    ----------
    model
        The :class:`~eftflow.sampling.weights.WeightModel` (store, setup, partition).
    thetas, nus
        Points (n_points, n_parameters) and (n_points, n_nuisance) (``None``: nominal).
    subsets
        Per point: ``None`` (all events, mixing factors) or the sampling id to restrict to.
    gradients
        Also sum ∇w (θ and, with nuisances, ν components).
    sampling
        Boolean mask of the points that will be sampled from.
    cache
        Keep the chunks read for a following pass (in-process schedulers only).

    Returns
    -------
    dict
        ``xsec``, ``xsec_error``, ``gradient``, ``gradient_error`` (n_points, ...), and for
        sampling points ``chunk_pos`` (n_chunks, n_points), ``pos``, ``pos2``, ``max``,
        ``n_neg``, ``n_events``; ``chunks`` lists the event ranges.
    """
    thetas = model.check_theta(thetas)
    n_pts = thetas.shape[0]
    NU = model.check_nu(nus, n_pts)
    M = model.theta_matrix(thetas)
    dM = model.dtheta_matrix(thetas) if gradients else None
    subsets = [None] * n_pts if subsets is None else list(subsets)
    sampling = np.zeros(n_pts, bool) if sampling is None else np.asarray(sampling, bool)
    keys = sorted({-2 if s is None else int(s) for s in subsets})
    groups = []
    for key in keys:
        idx = np.array(
            [i for i, s in enumerate(subsets) if (-2 if s is None else int(s)) == key], np.int64
        )
        groups.append((None if key == -2 else key, idx))
    ranges = model.chunk_ranges(chunk_size)
    results = map_chunks(
        _chunk_sums,
        [(model.ctx, i0, i1, groups, M, dM, NU, sampling, cache) for i0, i1 in ranges],
        n_workers=n_workers,
        scheduler=scheduler,
        label="cross-section chunks",
    )
    tot = {
        k: sum(r[k] for r in results)
        for k in ("sum_w", "sum_w2", "sum_g", "sum_g2", "pos", "pos2", "n_neg", "n_events")
    }
    out = {
        "theta": thetas,
        "nu": NU,
        "xsec": tot["sum_w"],
        "xsec_error": np.sqrt(tot["sum_w2"]),
        "n_events": tot["n_events"],
        "chunks": ranges,
    }
    if gradients:
        out["gradient"] = tot["sum_g"]
        out["gradient_error"] = np.sqrt(tot["sum_g2"])
    if np.any(sampling):
        out["chunk_pos"] = np.stack([r["pos"] for r in results])
        out["pos"], out["pos2"], out["n_neg"] = tot["pos"], tot["pos2"], tot["n_neg"]
        out["chunk_max"] = np.stack([r["max"] for r in results])
        out["max"] = out["chunk_max"].max(axis=0)
    return out


def cross_sections(
    store,
    setup,
    theta,
    nu=None,
    *,
    partition: str = "all",
    sample_only_from_closest_benchmark: bool = False,
    gradients: bool = False,
    include_nuisance: bool = True,
    n_workers: int = 1,
    scheduler=None,
    setup_file=None,
) -> dict:
    """σ(θ, ν) in pb with statistical errors at many points (MadMiner's ``cross_sections``).

    Parameters
    ----------
    store, setup
        Event store (or path) and setup (or setup-file path).
    theta
        (n_points, n_parameters) or one point; ν (n_points, n_nuisance) or ``None`` (nominal).
    partition
        ``all`` (default, like MadMiner's ``FisherInformation``), ``train``, ``validation``, ``test``.
    sample_only_from_closest_benchmark
        Use only the events generated at the benchmark closest to each θ (plus background).
    gradients
        Also return ∇σ (θ, then ν components) with errors.

    Returns
    -------
    dict
        ``theta``, ``nu``, ``xsec``, ``xsec_error``, ``n_events`` and optionally ``gradient``,
        ``gradient_error``.
    """
    model = (
        store
        if isinstance(store, WeightModel)
        else WeightModel(
            store,
            setup,
            partition=partition,
            include_nuisance=include_nuisance,
            setup_file=setup_file,
        )
    )
    thetas = model.check_theta(theta)
    warn_outside_parameter_range(thetas, model.setup)
    subsets = (
        [model.closest_benchmark(t) for t in thetas] if sample_only_from_closest_benchmark else None
    )
    res = point_sums(
        model,
        thetas,
        nu,
        subsets=subsets,
        gradients=gradients,
        n_workers=n_workers,
        scheduler=scheduler,
    )
    res.pop("chunks", None)
    return res


def xsec_gradients(store, setup, theta, nu=None, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """∇σ at each θ: (n_points, n_parameters [+ n_nuisance]) and its statistical error."""
    res = cross_sections(store, setup, theta, nu, gradients=True, **kwargs)
    return res["gradient"], res["gradient_error"]
