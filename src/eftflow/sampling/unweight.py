"""Unweighting with exact statistics, streamed: draw events with probability ∝ w(x|θ), attach r_xz, t_xz.

Algorithm (for every *request*: draw n events from the sampling point (θ_s, ν_s) of one set)

1. **Pass 1** (:func:`~eftflow.sampling.xsec.point_sums`, one task per chunk): for every
   distinct point (θ, ν, event subset) the cross section σ = Σ w, ∇σ, and for sampling points the
   per-chunk sums P_c = Σ_{i∈c} max(w_i, 0), Σ max(w, 0)² and max w.
2. **Allocation** (driver, seeded): the counts per chunk are one multinomial draw,
   (k_c) ~ Multinomial(n, P_c / Σ_c P_c).
3. **Pass 2** (one task per chunk, its own generator seeded by (seed, chunk)): within chunk c draw
   k_c events i.i.d. with probability max(w_i, 0)/P_c (inverse CDF on the cumulative sum with
   sorted uniforms, or rejection against max w when that needs few candidates), then gather the
   drawn rows only.

Memory and I/O: with in-process workers (threads, the default) a
:class:`~eftflow.sampling.weights.ChunkCache` keeps the chunks read in pass 1 — and, for up to
four sampling points, their cumulative weights — for pass 2, up to ``memory_mb``/2 in all, so a
partition that fits is read once; an output of up to ``memory_mb``/2 is shuffled in memory and
written directly. Beyond these bounds chunks are read again and rows go through part files on
disk, so memory never grows with the store (nor with the sample size). Chunks are read straight
from the chunk files where the store layout allows (:mod:`eftflow.sampling.weights`).

Steps 2+3 give exactly n i.i.d. draws from the categorical distribution p_i = max(w_i,0)/Σ max(w,0)
over all events of the partition, i.e. what MadMiner's single in-memory pass does (events repeat:
draws are with replacement). Events with negative weight at the sampling point are never drawn
(MadMiner's policy); they are counted and reported, and they still enter σ(θ) (the cross section
is the signed sum). A sampling point whose weights are all zero or negative is an error.

For each drawn event the augmented data are computed from its weights at all points of its set:
r_xz(θ0, θ1) = [w(θ0)/σ(θ0)] / [w(θ1)/σ(θ1)] and t_xz(θ) = ∇w(θ)/w(θ) − ∇σ(θ)/σ(θ) (θ and, with
``nuisance_score``, ν components), σ from pass 1 on the same events as the sampling (the closest
benchmark's subset when that is on, as in MadMiner).

Statistics reported per sampling point: Kish's effective sample size ESS = (Σ w)²/Σ w² over the
positive weights, MadMiner's 1/max(p), the number of negative-weight events; and over all, the
number of distinct events used. Requesting far more samples than the ESS just repeats events.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.sampling.output import part_path, write_training_set
from eftflow.sampling.parallel import map_chunks
from eftflow.sampling.weights import Chunk, ChunkCache, WeightModel, load_chunk
from eftflow.sampling.xsec import point_sums

__all__ = ["Request", "Plan", "run_plan", "held_out_events"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """Draw ``n`` events at role ``sampling_role`` of a set whose points are ``points`` (one per role).

    ``templates``: output rows per drawn event, ``(numerator role, denominator role or -1, y)``.
    """

    points: tuple
    sampling_role: int
    n: int
    templates: tuple


@dataclass
class Plan:
    """Distinct points (θ, ν, subset) and the requests that draw from them."""

    thetas: np.ndarray
    nus: np.ndarray
    subsets: list
    requests: list
    mode: str  # "single" (x, theta[, t_xz]) or "pair" (x, theta0, theta1, y, r_xz[, t_xz0, t_xz1])
    score: bool
    theta_out: np.ndarray  # (n_points, n_p [+ n_nu]) values written to theta arrays
    score_nuisance: bool = False  # joint scores also with respect to ν
    held_fraction: float = 0.0  # events held out for validation (their rows last in the set)


def _augment(ch: Chunk, ii, pts, M, dM, NU, xsec, grad, need_score: bool):
    """Weights and joint scores at every point of a set for the drawn rows ``ii``."""
    sub = ch.take(ii)
    nominal = sub.a.shape[0] == 0 or not np.any(NU[pts])
    w = sub.W @ M[pts].T if nominal else sub.weights(M[pts], NU[pts])  # (k, n_roles)
    t = None
    if need_score:
        if sub.a.shape[0] == 0:  # (k, n_roles, n_p) as one matrix product
            d = dM[pts]
            g = (sub.W @ d.reshape(-1, d.shape[2]).T).reshape(-1, d.shape[0], d.shape[1])
        else:
            g = sub.gradients(M[pts], dM[pts], NU[pts], w)  # (k, n_roles, n_g)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = g / w[:, :, None] - (grad[pts] / xsec[pts][:, None])[None, :, :]
    return w, t


def _sorted_uniforms(rng, k: int) -> np.ndarray:
    """k i.i.d. U(0, 1) values in increasing order (normalised exponential spacings, O(k))."""
    e = np.cumsum(rng.standard_exponential(k + 1))
    return e[:k] / e[k]


def _rejection(ch: Chunk, m, nu, k: int, cmax: float, total: float, rng) -> np.ndarray:
    """k i.i.d. positions with probability max(w, 0)/total: rejection with envelope ``cmax``."""
    n = ch.n
    out = []
    need = k
    while need > 0:
        m_c = int(1.2 * need * n * cmax / total) + 16
        cand = rng.integers(0, n, m_c)
        w = ch.take(cand).weights(m, nu)[:, 0]
        ok = cand[rng.random(m_c) * cmax < w][:need]
        out.append(ok)
        need -= ok.size
    return np.concatenate(out)


def _draw_all(ch: Chunk, items, M, NU, rng, cums: dict | None = None) -> list:
    """Positions drawn for each item (request share) of one chunk.

    Rejection sampling (weights evaluated only at candidates) when the expected number of
    candidates k·n·max/Σ is below n/10; otherwise inverse CDF on the cumulative sum (sorted
    uniforms), computed for up to 64 points at once (or kept from pass 1 in ``cums``, by point).
    Both are exact; the order of the draws is irrelevant, as the output is shuffled.
    """
    cums = cums or {}
    n = ch.n
    out: list = [None] * len(items)
    dense = []
    for j, (pts, role, k, _templates, cmax, total) in enumerate(items):
        if k * n * cmax / total < 0.1 * n:
            s = pts[role]
            out[j] = _rejection(ch, M[s : s + 1], NU[s : s + 1], k, cmax, total, rng)
        else:
            dense.append(j)
    for j in [j for j in dense if items[j][0][items[j][1]] in cums]:
        cum = cums[items[j][0][items[j][1]]]
        u = _sorted_uniforms(rng, items[j][2]) * cum[-1]
        out[j] = np.minimum(np.searchsorted(cum, u, side="right"), n - 1)
    dense = [j for j in dense if out[j] is None]
    for b0 in range(0, len(dense), 64):
        blk = dense[b0 : b0 + 64]
        s = np.array([items[j][0][items[j][1]] for j in blk])
        cum = np.maximum(ch.weights_t(M[s], NU[s]), 0.0)
        np.cumsum(cum, axis=1, out=cum)
        for row, j in enumerate(blk):
            k = items[j][2]
            u = _sorted_uniforms(rng, k) * cum[row, -1]  # sorted: cache-friendly search
            out[j] = np.minimum(np.searchsorted(cum[row], u, side="right"), n - 1)
    return out


def _draw_chunk(
    ctx,
    c,
    i0,
    i1,
    work,
    M,
    dM,
    NU,
    xsec,
    grad,
    theta_out,
    mode,
    score,
    n_score,
    tmpdir,
    seed,
    dtype="float64",
    cache=None,
    held=0.0,
):
    """Draw and augment the rows of chunk ``c``: ``(c, n_rows, n_distinct, arrays or None)``.

    ``held`` > 0: every row also gets ``_held`` (1 for the rows of events held out for
    validation, :func:`held_out_events`).

    With ``tmpdir`` the rows go to part files (:func:`~eftflow.sampling.output.part_path`) and
    ``arrays`` is None; without, they are returned (in ``dtype``).
    """
    rng = np.random.default_rng(
        np.random.SeedSequence([int(s) for s in np.atleast_1d(seed)] + [1, int(c)])
    )
    rows: dict[str, list] = {}
    seen = np.zeros(i1 - i0, bool)  # events of the chunk drawn at least once

    def add(name, arr):
        rows.setdefault(name, []).append(np.asarray(arr, dtype=dtype))

    for subset, items in work:
        if cache is None:
            ch = load_chunk(ctx, i0, i1, subset, with_x=True)
        else:
            ch = cache.get(ctx, i0, i1, subset, with_x=True)
        if ch.n == 0 or not all(
            it[5] > 0 for it in items
        ):  # pragma: no cover - excluded by the allocation
            raise InputError(
                f"chunk {i0}-{i1} has no positive weight but was allocated draws", file=ctx.path
            )
        cums = {}
        if cache is not None:
            for it in items:
                s = it[0][it[1]]
                cum = cache.get_extra((i0, i1, subset, "cum", s))
                if cum is not None:
                    cums[s] = cum
        drawn = _draw_all(ch, items, M, NU, rng, cums)
        for (q_points, _role, k, templates, _cmax, _total), ii in zip(items, drawn):
            seen[ch.index[ii] - i0] = True
            pts = np.asarray(q_points)
            w, t = _augment(ch, ii, pts, M, dM, NU, xsec, grad, score)
            p = w / xsec[pts][None, :]
            x = ch.x.take(ii, axis=0)
            flags = held_out_events(ch.index[ii], seed, held)[:, None] if held > 0 else None
            for num, den, y in templates:
                add("x", x)
                if flags is not None:
                    add("_held", flags)
                if mode == "single":
                    add("theta", np.broadcast_to(theta_out[pts[num]], (k, theta_out.shape[1])))
                    if score:
                        add("t_xz", t[:, num, :n_score])
                    continue
                add("theta0", np.broadcast_to(theta_out[pts[num]], (k, theta_out.shape[1])))
                add("theta1", np.broadcast_to(theta_out[pts[den]], (k, theta_out.shape[1])))
                add("y", np.full((k, 1), float(y)))
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = p[:, num] / p[:, den]
                n_bad = int(np.count_nonzero(~((r > 0) & np.isfinite(r))))
                if n_bad:  # a weight <= 0 at one θ of the pair (negative-weight samples)
                    log.warning(
                        "events %d-%d: %d of %d rows get r_xz <= 0 or infinite (an event weight "
                        "<= 0 at θ0 or θ1); ratio training refuses such rows",
                        i0, i1, n_bad, len(r),
                    )  # fmt: skip
                add("r_xz", r[:, None])
                if score:
                    add("t_xz0", t[:, num, :n_score])
                    add("t_xz1", t[:, den, :n_score])
    n_distinct = int(np.count_nonzero(seen))
    arrays = {name: np.concatenate(pieces) for name, pieces in rows.items()}
    n_rows = next(iter(arrays.values())).shape[0] if arrays else 0
    if tmpdir is None:
        return c, n_rows, n_distinct, arrays
    for name, arr in arrays.items():
        np.save(part_path(tmpdir, c, name), arr)
    return c, n_rows, n_distinct, None


def held_out_events(index: np.ndarray, seed, fraction: float) -> np.ndarray:
    """1.0 for the events (global store indices) held out for validation, else 0.0: a fraction
    ``fraction`` of the events, chosen by a hash of the index and ``seed`` (splitmix64), so the
    same event is held out wherever and however often it is drawn."""
    s = np.uint64(int(np.atleast_1d(seed)[0]) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = (np.asarray(index, np.uint64) ^ s) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (u < fraction).astype(np.float64)


def run_plan(
    model: WeightModel,
    plan: Plan,
    output,
    *,
    seed: int,
    method: str,
    n_workers: int = 1,
    scheduler=None,
    dtype: str = "float32",
    chunk_rows: int = 100_000,
    min_effective_samples: float = 10.0,
    tmp_dir=None,
    extra_attrs: dict | None = None,
    memory_mb: float = 256.0,
) -> dict:
    """Execute a plan: pass 1, allocation, pass 2, shuffled merge into ``output`` (zarr).

    With in-process workers (threads or serial), up to ``memory_mb``/2 MB of chunks read in
    pass 1 are kept for pass 2 (a partition that fits is read once), and an output of up to
    ``memory_mb``/2 MB is shuffled in memory; beyond that, chunks are read again and the rows go
    through part files (``tmp_dir``, default: next to the output). Memory is bounded either way.

    Returns the summary dict (also stored as the ``summary`` attribute of the output).
    """
    in_process = scheduler is None or (
        isinstance(scheduler, str) and scheduler in ("sync", "threads")
    )
    cache = ChunkCache(memory_mb / 2 if in_process else 0)
    try:
        return _run_plan(
            model, plan, output, seed=seed, method=method, n_workers=n_workers,
            scheduler=scheduler, dtype=dtype, chunk_rows=chunk_rows,
            min_effective_samples=min_effective_samples, tmp_dir=tmp_dir, extra_attrs=extra_attrs,
            cache=cache if in_process else None, memory_mb=memory_mb if in_process else 0.0,
        )  # fmt: skip
    finally:
        cache.clear()


def _run_plan(
    model, plan, output, *, seed, method, n_workers, scheduler, dtype, chunk_rows,
    min_effective_samples, tmp_dir, extra_attrs, cache, memory_mb,
) -> dict:  # fmt: skip
    n_pts = plan.thetas.shape[0]
    sampling = np.zeros(n_pts, bool)
    for r in plan.requests:
        sampling[r.points[r.sampling_role]] = True
    sums = point_sums(
        model,
        plan.thetas,
        plan.nus,
        subsets=plan.subsets,
        gradients=plan.score,
        sampling=sampling,
        n_workers=n_workers,
        scheduler=scheduler,
        cache=cache,
    )
    xsec = sums["xsec"]
    where = f"augmentation.{method}"
    for i in np.flatnonzero(sampling):
        if sums["n_events"][i] == 0:
            raise InputError(
                f"no events in partition {model.partition!r} to sample θ = {plan.thetas[i].tolist()} from",
                file=model.ctx.path,
                field=f"attrs.partitions.{model.partition}",
            )
        if not sums["pos"][i] > 0:
            raise InputError(
                f"all event weights at θ = {plan.thetas[i].tolist()} are zero or negative: cannot sample there",
                file=model.ctx.path,
                field="weights",
            )
    used_pts = np.array(sorted({int(p) for r in plan.requests for p in r.points}), np.int64)
    bad = used_pts[~(xsec[used_pts] > 0)]
    if bad.size:
        raise InputError(
            f"cross section at θ = {plan.thetas[bad[0]].tolist()} is {xsec[bad[0]]:.4g} pb (not positive): "
            "joint ratios and scores are undefined there",
            file=model.ctx.path,
            field="weights",
        )
    ess = np.where(
        sampling,
        sums.get("pos", np.zeros(n_pts)) ** 2
        / np.maximum(sums.get("pos2", np.ones(n_pts)), 1e-300),
        np.nan,
    )
    n_eff_madminer = np.where(
        sampling,
        sums.get("pos", np.zeros(n_pts)) / np.maximum(sums.get("max", np.ones(n_pts)), 1e-300),
        np.nan,
    )
    too_small = np.flatnonzero(sampling & (ess < min_effective_samples))
    if too_small.size:
        i = too_small[0]
        raise InputError(
            f"partition {model.partition!r} is too small for θ = {plan.thetas[i].tolist()}: effective sample size "
            f"{ess[i]:.3g} < {min_effective_samples} (min_effective_samples); use more events or a larger split",
            file=model.ctx.path,
            field=f"{where}.min_effective_samples",
        )
    # allocation over chunks
    ss = np.random.SeedSequence([int(seed), 0])
    rng = np.random.default_rng(ss)
    ranges = sums["chunks"]
    chunk_pos = sums["chunk_pos"]
    chunk_max = sums["chunk_max"]
    n_chunks = len(ranges)
    per_chunk: list[dict] = [{} for _ in range(n_chunks)]
    n_requested = np.zeros(n_pts, np.int64)
    for r in plan.requests:
        s = r.points[r.sampling_role]
        n_requested[s] += r.n
        probs = chunk_pos[:, s] / chunk_pos[:, s].sum()
        counts = rng.multinomial(r.n, probs)
        subset = plan.subsets[s]
        for c in np.flatnonzero(counts):
            per_chunk[c].setdefault(subset, []).append(
                (
                    tuple(r.points),
                    r.sampling_role,
                    int(counts[c]),
                    r.templates,
                    float(chunk_max[c, s]),
                    float(chunk_pos[c, s]),
                )
            )
    lots = n_requested > ess
    if np.any(lots & sampling):
        log.warning(
            "%d sampling point(s) request more samples than their effective sample size (worst: %d requested, "
            "ESS %.1f): events will repeat",
            int(np.sum(lots & sampling)),
            int(n_requested[lots][0]),
            float(ess[lots][0]),
        )
    M = model.theta_matrix(plan.thetas)
    dM = model.dtheta_matrix(plan.thetas) if plan.score else None
    NU = model.check_nu(plan.nus, n_pts)
    grad = sums.get("gradient")
    n_score = model.n_parameters + (model.n_nuisance if plan.score_nuisance else 0)
    output = Path(output)
    names = (
        ["x", "theta", "t_xz"]
        if plan.mode == "single"
        else ["x", "theta0", "theta1", "y", "r_xz", "t_xz0", "t_xz1"]
    )
    if not plan.score:
        names = [n for n in names if not n.startswith("t_xz")]
    n_obs = len(model.store.observable_names)
    n_t, n_s = plan.theta_out.shape[1], n_score if plan.score else 0
    width = n_obs + (2 * n_t + 2 + 2 * n_s if plan.mode == "pair" else n_t + n_s)
    n_rows = sum(r.n * len(r.templates) for r in plan.requests)
    in_memory = n_rows * width * np.dtype(dtype).itemsize <= memory_mb / 2 * 2**20
    tmp = None
    if not in_memory:
        parent = Path(tmp_dir) if tmp_dir is not None else output.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{output.name}.parts-"))
    try:
        args = [
            (model.ctx, c, i0, i1, [(k, v) for k, v in per_chunk[c].items()], M, dM, NU, xsec, grad,
             plan.theta_out, plan.mode, plan.score, n_score, None if tmp is None else str(tmp), seed,
             dtype, cache, plan.held_fraction)
            for c, (i0, i1) in enumerate(ranges)
            if per_chunk[c]
        ]  # fmt: skip
        done = map_chunks(
            _draw_chunk, args, n_workers=n_workers, scheduler=scheduler, label="sampling chunks"
        )
        if cache is not None:
            cache.clear()
        s_pts = np.flatnonzero(sampling)
        summary = {
            "method": method,
            "partition": model.partition,
            "seed": int(seed),
            "n_samples": int(sum(d[1] for d in done)),
            "n_draws": int(sum(r.n for r in plan.requests)),
            "n_distinct_events": int(sum(d[2] for d in done)),
            "n_events_partition": int(model.stop - model.start),
            "n_sampling_points": int(s_pts.size),
            "ess_min": float(np.min(ess[s_pts])),
            "ess_mean": float(np.mean(ess[s_pts])),
            "ess_max": float(np.max(ess[s_pts])),
            "n_eff_madminer_min": float(np.min(n_eff_madminer[s_pts])),
            "n_negative_weight_events_max": int(np.max(sums["n_neg"][s_pts])),
            "sampling_points": {
                "theta": plan.thetas[s_pts].tolist(),
                "nu": np.asarray(plan.nus)[s_pts].tolist(),
                "subset": [plan.subsets[i] for i in s_pts],
                "xsec_pb": xsec[s_pts].tolist(),
                "xsec_error_pb": sums["xsec_error"][s_pts].tolist(),
                "ess": ess[s_pts].tolist(),
                "n_eff_madminer": n_eff_madminer[s_pts].tolist(),
                "n_negative_weight_events": sums["n_neg"][s_pts].tolist(),
                "n_requested": n_requested[s_pts].tolist(),
            },
            "algorithm": "two-pass multinomial-by-chunk unweighting (see eftflow.sampling.unweight)",
        }
        from eftflow.store.events import make_provenance

        store_attrs = model.store.attrs
        attrs = {
            "method": method,
            "observable_names": model.store.observable_names,
            "parameter_names": model.parameter_names,
            "nuisance_names": model.nuisance_names,
            "summary": summary,
            # the setup the store was combined with: trainers check a setup file against it
            "setup_hash": store_attrs.get("setup_hash"),
            "provenance": make_provenance(
                stage="augment_samples",
                method=method,
                seed=int(seed),
                input=str(model.store.path),
                input_shuffle_seed=store_attrs.get("shuffle_seed"),
                setup_hash=store_attrs.get("setup_hash"),
            ),
            **(extra_attrs or {}),
        }
        attrs = {k: v for k, v in attrs.items() if v is not None}
        if plan.held_fraction > 0:
            attrs["held_out"] = {"fraction": plan.held_fraction}
        write_training_set(
            output,
            [(tmp, c, n) if tmp is not None else arrays for c, n, _, arrays in done],
            names + (["_held"] if plan.held_fraction > 0 else []),
            seed=[int(seed), 2],
            chunk_rows=chunk_rows,
            dtype=dtype,
            attrs=attrs,
            hold="_held" if plan.held_fraction > 0 else None,
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "%s: %d samples from %d distinct events; ESS min %.1f mean %.1f over %d sampling point(s)",
        method,
        summary["n_samples"],
        summary["n_distinct_events"],
        summary["ess_min"],
        summary["ess_mean"],
        summary["n_sampling_points"],
    )
    return summary
