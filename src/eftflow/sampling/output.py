"""Training-set output: per-chunk part files merged into one shuffled, chunked zarr group.

Each sampling task writes its rows as ``.npy`` part files in a temporary directory. The merge draws
one global random permutation of all rows (seeded), then fills the output chunk by chunk: output
chunk o takes rows ``perm[o·C:(o+1)·C]`` of the concatenated parts, read through memory maps. Peak
memory is the permutation (8 bytes per row) plus one output chunk, independent of the event store.

Layout of a training set ``<name>.zarr`` (zarr v3 group; MadMiner's array names)::

    x (n, n_observables)   theta / theta0 / theta1 (n, n_parameters [+ n_nuisance])
    y (n, 1)   r_xz (n, 1)   t_xz / t_xz0 / t_xz1 (n, n_parameters [+ n_nuisance])
    attrs: format="eftflow-training", method, observable_names, parameter_names, summary{...}

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> np.save(d / "part-000000-x.npy", np.arange(6.0).reshape(3, 2))
>>> write_training_set(d / "t.zarr", [(d, 0, 3)], ["x"], seed=1, attrs={"method": "plain"})
3
>>> sorted(read_training_set(d / "t.zarr")["x"][:, 0].tolist())
[0.0, 2.0, 4.0]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import InputError

__all__ = ["write_training_set", "read_training_set", "part_path", "TRAINING_FORMAT"]

log = logging.getLogger(__name__)

TRAINING_FORMAT = "eftflow-training"


def part_path(directory: str | Path, chunk: int, name: str) -> Path:
    """Path of the part file of array ``name`` written by chunk task ``chunk``."""
    return Path(directory) / f"part-{chunk:06d}-{name}.npy"


def write_training_set(
    path: str | Path,
    parts: Sequence[tuple],
    names: Sequence[str],
    *,
    seed,
    chunk_rows: int = 100_000,
    dtype: str = "float32",
    attrs: dict | None = None,
) -> int:
    """Merge part files into a shuffled zarr group at ``path`` (written atomically).

    Parameters
    ----------
    parts
        ``(directory, chunk, n_rows)`` per task with rows (tasks with 0 rows may be listed).
    names
        Arrays to write (each part has one ``.npy`` per name).
    seed
        Seed (or ``SeedSequence`` entropy) of the global permutation.

    Returns
    -------
    int
        Number of rows written.
    """
    import zarr
    from zarr.codecs import BloscCodec

    from eftflow.store.atomic import atomic_path

    parts = [p for p in parts if p[2] > 0]
    sizes = np.array([p[2] for p in parts], np.int64)
    n = int(sizes.sum())
    if n == 0:
        raise InputError("no samples were drawn: nothing to write", file=str(path))
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    maps = {
        name: [np.load(part_path(d, c, name), mmap_mode="r") for d, c, _ in parts] for name in names
    }
    widths = {name: maps[name][0].shape[1:] for name in names}
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        arrays = {}
        for name in names:
            shape = (n, *widths[name])
            chunks = (min(chunk_rows, n), *widths[name])
            arrays[name] = group.create_array(
                name,
                shape=shape,
                chunks=chunks,
                dtype=dtype,
                compressors=[BloscCodec(cname="lz4", clevel=5)],
            )
        for o0 in range(0, n, chunk_rows):
            sel = perm[o0 : o0 + chunk_rows]
            which = np.searchsorted(offsets, sel, side="right") - 1
            order = np.argsort(which, kind="stable")
            for name in names:
                block = np.empty((sel.size, *widths[name]), dtype=dtype)
                for j in np.unique(which):
                    rows = order[
                        np.searchsorted(which[order], j) : np.searchsorted(
                            which[order], j, side="right"
                        )
                    ]
                    local = sel[rows] - offsets[j]
                    srt = np.argsort(local)
                    block[rows[srt]] = np.asarray(maps[name][j][local[srt]], dtype=dtype)
                arrays[name][o0 : o0 + sel.size] = block
        group.attrs.update({"format": TRAINING_FORMAT, "n_samples": n, **(attrs or {})})
    del maps
    return n


def read_training_set(path: str | Path, names: Sequence[str] | None = None) -> dict:
    """Load (small) training sets into memory: ``{name: array}`` plus ``attrs``."""
    import zarr

    p = Path(path)
    if not p.exists():
        raise InputError("training set does not exist", file=str(p))
    group = zarr.open_group(str(p), mode="r")
    attrs = dict(group.attrs)
    if attrs.get("format") != TRAINING_FORMAT:
        raise InputError(
            f"not an eftflow training set (format={attrs.get('format')!r})", file=str(p)
        )
    keys = [k for k in group.array_keys()] if names is None else list(names)
    out = {k: np.asarray(group[k][:]) for k in keys}
    out["attrs"] = attrs
    return out
