"""The particle-level store: showered events (jagged particle lists) with per-benchmark weights.

Layout (zarr v3 group, format ``eftflow-particles`` version 1)::

    <name>.zarr/
      particles/                       final-state particles (Pythia status > 0)
        offsets   (n + 1,)  int64      event i owns rows offsets[i]:offsets[i+1]; chunked by events
        pid       (n_p,)    int32      PDG id
        status    (n_p,)    int32      Pythia status code
        px py pz e (n_p,)   float64    GeV
        charge    (n_p,)    float32    units of e
      hard/                            hard-process record (Pythia |status| 21–29: incoming
                                       partons, γ*/Z, outgoing leptons), same columns as particles/
      weights     (n, n_benchmarks) float64   pb per event; Σ over the store = σ(θ_b)
      info/<name> (n,)      float64    event info: id1 id2 x1 x2 pdf1 pdf2 alphaS alphaEM Q2Fac
                                       Q2Ren mHat sHat pT2Hat (Pythia's names)
      attrs: format="eftflow-particles", format_version, benchmark_names, info_names,
             n_events, n_particles, n_hard, provenance{generator, shower settings, seeds, counts,
             eftflow version, date}, plus any extra attrs

Every array is chunked along its first axis only (events, or particles for the flat columns) and
written with ``write_empty_chunks`` so that a missing chunk file means damage. Writes go to a
temporary sibling directory renamed into place when complete; ``n_events`` is written last, so a
store without it is incomplete. Reading goes chunk by chunk (:meth:`ParticleStore.iter_chunks`)
and never loads the whole store.

Example
-------
>>> import numpy as np, awkward as ak, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p.zarr"
>>> parts = ak.Array([[{"pid": 11, "status": 1, "px": 1.0, "py": 0.0, "pz": 0.0, "e": 1.0,
...                     "charge": -1.0}]] * 3)
>>> with ParticleStoreWriter(path, ["sm", "bsm"], chunk_size=2) as w:
...     w.append(parts, weights=np.ones((3, 2)), info={"mHat": np.full(3, 91.0)})
>>> store = ParticleStore(path)
>>> [len(c) for c in store.iter_chunks(2)], store.benchmark_names
([2, 1], ['sm', 'bsm'])
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.store.atomic import atomic_path
from eftflow.store.chunkfiles import StoreArray
from eftflow.store.group import lazy_group, read_store_attrs

__all__ = ["ParticleStoreWriter", "ParticleStore", "FORMAT", "FORMAT_VERSION", "PARTICLE_FIELDS"]

log = logging.getLogger(__name__)

FORMAT = "eftflow-particles"
FORMAT_VERSION = 1
#: columns of the particle records and their dtypes
PARTICLE_FIELDS = {
    "pid": "int32",
    "status": "int32",
    "px": "float64",
    "py": "float64",
    "pz": "float64",
    "e": "float64",
    "charge": "float32",
}
LISTS = ("particles", "hard")


def _compressors():
    from zarr.codecs import BloscCodec

    return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]


def _flatten(records, name: str, n: int, path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Jagged records (awkward, or dict of flat arrays + ``counts``) -> flat columns, counts."""
    if isinstance(records, dict):
        counts = np.asarray(records["counts"], dtype=np.int64)
        cols = {f: np.asarray(records[f]) for f in PARTICLE_FIELDS}
    else:
        import awkward as ak

        counts = np.asarray(ak.num(records, axis=1), dtype=np.int64)
        flat = ak.flatten(records, axis=1)
        missing = [f for f in PARTICLE_FIELDS if f not in ak.fields(flat)]
        if missing:
            raise InputError(
                f"{name} records lack field {missing[0]!r}", file=str(path), field=name
            )
        cols = {f: ak.to_numpy(flat[f]) for f in PARTICLE_FIELDS}
    if counts.shape != (n,):
        raise InputError(
            f"{name} has {counts.shape[0]} events, weights {n}", file=str(path), field=name
        )
    total = int(counts.sum())
    for f, v in cols.items():
        if v.shape != (total,):
            raise InputError(
                f"{name}.{f} has {v.shape[0]} rows, counts say {total}",
                file=str(path),
                field=f"{name}.{f}",
            )
    return {f: cols[f].astype(PARTICLE_FIELDS[f], copy=False) for f in PARTICLE_FIELDS}, counts


