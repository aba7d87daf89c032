"""Per-event weights w(x|θ, ν) and their gradients, chunk by chunk (the numerics under sampling and Fisher).

For an event with benchmark weights W_b (pb, store column order mapped to the setup's physics
benchmarks), sampling id s, nuisance coefficients a_i, b_i:

    w(θ, ν) = k_s / f · Σ_b m_b(θ) W_b · exp(Σ_i a_i ν_i + b_i ν_i²)
    ∂w/∂θ_p = k_s / f · Σ_b ∂_p m_b(θ) W_b · exp(...)
    ∂w/∂ν_i = w · (a_i + 2 b_i ν_i)

* m(θ), ∂m(θ): the setup's morphing weights and gradients (benchmark one-hot without morphing).
* f: the fraction of the store's events in the partition read (:mod:`eftflow.sampling.partitions`).
* k_s: MadMiner's mixing factor n_s/Σn for events generated at benchmark s (1 for background),
  applied when all events are used (``subset=None``). With ``subset=b`` (MadMiner's
  ``sample_only_from_closest_benchmark``) only events with s = b or s = −1 are used, unscaled:
  each generated sample on its own estimates the full cross section.
* a, b: MadMiner's nuisance morphing (:mod:`eftflow.physics.nuisance`) with the reference
  benchmark's weight as nominal (the setup's ``is_reference`` benchmark, else the first).

Cross sections are Σ over events of w, with statistical error sqrt(Σ w²) (weights already scaled
by 1/f, so this is sqrt(Σ w_raw²)/f as for MadMiner).

:class:`WeightModel` is built once on the driver from a store and a setup; its
:class:`ChunkContext` is a small picklable object that tasks use to load and process one chunk
(:func:`load_chunk`). Reading: where the store has the layout that
:class:`~eftflow.store.events.EventStoreWriter` writes (zarr v3, Blosc, whole rows per chunk),
chunk files are decompressed straight into the arrays (about half the CPU of a zarr read and no hand-offs to zarr's event-loop thread); any other
layout is read through zarr. Only the columns needed are read (weights, sampling ids, and the
observables or nuisance weights when asked for).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eftflow.errors import InputError, MorphingError
from eftflow.sampling.partitions import partition_bounds
from eftflow.store.events import check_finite

__all__ = ["WeightModel", "ChunkContext", "Chunk", "ChunkCache", "load_chunk", "open_store"]

log = logging.getLogger(__name__)

_STORES: dict = {}
_ARRAYS: dict = {}


def open_store(path: str):
    """The :class:`~eftflow.store.events.EventStore` at ``path`` (cached per process)."""
    from eftflow.store.events import EventStore

    meta = Path(path) / "zarr.json"
    key = (path, meta.stat().st_mtime_ns if meta.exists() else None)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = EventStore(path)
    return store


@dataclass
class ChunkContext:
    """Everything a chunk task needs (small numpy arrays; picklable)."""

    path: str
    columns: np.ndarray  # store weight column of each setup physics benchmark
    factors: np.ndarray  # mixing factor by sampling id (index -1 = background)
    fraction: float
    nu_pos: list  # store nuisance-weight column at ν_i=+1 (or None)
    nu_neg: list  # ... at ν_i=−1 (or None)
    ref_column: int  # store weight column of the nominal (reference) benchmark
    include_nuisance: bool = True
    #: balanced draws (:mod:`eftflow.sampling.balance`): (observable column, edges, factors);
    #: every event's weights are multiplied by the factor of its bin
    balance: tuple | None = None

    @property
    def n_nuisance(self) -> int:
        return len(self.nu_pos) if self.include_nuisance else 0


@dataclass
class Chunk:
    """One chunk of events after selection and scaling."""

    start: int
    index: np.ndarray  # global event indices (selected)
    W: np.ndarray  # (n, n_b) scaled benchmark weights, setup order
    x: np.ndarray | None  # (n, n_obs)
    a: np.ndarray  # (n_nu, n)
    b: np.ndarray  # (n_nu, n)

    @property
    def n(self) -> int:
        return self.W.shape[0]

    def take(self, rows, *, with_x: bool = False) -> Chunk:
        """The events at positions ``rows`` (an index array or a slice) as a new chunk."""
        if isinstance(rows, slice):
            x = None if self.x is None or not with_x else self.x[rows]
            return Chunk(
                self.start, self.index[rows], self.W[rows], x, self.a[:, rows], self.b[:, rows]
            )
        x = None if self.x is None or not with_x else self.x.take(rows, axis=0)
        return Chunk(
            self.start,
            self.index.take(rows),
            self.W.take(rows, axis=0),  # take: several times faster than fancy indexing
            x,
            self.a.take(rows, axis=1),
            self.b.take(rows, axis=1),
        )

    def factors(self, nus: np.ndarray) -> np.ndarray | None:
        """exp(aᵀν + bᵀν²): (n, n_points), or None when ν has no components or is all zero."""
        if self.a.shape[0] == 0 or not np.any(nus):
            return None
        return np.exp(self.a.T @ nus.T + self.b.T @ (nus * nus).T)

    def weights(self, m: np.ndarray, nus: np.ndarray | None = None) -> np.ndarray:
        """w for points with morphing rows ``m`` (n_points, n_b) → (n, n_points)."""
        w = self.W @ m.T
        if nus is not None:
            f = self.factors(nus)
            if f is not None:
                w *= f
        return w

    def weights_t(self, m: np.ndarray, nus: np.ndarray | None = None) -> np.ndarray:
        """Like :meth:`weights` but transposed, (n_points, n) (fast row-wise reductions)."""
        w = m @ self.W.T
        if nus is not None:
            f = self.factors(nus)
            if f is not None:
                w *= f.T
        return w

    def gradients(self, m, dm, nus, w=None) -> np.ndarray:
        """∇w → (n, n_points, n_p + n_nu) (ν components only if the context has nuisances)."""
        n_pts, n_p, n_b = dm.shape
        g = np.einsum("eb,kpb->ekp", self.W, dm)
        f = self.factors(nus) if nus is not None else None
        if f is not None:
            g *= f[:, :, None]
        if self.a.shape[0] == 0:
            return g
        w = self.weights(m, nus) if w is None else w
        gn = w[:, :, None] * (self.a.T[:, None, :] + 2.0 * self.b.T[:, None, :] * nus[None, :, :])
        return np.concatenate([g, gn], axis=2)


def _array(path: str, name: str):
    """The zarr array ``name`` of the store at ``path`` (handle cached per process)."""
    store = open_store(path)
    key = (id(store), name)
    arr = _ARRAYS.get(key)
    if arr is None:
        arr = _ARRAYS[key] = store.array(name)
    return arr


def _read(path: str, name: str, i0: int, i1: int) -> np.ndarray:
    """Rows [i0, i1) of array ``name`` (chunk files read directly where possible, else zarr)."""
    key = (id(open_store(path)), name, "files")
    if key not in _ARRAYS:
        _ARRAYS[key] = open_store(path).chunk_files(name)
    try:
        direct = _ARRAYS[key]
        if direct is not None:
            return direct.read(i0, i1)
        return np.asarray(_array(path, name)[i0:i1])
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            f"cannot read rows {i0}:{i1} ({err}): the store is damaged", file=path, field=name
        ) from None


def load_chunk(
    ctx: ChunkContext, i0: int, i1: int, subset: int | None, *, with_x: bool = False
) -> Chunk:
    """Read events [i0, i1) and select/scale them (``subset``: MadMiner's closest-benchmark mode)."""
    need_nu = ctx.include_nuisance and len(ctx.nu_pos) > 0
    sb = _read(ctx.path, "sampling_benchmark", i0, i1)
    raw = _read(ctx.path, "weights", i0, i1)
    check_finite(raw, file=ctx.path, field="weights", start=i0)
    sel = slice(None)
    if subset is None:
        if sb.size and sb.min() == sb.max():  # one sample: one factor
            factor = float(ctx.factors[sb[0]]) / ctx.fraction
        else:
            factor = (ctx.factors[sb] / ctx.fraction)[:, None]
    else:
        mask = (sb == subset) | (sb < 0)
        if not mask.all():
            sel = np.flatnonzero(mask)
        factor = 1.0 / ctx.fraction
    index = np.arange(i0, i1) if isinstance(sel, slice) else i0 + sel
    if not isinstance(sel, slice):
        raw = raw[sel]
    nominal = raw[:, ctx.ref_column].copy() if need_nu else None
    if ctx.columns.size == raw.shape[1] and np.array_equal(ctx.columns, np.arange(raw.shape[1])):
        W = raw if raw.flags.writeable and raw.flags.c_contiguous else raw.copy()
    else:
        W = raw[:, ctx.columns]
    W *= factor
    x = _read(ctx.path, "observables", i0, i1)[sel] if with_x or ctx.balance else None
    if ctx.balance is not None:
        from eftflow.sampling.balance import bin_of

        j, edges, c = ctx.balance
        W *= np.asarray(c)[bin_of(x[:, j], edges)][:, None]
        if not with_x:
            x = None
    if need_nu:
        from eftflow.physics.nuisance import nuisance_coefficients

        nw = _read(ctx.path, "nuisance_weights", i0, i1)
        check_finite(nw, file=ctx.path, field="nuisance_weights", start=i0)
        nw = nw[sel]
        pos = [nw[:, j] for j in ctx.nu_pos]
        neg = [None if j is None else nw[:, j] for j in ctx.nu_neg]
        try:
            a, b = nuisance_coefficients(nominal, pos, neg)
        except InputError as err:
            raise InputError(
                f"events {i0}-{i1}: {err.message}", file=ctx.path, field="nuisance_weights"
            ) from None
    else:
        a = b = np.zeros((0, W.shape[0]))
    return Chunk(i0, index, W, x, a, b)


class ChunkCache:
    """Chunks kept in memory between the passes of one operation, up to ``budget_mb`` in all.

    The unweighting reads each chunk twice (sums, then draws); a partition that fits in the budget
    is read once. Beyond the budget chunks are re-read, so memory stays bounded whatever the store
    size. Thread-safe; for in-process use only (never sent to Dask workers).
    """

    def __init__(self, budget_mb: float = 128.0):
        self.budget = int(budget_mb * 2**20)
        self.used = 0
        self.full = self.budget <= 0
        self._chunks: dict = {}
        self._lock = threading.Lock()

    def get(self, ctx: ChunkContext, i0: int, i1: int, subset, *, with_x: bool = False) -> Chunk:
        """The chunk from the cache, or read (with x while there is room, kept if it fits)."""
        key = (i0, i1, subset)
        ch = self._chunks.get(key)
        if ch is not None and (ch.x is not None or not with_x):
            return ch
        ch = load_chunk(ctx, i0, i1, subset, with_x=with_x or not self.full)
        size = sum(a.nbytes for a in (ch.index, ch.W, ch.x, ch.a, ch.b) if a is not None)
        with self._lock:
            if self.used + size <= self.budget and key not in self._chunks:
                self._chunks[key] = ch
                self.used += size
            elif key not in self._chunks:
                self.full = True
        return ch

    def put_extra(self, key: tuple, value: np.ndarray) -> None:
        """Keep an array derived from the cached chunk ``key[:3]`` (if that chunk is cached)."""
        with self._lock:
            if key[:3] in self._chunks and self.used + value.nbytes <= self.budget:
                self._chunks[key] = value
                self.used += value.nbytes

    def get_extra(self, key: tuple):
        """An array kept by :meth:`put_extra`, or None."""
        return self._chunks.get(key)

    def clear(self) -> None:
        """Drop every cached chunk."""
        with self._lock:
            self._chunks.clear()
            self.used = 0


class WeightModel:
    """Weights of a store's events at any (θ, ν) for a setup, per partition.

    Parameters
    ----------
    store
        :class:`~eftflow.store.events.EventStore` or its path.
    setup
        :class:`~eftflow.setup.EFTSetup` (or a setup-file path).
    partition
        ``train``, ``validation``, ``test`` or ``all``.
    include_nuisance
        Use the setup's nuisance parameters (if the store has nuisance weights).
    setup_file
        Path of the setup file: checked against the store's ``setup_hash`` attribute if both exist.
    """

    def __init__(
        self,
        store,
        setup,
        *,
        partition: str = "all",
        include_nuisance: bool = True,
        setup_file=None,
        balance=None,
    ):
        from eftflow.setup import EFTSetup
        from eftflow.store.combine import sampling_factors, setup_fingerprint
        from eftflow.store.events import EventStore

        if not hasattr(setup, "parameter_names"):
            setup_file = setup if setup_file is None else setup_file
            setup = EFTSetup.from_file(setup)
        self.store = store if isinstance(store, EventStore) else open_store(str(store))
        self.setup = setup
        path = str(self.store.path)
        if setup_file is not None and self.store.attrs.get("setup_hash") is not None:
            if setup_fingerprint(setup_file) != self.store.attrs["setup_hash"]:
                raise InputError(
                    f"store was made with a different setup than {setup_file} (setup_hash differs)",
                    file=path,
                    field="attrs.setup_hash",
                )
        self.parameter_names = list(setup.parameter_names)
        phys = setup.physics_benchmarks()
        self.benchmark_names = [b.name for b in phys]
        self.benchmark_values = setup.benchmark_array()
        missing = [n for n in self.benchmark_names if n not in self.store.benchmark_names]
        if missing:
            raise InputError(
                f"store lacks weights for benchmark(s) {', '.join(missing)} of the setup "
                f"(store has {', '.join(self.store.benchmark_names)}): store and setup do not match",
                file=path,
                field="attrs.benchmark_names",
            )
        columns = np.array(
            [self.store.benchmark_names.index(n) for n in self.benchmark_names], np.int64
        )
        try:
            self.morpher = setup.morpher
        except MorphingError:
            self.morpher = None
        self.partition = partition
        self.start, self.stop, self.fraction = partition_bounds(self.store, partition)
        factors = sampling_factors(self.store)
        counts = self.store.attrs.get("signal_events")
        if counts is None:
            counts = self._count_ids()
        self.signal_events = np.asarray(counts, np.int64)
        # nuisance parameters
        nu_names = self.store.nuisance_benchmark_names or []
        self.nuisance_names: list[str] = []
        pos, neg = [], []
        if include_nuisance and setup.nuisance_parameters and nu_names:
            for nu in setup.nuisance_parameters.values():
                lacking = [
                    b
                    for b in (nu.benchmark_positive, nu.benchmark_negative)
                    if b is not None and b not in nu_names
                ]
                if lacking:  # the analysis left it out (and said so): so do we
                    log.warning(
                        "%s has no weights of nuisance benchmark(s) %s (it has %s): nuisance "
                        "parameter %s left out",
                        path,
                        ", ".join(lacking),
                        ", ".join(nu_names),
                        nu.name,
                    )
                    continue
                if nu.benchmark_positive is None:
                    continue
                self.nuisance_names.append(nu.name)
                pos.append(nu_names.index(nu.benchmark_positive))
                neg.append(
                    None if nu.benchmark_negative is None else nu_names.index(nu.benchmark_negative)
                )
        elif include_nuisance and setup.nuisance_parameters and not nu_names:
            log.warning(
                "setup declares nuisance parameters but %s has no nuisance weights: ignored", path
            )
        ref_name = setup.reference_benchmark
        self.reference_benchmark = ref_name
        self.ctx = ChunkContext(
            path=path,
            columns=columns,
            factors=factors,
            fraction=self.fraction,
            nu_pos=pos,
            nu_neg=neg,
            ref_column=self.store.benchmark_names.index(ref_name),
            include_nuisance=bool(pos),
        )
        self.balance_record = None
        if balance is not None:
            self._set_balance(balance)

    def _set_balance(self, balance) -> None:
        """Multiply every event's weights by c(x) (:mod:`eftflow.sampling.balance`)."""
        from eftflow.sampling.balance import (
            balance_record,
            bin_cross_sections,
            observable_index,
            resolve_factors,
        )

        j = observable_index(self, balance)
        sigma, sum_w2 = bin_cross_sections(self, balance)
        factors, ref = resolve_factors(
            balance, sigma, self.benchmark_names, self.reference_benchmark
        )
        self.balance_record = balance_record(balance, sigma, factors, ref, self, sum_w2)
        self.balance_record["observable_index"] = int(j)
        self.ctx.balance = (j, np.asarray(balance.edges, float), factors)

    def _count_ids(self) -> np.ndarray:
        from eftflow.store.combine import count_sampling

        total = np.zeros(len(self.store.benchmark_names) + 1, np.int64)
        for c in self.store.iter_chunks(["sampling_benchmark"]):
            total += count_sampling(
                c["sampling_benchmark"], len(self.store.benchmark_names), file=str(self.store.path)
            )
        return total[1:]

    # --- parameters --------------------------------------------------------------------------
    @property
    def n_parameters(self) -> int:
        return len(self.parameter_names)

    @property
    def n_nuisance(self) -> int:
        return len(self.nuisance_names)

    @property
    def n_benchmarks(self) -> int:
        return len(self.benchmark_names)

    def check_theta(self, theta, *, field: str = "theta") -> np.ndarray:
        from eftflow.sampling.specs import check_theta_dimension

        return check_theta_dimension(theta, self.n_parameters, field=field)

    def check_nu(self, nu, n_points: int, *, field: str = "nu") -> np.ndarray:
        """ν as (n_points, n_nuisance): None → zeros; a wrong dimension raises InputError."""
        if nu is None:
            return np.zeros((n_points, self.n_nuisance))
        arr = np.atleast_2d(np.asarray(nu, float))
        if arr.shape[1] != self.n_nuisance:
            raise InputError(
                f"ν must have {self.n_nuisance} components ({', '.join(self.nuisance_names) or 'none'}), "
                f"got shape {np.shape(nu)}",
                field=field,
            )
        return np.broadcast_to(arr, (n_points, self.n_nuisance)).copy()

    def theta_matrix(self, theta) -> np.ndarray:
        """Morphing weights m(θ): (n_points, n_benchmarks) in setup order."""
        theta = self.check_theta(theta)
        if self.morpher is not None:
            return np.asarray(self.morpher.weights(theta))
        out = np.zeros((theta.shape[0], self.n_benchmarks))
        for i, t in enumerate(theta):
            hit = np.flatnonzero(
                np.all(np.isclose(self.benchmark_values, t, rtol=0, atol=1e-12), axis=1)
            )
            if hit.size == 0:
                raise MorphingError(
                    f"θ = {t.tolist()} is no benchmark and the setup has no morphing", field="theta"
                )
            out[i, hit[0]] = 1.0
        return out

    def dtheta_matrix(self, theta) -> np.ndarray:
        """Gradients ∂m/∂θ: (n_points, n_parameters, n_benchmarks). Needs morphing."""
        theta = self.check_theta(theta)
        if self.morpher is None:
            raise MorphingError(
                "scores and gradients need a morphing setup (set_morphing)", field="morphing"
            )
        return np.asarray(self.morpher.gradients(theta))

    def closest_benchmark(self, theta) -> int:
        """Store column of the physics benchmark closest to θ among those with generated events.

        Sampling ids refer to store columns; returns the id to select (MadMiner's
        ``_find_closest_benchmark``: Euclidean distance, benchmarks without events excluded).
        """
        theta = np.asarray(theta, float).ravel()
        d = np.linalg.norm(self.benchmark_values - theta[None, :], axis=1)
        col = self.ctx.columns
        has = self.signal_events[col] > 0 if self.signal_events.size else np.ones_like(d, bool)
        if not np.any(has):
            raise InputError(
                "no event was generated at any physics benchmark (all sampling ids are -1): cannot sample only "
                "from the closest benchmark",
                file=self.ctx.path,
                field="sampling_benchmark",
            )
        d = d + 1e9 * (~has)
        return int(col[int(np.argmin(d))])

    def chunk_ranges(self, chunk_size: int | None = None) -> list[tuple[int, int]]:
        """Event ranges [i0, i1) covering the partition, aligned to the store's chunks."""
        step = int(chunk_size or _array(self.ctx.path, "weights").chunks[0])
        out = []
        i = self.start
        while i < self.stop:
            j = min((i // step + 1) * step, self.stop)
            out.append((i, j))
            i = j
        return out
