"""Streaming access to zarr training sets (never loads a whole training set).

A training set is a zarr group with arrays named as MadMiner's: ``x`` (n, n_obs), ``theta0``,
``theta1`` (n, n_p), ``y`` (n,) or (n, 1), ``r_xz`` (n,) or (n, 1), ``t_xz0``, ``t_xz1`` (n, n_p)
— whichever the method needs (:data:`REQUIRED`). The single-θ sets written by
:mod:`eftflow.sampling` (``local``, ``density``, ``plain``) name their arrays ``theta`` and ``t_xz``:
they are read as ``theta0`` and ``t_xz0`` (:data:`ALIASES`).

Batches are drawn by reading contiguous row blocks (whole zarr chunks) in a shuffled order into a
buffer of at most ``buffer_rows`` rows, permuting the buffer once and slicing batches from it
(zero-copy views): memory is bounded by the buffer whatever the size of the set, the read pattern
is sequential within chunks, and the next buffer is read by a background thread while the current
one trains, so reading overlaps with training. The validation split is the last fraction of the
rows (augmented samples are already in random order).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eftflow.errors import InputError

__all__ = ["TrainingSet", "REQUIRED", "ALIASES", "SAMPLE_KINDS"]

log = logging.getLogger(__name__)

#: columns each method needs
REQUIRED = {
    "carl": ("x", "theta0", "y"),
    "rolr": ("x", "theta0", "y", "r_xz"),
    "rascal": ("x", "theta0", "y", "r_xz", "t_xz0"),
    "alice": ("x", "theta0", "y", "r_xz"),
    "alices": ("x", "theta0", "y", "r_xz", "t_xz0"),
    "cascal": ("x", "theta0", "y", "t_xz0"),
    "sally": ("x", "t_xz0"),
    "sallino": ("x", "t_xz0"),
    "nde": ("x", "theta0"),
    "scandal": ("x", "theta0", "t_xz0"),
}
#: kinds of training set (the ``method`` attribute :mod:`eftflow.sampling` writes) each method
#: can train on; a set without that attribute (built by hand) is not checked
SAMPLE_KINDS = {
    **{
        m: ("ratio", "more_ratios") for m in ("carl", "rolr", "rascal", "alice", "alices", "cascal")
    },
    "sally": ("local",),
    "sallino": ("local",),
    "nde": ("density", "plain"),
    "scandal": ("density",),
}
#: what each kind of set is, for messages
KIND_NAMES = {
    "local": "a local score set (augmentation method local: x ~ p(x|θ_ref) with t(x, z|θ_ref))",
    "ratio": "a ratio set (augmentation method ratio: θ0/θ1 pairs with y, r(x, z), t(x, z))",
    "more_ratios": "a ratio set (augmentation method more_ratios)",
    "density": "a density set (augmentation method density: θ from a prior with t(x, z|θ))",
    "plain": "a plain set (augmentation method plain: x ~ p(x|θ))",
    "test": "an evaluation sample (augmentation method test)",
}
#: names in the stored set → the names used here (single-θ sets of eftflow.sampling)
ALIASES = {"theta": "theta0", "t_xz": "t_xz0"}
#: 1-column arrays that are returned 1-d
FLAT = ("y", "r_xz")


class TrainingSet:
    """A zarr training set, read in blocks.

    Parameters
    ----------
    path
        The zarr group (directory).

    Example
    -------
    >>> import numpy as np, tempfile, pathlib, zarr
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.zarr"
    >>> g = zarr.open_group(str(p), mode="w")
    >>> g.create_array("x", shape=(10, 1), chunks=(4, 1), dtype="float32")[:] = np.arange(10.0)[:, None]
    >>> g.create_array("t_xz", shape=(10, 2), chunks=(4, 2), dtype="float32")[:] = 0.0
    >>> ts = TrainingSet(p)
    >>> ts.require("sally"), ts.n
    (('x', 't_xz0'), 10)
    """

    def __init__(self, path):
        import zarr

        self.path = Path(path)
        if not self.path.exists():
            raise InputError("training set does not exist", file=str(self.path))
        try:
            self.group = zarr.open_group(str(self.path), mode="r")
        except Exception as err:
            raise InputError(f"not a zarr training set ({err})", file=str(self.path)) from None
        stored = sorted(self.group.array_keys())
        #: name used here → name stored
        self.stored = {ALIASES.get(k, k): k for k in stored if ALIASES.get(k, k) not in stored}
        self.stored.update({k: k for k in stored})
        self.columns = sorted(self.stored)
        if "x" not in self.columns:
            raise InputError("training set has no array 'x'", file=str(self.path), field="x")
        self.n = int(self.group["x"].shape[0])
        for c in self.columns:
            arr = self.group[self.stored[c]]
            if arr.shape[0] != self.n:
                raise InputError(
                    f"has {arr.shape[0]} rows, 'x' has {self.n}",
                    file=str(self.path),
                    field=self.stored[c],
                )
        self.block = max(int(self.group["x"].chunks[0]), 1)
        self.attrs = dict(self.group.attrs)

    def require(self, method: str, *, doubly: bool = False) -> tuple[str, ...]:
        """The columns ``method`` needs (θ1 too for doubly parameterised ratios); error if missing."""
        if method not in REQUIRED:
            raise InputError(
                f"unknown method {method!r}; known: {', '.join(REQUIRED)}", field="method"
            )
        self.check_kind(method)
        need = REQUIRED[method] + (("theta1",) if doubly else ())
        missing = [c for c in need if c not in self.columns]
        if missing:
            raise InputError(
                f"method {method!r}{' (doubly parameterised)' if doubly else ''} needs the arrays "
                f"{', '.join(need)}; missing: {', '.join(missing)} (has {', '.join(sorted(self.group.array_keys()))})",
                file=str(self.path),
                field=missing[0],
            )
        return need

    def check_kind(self, method: str) -> None:
        """Refuse a set of the wrong kind for ``method`` (``attrs.method``, when recorded).

        SALLY on a ratio set would learn nothing meaningful without complaint (a ratio set has
        ``t_xz0`` too), so the kind the set was sampled as is checked, not only its arrays.
        """
        kind = self.attrs.get("method")
        if kind is None or method not in SAMPLE_KINDS:
            return
        ok = SAMPLE_KINDS[method]
        if kind not in ok:
            need = " or ".join(f"{k!r}" for k in ok)
            what = KIND_NAMES.get(str(kind), f"a set of kind {kind!r}")
            raise InputError(
                f"method {method!r} needs a training set of kind {need} "
                f"({KIND_NAMES[ok[0]]}); this is {what}",
                file=str(self.path),
                field="attrs.method",
            )

    def width(self, column: str) -> int:
        shape = self.group[self.stored[column]].shape
        return 1 if len(shape) == 1 else int(np.prod(shape[1:]))

    def read(self, column: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as float32 (n, width); ``y``/``r_xz`` 1-d; NaN/inf (and r_xz <= 0)
        raise an error."""
        a = np.asarray(self.group[self.stored[column]][start:stop], dtype=np.float32)
        a = a.reshape(len(a)) if column in FLAT else a.reshape(len(a), -1)
        if not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0]
            raise InputError(
                f"non-finite value (NaN or inf) in row {start + int(bad)}",
                file=str(self.path),
                field=self.stored[column],
            )
        if column == "r_xz" and not (a > 0).all():
            bad = int(np.flatnonzero(~(a > 0))[0])
            raise InputError(
                f"joint likelihood ratio r_xz = {a[bad]:.4g} <= 0 in row {start + bad}: an event "
                "weight at one of the pair's θ is zero or negative (negative-weight samples); "
                "such rows have no ratio to learn",
                file=str(self.path),
                field=self.stored[column],
            )
        return a

    def split(self, validation_split: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """(train range, validation range) of row indices.

        A set drawn with ``validation_events`` (``attrs.held_out``) has the rows of its
        held-out events last: they are the validation rows (events the training never sees, so
        that the validation loss shows a network that learns its training events by heart),
        whatever ``validation_split`` says, unless that is 0 (no validation: all rows train).
        """
        if not 0 <= validation_split < 1:
            raise InputError(
                f"validation_split must be in [0, 1), got {validation_split}",
                field="training.validation_split",
            )
        held = (self.attrs.get("held_out") or {}).get("rows")
        if held is not None and validation_split > 0:
            start = int(held[0])
            if not 0 < start <= self.n:
                raise InputError(
                    f"held-out rows {held} do not fit the set's {self.n} rows",
                    file=str(self.path),
                    field="attrs.held_out.rows",
                )
            log.info(
                "%s: validation on the %d rows of its held-out events (not a %.2g split of rows)",
                self.path, self.n - start, validation_split,
            )  # fmt: skip
            return (0, start), (start, self.n)
        n_val = int(round(self.n * validation_split))
        if self.n - n_val <= 0:
            raise InputError(
                "no training rows left after the validation split", file=str(self.path)
            )
        return (0, self.n - n_val), (self.n - n_val, self.n)

    def _blocks(self, rows, buffer_rows, rng):
        start, stop = rows
        starts = np.arange(start, stop, self.block)
        if rng is not None:
            starts = rng.permutation(starts)
        per = max(buffer_rows // self.block, 1)
        return [starts[i : i + per] for i in range(0, len(starts), per)]

    def _load(self, columns, group, stop, order_seed):
        data = {
            c: np.concatenate([self.read(c, s, min(s + self.block, stop)) for s in group])
            for c in columns
        }
        if order_seed is not None:
            order = np.random.default_rng(order_seed).permutation(len(data[columns[0]]))
            data = {c: v[order] for c, v in data.items()}
        return data

    def iter_batches(
        self,
        columns,
        batch_size: int,
        rows: tuple[int, int] | None = None,
        *,
        rng: np.random.Generator | None = None,
        buffer_rows: int = 262_144,
        device=None,
        prefetch: bool = True,
    ) -> Iterator[dict]:
        """Yield dicts of torch tensors; with ``rng`` blocks and rows within a buffer are shuffled.

        The next buffer is read by a background thread while batches of the current one are used
        (``prefetch``); the last batch of a buffer may be smaller than ``batch_size``.
        """
        import torch

        rows = rows or (0, self.n)
        columns = list(columns)
        groups = self._blocks(rows, buffer_rows, rng)
        seeds = [None if rng is None else int(rng.integers(2**63)) for _ in groups]
        pool = None
        if prefetch and len(groups) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(1)
        try:
            pending = None
            for i, group in enumerate(groups):
                if pending is not None:
                    data = pending.result()
                else:
                    data = self._load(columns, group, rows[1], seeds[i])
                pending = (
                    pool.submit(self._load, columns, groups[i + 1], rows[1], seeds[i + 1])
                    if pool is not None and i + 1 < len(groups)
                    else None
                )
                tensors = {c: torch.from_numpy(v) for c, v in data.items()}
                if device is not None:
                    tensors = {c: v.to(device, non_blocking=True) for c, v in tensors.items()}
                n = len(tensors["x"] if "x" in tensors else tensors[columns[0]])
                for b in range(0, n, batch_size):
                    yield {c: v[b : b + batch_size] for c, v in tensors.items()}
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def moments(
        self, column: str, rows: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of a column over rows, streamed (for input scaling)."""
        start, stop = rows or (0, self.n)
        s = s2 = 0.0
        n = 0
        step = self.block * max(262_144 // self.block, 1)
        for b in range(start, stop, step):
            a = self.read(column, b, min(b + step, stop)).astype(np.float64)
            a = a.reshape(len(a), -1)
            s = s + a.sum(0)
            s2 = s2 + (a * a).sum(0)
            n += len(a)
        mean = s / n
        return mean, np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))

    def head(self, column: str, n: int) -> np.ndarray:
        """The first ``n`` rows of a column (for small evaluations and plots)."""
        return self.read(column, 0, min(int(n), self.n))
