"""Training-set output: per-chunk part files merged into one shuffled, chunked zarr group.

Each sampling task returns its rows (small outputs) or writes them as ``.npy`` part files in a
temporary directory (large ones). The merge draws one global random permutation of all rows
(seeded), then fills the output: in memory at once, or chunk by chunk where output chunk o takes
rows ``perm[o·C:(o+1)·C]`` of the concatenated parts, read through memory maps (peak memory: the
permutation, 8 bytes per row, plus one output chunk, independent of the event store). Both give the
same output for the same parts and seed. Arrays are compressed with Blosc lz4 at level 1 (fast;
training sets are written once and read a few times).

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
    hold: str | None = None,
) -> int:
    """Merge part files into a shuffled zarr group at ``path`` (written atomically).

    Parameters
    ----------
    parts
        Per task with rows, in order: ``(directory, chunk, n_rows)`` of its part files (tasks
        with 0 rows may be listed), or ``{name: array}`` with the rows in memory.
    names
        Arrays to write (each part has one ``.npy`` per name).
    seed
        Seed (or ``SeedSequence`` entropy) of the global permutation.
    hold
        Name of a 0/1 array among ``names`` (not written): its rows marked 1 (events held out for
        validation) go last, each part shuffled on its own; ``attrs.held_out.rows`` records
        their range.

    Returns
    -------
    int
        Number of rows written.
    """
    import zarr

    from eftflow.store.atomic import atomic_path

    def rows_of(p):
        return len(next(iter(p.values()))) if isinstance(p, dict) else int(p[2])

    parts = [p for p in parts if rows_of(p) > 0]
    sizes = np.array([rows_of(p) for p in parts], np.int64)
    n = int(sizes.sum())
    if n == 0:
        raise InputError("no samples were drawn: nothing to write", file=str(path))
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    rng = np.random.default_rng(seed)
    maps = {
        name: [p[name] if isinstance(p, dict) else np.load(part_path(p[0], p[1], name), mmap_mode="r")
               for p in parts]
        for name in names
    }  # fmt: skip
    meta = {"format": TRAINING_FORMAT, "n_samples": n, **(attrs or {})}
    if hold is None:
        perm = rng.permutation(n)
    else:
        flags = np.concatenate([np.asarray(m).reshape(-1) for m in maps.pop(hold)]) > 0.5
        names = [name for name in names if name != hold]
        kept, held = np.flatnonzero(~flags), np.flatnonzero(flags)
        perm = np.concatenate([kept[rng.permutation(kept.size)], held[rng.permutation(held.size)]])
        meta["held_out"] = {**dict(meta.get("held_out") or {}), "rows": [int(kept.size), n]}
    widths = {name: maps[name][0].shape[1:] for name in names}
    with atomic_path(path) as tmp:
        if all(isinstance(p, dict) for p in parts):
            data = {}
            for name in names:
                full = np.concatenate(maps[name]).astype(dtype, copy=False)
                maps[name] = None
                data[name] = full.take(perm, axis=0)
                del full
            _write_group(tmp, data, chunk_rows, dtype, meta)
            del data
        else:
            group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            arrays = {}
            for name in names:
                arrays[name] = group.create_array(
                    name,
                    shape=(n, *widths[name]),
                    chunks=(min(chunk_rows, n), *widths[name]),
                    dtype=dtype,
                    compressors=_compressors(),
                    chunk_key_encoding={"name": "v2", "separator": "."},
                )
            _merge_parts(arrays, maps, names, widths, perm, offsets, chunk_rows, dtype)
            group.update_attributes(meta)
    del maps
    return n


def _compressors() -> list:
    from zarr.codecs import BloscCodec

    return [BloscCodec(cname="lz4", clevel=1)]


def _write_group(path: Path, data: dict, chunk_rows: int, dtype: str, attrs: dict) -> None:
    """Write in-memory arrays and the attributes as a zarr v3 group, directly.

    The files are those zarr writes for :func:`_compressors` (metadata ``zarr.json`` documents,
    chunks ``<name>/<i>.0`` compressed with Blosc: the "v2" chunk-key encoding, one directory per
    array rather than three), written without zarr's asynchronous layer, whose per-call cost
    exceeds the compression of a 10⁵-row training set.
    """
    import json

    from numcodecs import blosc

    path.mkdir(parents=True)
    dt = np.dtype(dtype)
    for name, arr in data.items():
        arr = np.ascontiguousarray(arr, dtype=dt)
        rows = max(min(chunk_rows, arr.shape[0]), 1)
        meta = {
            "shape": list(arr.shape),
            "data_type": dt.name,
            "chunk_grid": {
                "name": "regular",
                "configuration": {"chunk_shape": [rows, *arr.shape[1:]]},
            },
            "chunk_key_encoding": {"name": "v2", "configuration": {"separator": "."}},
            "fill_value": 0.0,
            "codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "blosc", "configuration": {"typesize": dt.itemsize, "cname": "lz4",
                 "clevel": 1, "shuffle": "shuffle", "blocksize": 0}},
            ],
            "attributes": {},
            "zarr_format": 3,
            "node_type": "array",
            "storage_transformers": [],
        }  # fmt: skip
        (path / name).mkdir()
        (path / name / "zarr.json").write_text(json.dumps(meta, indent=2))
        for k, r0 in enumerate(range(0, arr.shape[0], rows)):
            block = arr[r0 : r0 + rows]
            if block.shape[0] < rows:  # edge chunks are stored whole, padded with the fill value
                block = np.concatenate(
                    [block, np.zeros((rows - block.shape[0], *arr.shape[1:]), dt)]
                )
            key = path / name / ".".join([str(k)] + ["0"] * (arr.ndim - 1))
            key.write_bytes(blosc.compress(block, b"lz4", 1, blosc.SHUFFLE))
    group = {"attributes": attrs, "zarr_format": 3, "node_type": "group"}
    (path / "zarr.json").write_text(json.dumps(group, indent=2, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _merge_parts(arrays, maps, names, widths, perm, offsets, chunk_rows, dtype) -> None:
    """Fill the output chunk by chunk from memory-mapped part files (rows ``perm``)."""
    n = perm.size
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