class ParticleStoreWriter:
    """Append showered events block by block; the store appears at ``path`` only when closed cleanly.

    Parameters
    ----------
    path
        Final store path (``*.zarr``).
    benchmark_names
        Column names of ``weights``.
    chunk_size
        Events per chunk of the per-event arrays.
    particle_chunk_size
        Rows per chunk of the flat particle columns.
    provenance, attrs
        Recorded as attributes (JSON-serialisable).
    """

    def __init__(
        self,
        path,
        benchmark_names: Sequence[str],
        *,
        chunk_size: int = 10_000,
        particle_chunk_size: int = 1 << 20,
        provenance: dict | None = None,
        attrs: dict | None = None,
    ):
        from eftflow.store.events import make_provenance

        self.path = Path(path)
        self.benchmark_names = list(benchmark_names)
        self.chunk_size = int(chunk_size)
        self.particle_chunk_size = int(particle_chunk_size)
        self.provenance = provenance or make_provenance()
        self.extra_attrs = dict(attrs or {})
        self.n_events = 0
        self.info_names: list[str] | None = None
        self._rows = dict.fromkeys(LISTS, 0)
        self._ctx = None
        self._group = None
        self._arrays: dict[str, object] = {}

    def __enter__(self) -> ParticleStoreWriter:
        import zarr

        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        try:
            self._group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            for lst in LISTS:
                self._create(f"{lst}/offsets", (1,), (self.chunk_size,), "int64")
                self._arrays[f"{lst}/offsets"][0] = 0
                for f, dt in PARTICLE_FIELDS.items():
                    self._create(f"{lst}/{f}", (0,), (self.particle_chunk_size,), dt)
            nb = max(len(self.benchmark_names), 1)
            self._create(
                "weights", (0, len(self.benchmark_names)), (self.chunk_size, nb), "float64"
            )
        except BaseException as err:
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def _create(self, name, shape, chunks, dtype):
        self._arrays[name] = self._group.create_array(
            name, shape=shape, chunks=chunks, dtype=dtype, compressors=_compressors(),
            config={"write_empty_chunks": True},
        )  # fmt: skip

    def append(self, particles, *, weights, info: dict | None = None, hard=None) -> None:
        """Append a block of events.

        Parameters
        ----------
        particles, hard
            Jagged records with the fields of :data:`PARTICLE_FIELDS` (awkward ``var * record``,
            or a dict of flat arrays plus ``counts``). ``hard`` may be ``None`` (no hard record).
        weights
            (n, n_benchmarks) pb per event.
        info
            ``{name: (n,) array}``; the same names in every block.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != len(self.benchmark_names):
            raise InputError(
                f"weights must have shape (n, {len(self.benchmark_names)}), got {w.shape}",
                file=str(self.path), field="weights",
            )  # fmt: skip
        n = w.shape[0]
        if not np.all(np.isfinite(w)):
            bad = int(np.argwhere(~np.isfinite(w))[0, 0])
            raise InputError(
                f"non-finite weight in event {self.n_events + bad}",
                file=str(self.path),
                field="weights",
            )
        info = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in (info or {}).items()}
        if self.info_names is None:
            self.info_names = sorted(info)
            for k in self.info_names:
                self._create(f"info/{k}", (0,), (self.chunk_size,), "float64")
        if sorted(info) != self.info_names:
            raise InputError(
                f"info fields {sorted(info)} differ from {self.info_names}",
                file=str(self.path),
                field="info",
            )
        for k, v in info.items():
            if v.shape != (n,):
                raise InputError(
                    f"info.{k} has {v.shape[0]} events, weights {n}",
                    file=str(self.path),
                    field=f"info.{k}",
                )
        blocks = {"particles": _flatten(particles, "particles", n, self.path)}
        if hard is not None:
            blocks["hard"] = _flatten(hard, "hard", n, self.path)
        else:
            blocks["hard"] = (
                {f: np.zeros(0, dt) for f, dt in PARTICLE_FIELDS.items()},
                np.zeros(n, np.int64),
            )
        start, stop = self.n_events, self.n_events + n
        for lst, (cols, counts) in blocks.items():
            r0 = self._rows[lst]
            r1 = r0 + int(counts.sum())
            for f, v in cols.items():
                arr = self._arrays[f"{lst}/{f}"]
                arr.resize((r1,))
                if r1 > r0:
                    arr[r0:r1] = v
            off = self._arrays[f"{lst}/offsets"]
            off.resize((stop + 1,))
            off[start + 1 : stop + 1] = r0 + np.cumsum(counts)
            self._rows[lst] = r1
        self._arrays["weights"].resize((stop, len(self.benchmark_names)))
        self._arrays["weights"][start:stop] = w
        for k, v in info.items():
            self._arrays[f"info/{k}"].resize((stop,))
            self._arrays[f"info/{k}"][start:stop] = v
        self.n_events = stop

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                if self.n_events == 0:
                    raise InputError(
                        "no events to write: every event was dropped", file=str(self.path)
                    )
                self._group.attrs.update(
                    {
                        "format": FORMAT,
                        "format_version": FORMAT_VERSION,
                        "benchmark_names": self.benchmark_names,
                        "info_names": self.info_names or [],
                        "n_particles": self._rows["particles"],
                        "n_hard": self._rows["hard"],
                        "provenance": self.provenance,
                        **self.extra_attrs,
                    }
                )
                self._group.attrs["n_events"] = self.n_events  # last: marks the store complete
        except BaseException as err:
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise
        return self._ctx.__exit__(exc_type, exc, tb)


class ParticleStore:
    """Read-only view of a particle store; iterates in chunks of events as awkward Arrays.

    Raises
    ------
    InputError
        Missing, incomplete (interrupted write), truncated or damaged store, or a newer format.
    """

    def __init__(self, path):

        self.path = Path(path)
        p = str(self.path)
        attrs = read_store_attrs(self.path, kind="particle", fmt=FORMAT, version=FORMAT_VERSION)
        self._zarr_group = lazy_group(self.path)
        self.attrs = attrs
        self.n_events = int(attrs["n_events"])
        self.benchmark_names = list(attrs["benchmark_names"])
        self.info_names = list(attrs.get("info_names", []))
        self.provenance = attrs.get("provenance", {})
        expected = {
            "weights": self.n_events,
            **{f"info/{k}": self.n_events for k in self.info_names},
        }
        for lst, total in (("particles", attrs.get("n_particles")), ("hard", attrs.get("n_hard"))):
            expected[f"{lst}/offsets"] = self.n_events + 1
            for f in PARTICLE_FIELDS:
                expected[f"{lst}/{f}"] = int(total or 0)
        self._arrays = {}
        for name, length in expected.items():
            try:
                arr = self._arrays[name] = StoreArray(self.path, name, self._zarr_group)
            except KeyError:
                raise InputError(
                    "array is missing: the store is truncated", file=p, field=name
                ) from None
            if arr.shape[0] != length:
                raise InputError(
                    f"has {arr.shape[0]} rows, attrs say {length}: the store is truncated",
                    file=p,
                    field=name,
                )
            if arr.nchunks_initialized != arr.nchunks:
                raise InputError(
                    f"{arr.nchunks - arr.nchunks_initialized} of {arr.nchunks} chunk files are missing: "
                    "the store is truncated",
                    file=p, field=name,
                )  # fmt: skip

    def _read(self, name: str, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(self._arrays[name][start:stop])
        except Exception as err:
            raise InputError(
                f"cannot read rows {start}:{stop} ({err}): the store is damaged",
                file=str(self.path),
                field=name,
            ) from None

    def _list(self, lst: str, i0: int, i1: int):
        import awkward as ak

        off = self._read(f"{lst}/offsets", i0, i1 + 1)
        if np.any(np.diff(off) < 0):
            raise InputError(
                f"offsets decrease in events {i0}:{i1}: the store is damaged",
                file=str(self.path),
                field=f"{lst}/offsets",
            )
        r0, r1 = int(off[0]), int(off[-1])
        cols = {f: self._read(f"{lst}/{f}", r0, r1) for f in PARTICLE_FIELDS}
        return ak.unflatten(ak.zip(cols), np.diff(off))

    def read_weights(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Weights of events [start, stop), shape (n, n_benchmarks)."""
        return self._read("weights", start, self.n_events if stop is None else stop)

    def iter_chunks(
        self, chunk_size: int | None = None, *, start: int = 0, stop: int | None = None
    ) -> Iterator:
        """Yield ``ak.Array`` chunks with fields ``particles``, ``hard``, ``weights``, ``info``.

        ``particles`` and ``hard`` are ``var * {pid, status, px, py, pz, e, charge}``,
        ``weights`` a regular (n_benchmarks) dimension (``ak.to_numpy(chunk.weights)`` gives the
        (n, n_benchmarks) numpy array), ``info`` a record of the info columns. The event range
        of a chunk is in its ``attrs`` (``chunk.attrs["start"]``, ``["stop"]``).
        """
        import awkward as ak

        step = int(chunk_size or self._arrays["weights"].chunks[0])
        stop = self.n_events if stop is None else min(int(stop), self.n_events)
        for i0 in range(int(start), stop, step):
            i1 = min(i0 + step, stop)
            fields = {
                "particles": self._list("particles", i0, i1),
                "hard": self._list("hard", i0, i1),
                "weights": self.read_weights(i0, i1),
            }
            if self.info_names:
                fields["info"] = ak.zip(
                    {k: self._read(f"info/{k}", i0, i1) for k in self.info_names}
                )
            chunk = ak.Array(fields, attrs={"start": i0, "stop": i1})
            yield chunk

    def cross_sections(self) -> np.ndarray:
        """Σ_events weights per benchmark, streamed."""
        total = np.zeros(len(self.benchmark_names))
        step = int(self._arrays["weights"].chunks[0])
        for i0 in range(0, self.n_events, step):
            total += self.read_weights(i0, min(i0 + step, self.n_events)).sum(axis=0)
        return total

    def __len__(self) -> int:
        return self.n_events

    def __repr__(self) -> str:
        return f"ParticleStore({str(self.path)!r}, n_events={self.n_events}, benchmarks={len(self.benchmark_names)})"
