"""The event store: observables and per-benchmark weights in a chunked zarr v3 group.

Layout (format version 1, docs/layout.md)::

    <name>.zarr/
      observables          (n, n_obs)        float64   chunked along events only
      weights              (n, n_benchmarks) float64   pb per event; Σ over a sample = σ(θ_b)
      sampling_benchmark   (n,)              int64     index of the sampling benchmark, −1 = background
      nuisance_weights     (n, n_nuisance_benchmarks) float64   optional
      attrs: format="eftflow-events", format_version, observable_names, benchmark_names,
             nuisance_benchmark_names, n_events, provenance{...}, plus any extra attrs

This module (with :mod:`eftflow.store.particles`) is the only code that knows the layout. Writes
go to a temporary sibling directory renamed into place when complete (and the ``n_events``
attribute is written last, so a store without it is incomplete); reads go chunk by chunk and never
load a whole store.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ev.zarr"
>>> with EventStoreWriter(path, ["x"], ["sm", "bsm"], chunk_size=4) as w:
...     w.append(observables=np.arange(10.0)[:, None], weights=np.ones((10, 2)),
...              sampling_benchmark=np.zeros(10, int))
>>> store = EventStore(path)
>>> store.n_events, [c["weights"].shape[0] for c in store.iter_chunks(chunk_size=4)]
(10, [4, 4, 2])
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.store.atomic import atomic_path
from eftflow.store.group import lazy_group, read_store_attrs
from eftflow.store.helpers import _names, check_finite, make_provenance, wait_all

__all__ = [
    "EventStoreWriter",
    "EventStore",
    "FORMAT",
    "FORMAT_VERSION",
    "make_provenance",
    "wait_all",
    "check_finite",
]

log = logging.getLogger(__name__)

FORMAT = "eftflow-events"
FORMAT_VERSION = 1
COLUMNS = ("observables", "weights", "sampling_benchmark", "nuisance_weights")


#: threads compressing and writing the chunks of one append (Blosc releases the GIL)
WRITE_THREADS = min(2, os.cpu_count() or 1)


class EventStoreWriter:
    """Append events chunk by chunk; the store appears at ``path`` only when closed cleanly.

    Parameters
    ----------
    path
        Final store path (``*.zarr``).
    observable_names, benchmark_names
        Column names of ``observables`` and ``weights``.
    chunk_size
        Events per zarr chunk.
    provenance
        Dict recorded as the ``provenance`` attribute (use :func:`make_provenance`).
    nuisance_names
        Column names of ``nuisance_weights`` (``None``: no nuisance weights).
    attrs
        Extra attributes (JSON-serialisable).

    Notes
    -----
    Whole chunks are compressed and written as chunk files directly
    (:class:`~eftflow.store.chunkfiles.ChunkEncoder`, several at once); rows that do not yet fill
    a chunk wait in memory (at most one chunk per array) until the next append or the close,
    which writes the padded edge chunk, then the arrays' final shapes and last the group's
    attributes with ``n_events``. The metadata is zarr v3's own ``zarr.json`` documents, written
    directly (:func:`~eftflow.store.chunkfiles.array_metadata`); zarr reads the store as usual.
    """

    def __init__(
        self,
        path,
        observable_names: Sequence[str],
        benchmark_names: Sequence[str],
        *,
        chunk_size: int = 100_000,
        provenance: dict | None = None,
        nuisance_names: Sequence[str] | None = None,
        attrs: dict | None = None,
    ):
        self.path = Path(path)
        self.observable_names = list(observable_names)
        self.benchmark_names = list(benchmark_names)
        self.nuisance_names = None if nuisance_names is None else list(nuisance_names)
        self.chunk_size = int(chunk_size)
        self.provenance = provenance or make_provenance()
        self.extra_attrs = dict(attrs or {})
        self.n_events = 0
        self._ctx = None
        self._tmp: Path | None = None
        self._meta: dict = {}
        self._encoders: dict = {}
        self._carry: dict[str, np.ndarray] = {}
        self._n_carry = 0
        self._pool = None
        self._lock = threading.Lock()

    def __enter__(self) -> EventStoreWriter:
        from eftflow.store.chunkfiles import (
            ChunkEncoder,
            array_metadata,
            group_metadata,
            write_metadata,
        )

        shapes = {
            "observables": (len(self.observable_names), "float64"),
            "weights": (len(self.benchmark_names), "float64"),
            "sampling_benchmark": (None, "int64"),
        }
        if self.nuisance_names is not None:
            shapes["nuisance_weights"] = (len(self.nuisance_names), "float64")
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        try:
            write_metadata(self._tmp, group_metadata({}))
            for name, (width, dtype) in shapes.items():
                shape = (0,) if width is None else (0, width)
                meta = self._meta[name] = array_metadata(shape, self.chunk_size, dtype)
                write_metadata(self._tmp / name, meta)
                config = meta["codecs"][1]["configuration"]
                self._encoders[name] = ChunkEncoder(
                    self._tmp / name, self.chunk_size, dtype, len(shape), config
                )
        except BaseException as err:
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def append(
        self, *, observables, weights, sampling_benchmark=None, nuisance_weights=None
    ) -> None:
        """Append a block of events (any length).

        ``observables`` is (n, n_observables) (1-d for one observable), ``weights`` (n,
        n_benchmarks), ``sampling_benchmark`` (n,) and ``nuisance_weights`` (n, n_nuisance); any
        other shape is an :class:`InputError` naming the column.
        """
        obs = self._columns(observables, len(self.observable_names), "observables")
        w = self._columns(weights, len(self.benchmark_names), "weights")
        n = obs.shape[0]
        if w.shape[0] != n:
            raise InputError(
                f"observables have {n} events but weights {w.shape[0]}", file=str(self.path)
            )
        check_finite(w, file=self.path, field="weights", start=self.n_events)
        s = (
            np.full(n, -1, np.int64)
            if sampling_benchmark is None
            else np.asarray(sampling_benchmark, np.int64)
        )
        if s.size != n or s.ndim > 2:
            raise InputError(
                f"shape {s.shape} for {n} events, expected ({n},)",
                file=str(self.path),
                field="sampling_benchmark",
            )
        cols = {"observables": obs, "weights": w, "sampling_benchmark": s.reshape(n)}
        if self.nuisance_names is not None:
            if nuisance_weights is None:
                raise InputError(
                    "this store has nuisance weights: pass nuisance_weights", file=str(self.path)
                )
            nu = self._columns(nuisance_weights, len(self.nuisance_names), "nuisance_weights")
            if nu.shape[0] != n:
                raise InputError(
                    f"{nu.shape[0]} rows for {n} events",
                    file=str(self.path),
                    field="nuisance_weights",
                )
            cols["nuisance_weights"] = nu
        try:
            self._put(cols, n)
        except OSError as err:
            raise self._io_error(err) from None
        self.n_events += n

    def _columns(self, values, width: int, field: str) -> np.ndarray:
        """``values`` as a float64 (n, width) array; 1-d input only for width 1 (or n = 0)."""
        a = np.asarray(values, dtype=np.float64)
        if a.ndim == 2 and a.shape[1] == width:
            return a
        if a.ndim == 1 and (width == 1 or a.size == 0):
            return a.reshape(-1, width)
        raise InputError(
            f"shape {a.shape}, expected (n, {width})", file=str(self.path), field=field
        )

    def _io_error(self, err: OSError) -> InputError:
        """A write failure (full disk, quota, permissions) as an error naming store and array."""
        field = None
        try:
            field = Path(err.filename).relative_to(self._tmp).parts[0]
        except (TypeError, ValueError, IndexError):
            pass
        where = f": {err.filename}" if err.filename else ""
        return InputError(
            f"cannot write the store ({err.strerror or err}{where})",
            file=str(self.path),
            field=field,
        )

    def write_chunk(self, k: int, cols: dict) -> None:
        """Compress and write chunk ``k`` (rows ``k·chunk_size`` onwards) from ``cols`` (one
        array per column, ``chunk_size`` rows, fewer only for the last chunk). The columns of a
        chunk may also come in separate calls, one or more columns each.

        For writers that fill a store out of order from several threads (each chunk exactly
        once, from any thread, in any order; not mixed with :meth:`append`): the rows are taken
        as they are, without :meth:`append`'s checks, so they must come from checked data (e.g.
        event stores). ``n_events`` counts the rows written to ``weights``.
        """
        if self._n_carry:
            raise ValueError("write_chunk cannot follow a partial append")
        try:
            for name, v in cols.items():
                self._encoders[name].write(k, v)
        except OSError as err:
            raise self._io_error(err) from None
        if "weights" in cols:
            with self._lock:
                self.n_events += len(cols["weights"])

    def _put(self, cols: dict, n: int) -> None:
        """Write the whole chunks that rows [n_events, n_events + n) complete; keep the rest."""
        chunk = self.chunk_size
        jobs, i = [], 0
        k = (self.n_events - self._n_carry) // chunk  # the chunk being filled
        if self._n_carry:
            i = min(chunk - self._n_carry, n)
            for name, buf in self._carry.items():
                buf[self._n_carry : self._n_carry + i] = cols[name][:i]
            self._n_carry += i
            if self._n_carry < chunk:
                return
            jobs += [(name, k, buf) for name, buf in self._carry.items()]
            self._n_carry, k = 0, k + 1
        for j in range(i, n - chunk + 1, chunk):
            jobs += [(name, k, v[j : j + chunk]) for name, v in cols.items()]
            i, k = j + chunk, k + 1
        self._write_chunks(jobs)
        if i < n:  # the rest waits for the next append (the carried chunk was written above)
            if not self._carry:
                self._carry = {
                    name: np.empty((chunk, *v.shape[1:]), v.dtype) for name, v in cols.items()
                }
            for name, buf in self._carry.items():
                buf[: n - i] = cols[name][i:]
            self._n_carry = n - i

    def _write_chunks(self, jobs: list) -> None:
        if len(jobs) > 1 and WRITE_THREADS > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="eftflow-chunks")
            wait_all([self._pool.submit(self._encoders[c].write, k, b) for c, k, b in jobs])
        else:
            for c, k, b in jobs:
                self._encoders[c].write(k, b)

    def _finish_chunks(self) -> None:
        """Write the partial last chunk, then the arrays' final shapes (their ``zarr.json``)."""
        from eftflow.store.chunkfiles import write_metadata

        if self._n_carry:
            k = self.n_events // self.chunk_size
            self._write_chunks([(c, k, buf[: self._n_carry]) for c, buf in self._carry.items()])
            self._n_carry = 0
        for name, meta in self._meta.items():
            meta["shape"][0] = self.n_events
            write_metadata(self._tmp / name, meta)

    def __exit__(self, exc_type, exc, tb):
        from eftflow.store.chunkfiles import group_metadata, write_metadata

        try:
            if exc_type is None:
                if self.n_events == 0:
                    raise InputError("no events to write: the sample is empty", file=str(self.path))
                try:
                    self._finish_chunks()
                except OSError as err:
                    raise self._io_error(err) from None
                self._close_pool()
                attrs = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "observable_names": self.observable_names,
                    "benchmark_names": self.benchmark_names,
                    "nuisance_benchmark_names": self.nuisance_names,
                    "provenance": self.provenance,
                    "all_chunks_written": True,  # a missing chunk file means damage
                    **self.extra_attrs,
                }
                attrs.pop("n_events", None)
                attrs["n_events"] = self.n_events  # the store is complete once this is written
                try:
                    write_metadata(self._tmp, group_metadata(attrs))  # last
                except OSError as err:
                    raise self._io_error(err) from None
        except BaseException as err:
            self._close_pool()
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise
        self._close_pool()
        return self._ctx.__exit__(exc_type, exc, tb)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class EventStore:
    """Read-only view of an event store; iterates in chunks.

    Raises
    ------
    InputError
        Missing, incomplete (interrupted write) or inconsistent store, or a newer format.
    """

    def __init__(self, path):
        self.path = Path(path)
        p = str(self.path)
        attrs = read_store_attrs(self.path, kind="event", fmt=FORMAT, version=FORMAT_VERSION)
        self.attrs = attrs
        for key in ("n_events", "observable_names", "benchmark_names"):
            if key not in attrs:
                raise InputError(
                    "missing from the store's attributes: the store is damaged",
                    file=p,
                    field=f"attrs.{key}",
                )
        n = attrs["n_events"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(
                f"n_events is {n!r}, not a count of events: the store is damaged",
                file=p,
                field="attrs.n_events",
            )
        self.n_events = n
        self.observable_names = _names(attrs, "observable_names", p)
        self.benchmark_names = _names(attrs, "benchmark_names", p)
        self.nuisance_benchmark_names = _names(attrs, "nuisance_benchmark_names", p, optional=True)
        self.provenance = attrs.get("provenance", {})
        self._zarr_group = lazy_group(self.path)
        self._chunk_files: dict = {}
        #: name → (shape, rows per chunk, dtype, zarr.json document or None) of each array
        self._info: dict = {}
        for name in COLUMNS:
            info = self._array_info(name)
            if info is not None:
                self._info[name] = info
        for name in ("observables", "weights", "sampling_benchmark"):
            if name not in self._info:
                raise InputError("array is missing: the store is truncated", file=p, field=name)
            if self._info[name][0][0] != self.n_events:
                raise InputError(
                    f"has {self._info[name][0][0]} events, attrs say {self.n_events}: the store is truncated",
                    file=p,
                    field=name,
                )
        widths = {
            "observables": len(self.observable_names),
            "weights": len(self.benchmark_names),
            "sampling_benchmark": None,
            "nuisance_weights": len(self.nuisance_benchmark_names or []),
        }
        for name, (shape, rows, _, _) in self._info.items():
            if name == "nuisance_weights" and self.nuisance_benchmark_names is None:
                raise InputError(
                    "array present but the attributes name no nuisance benchmarks",
                    file=p,
                    field=name,
                )
            expected = (self.n_events,) if widths[name] is None else (self.n_events, widths[name])
            if shape != expected:
                raise InputError(
                    f"shape {shape} does not match the attributes' names: expected {expected}",
                    file=p,
                    field=name,
                )
            if rows < 1:
                raise InputError(
                    f"chunk shape of {rows} rows: the store is damaged", file=p, field=name
                )

    def _array_info(self, name: str):
        """``(shape, rows per chunk, dtype, meta)`` of array ``name`` from its ``zarr.json``
        (zarr v3, read directly) or through zarr (other formats); None if there is none."""
        from eftflow.store.chunkfiles import read_metadata

        meta = read_metadata(self.path / name)
        try:
            if meta is not None and meta["node_type"] == "array":
                shape = tuple(int(s) for s in meta["shape"])
                rows = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
                return shape, rows, np.dtype(meta["data_type"]), meta
        except (KeyError, TypeError, IndexError, ValueError):
            pass
        if not (self.path / name).exists():
            return None
        try:
            group = self._zarr_group()
            if name not in group:
                return None
            arr = group[name]
            return tuple(arr.shape), int(arr.chunks[0]), np.dtype(arr.dtype), None
        except Exception as err:  # zarr raises several types for damaged metadata
            raise InputError(
                f"cannot read the array's metadata ({type(err).__name__}: {err}): the store is damaged",
                file=str(self.path),
                field=name,
            ) from None

    @property
    def columns(self) -> list[str]:
        return [c for c in COLUMNS if c in self._info]

    @property
    def chunk_size(self) -> int:
        return self._info["weights"][1]

    def array(self, name: str):
        """The zarr array ``name`` (lazy)."""
        if name not in self._info:
            raise InputError(
                f"no array {name!r}; available: {', '.join(self.columns)}", file=str(self.path)
            )
        return self._zarr_group()[name]

    def chunk_files(self, name: str):
        """The direct reader of array ``name``'s chunk files
        (:class:`~eftflow.store.chunkfiles.ChunkFiles`), or None when the array is not in the
        standard layout (then read it through :meth:`array`). Cached per store object."""
        from eftflow.store.chunkfiles import ChunkFiles

        if name not in self._chunk_files:
            meta = self._info[name][3] if name in self._info else None
            files = None if meta is None else ChunkFiles.from_metadata(self.path / name, meta)
            ok = files is not None and files.shape[0] == self.n_events
            if ok:
                files.missing_is_damage = bool(self.attrs.get("all_chunks_written"))
            self._chunk_files[name] = files if ok else None
        return self._chunk_files[name]

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Read rows [start, stop) of one array (slice semantics; chunk files read directly
        where the layout allows, see :meth:`chunk_files`)."""
        i0, i1, _ = slice(start, stop).indices(self.n_events)
        i1 = max(i0, i1)
        if name not in self._info:
            self.array(name)  # the error naming the available arrays
        shape, _, dtype, _ = self._info[name]
        out = np.empty((i1 - i0, *shape[1:]), dtype)
        self.read_into(name, i0, i1, out)
        return out

    def read_into(self, name: str, start: int, stop: int, out: np.ndarray) -> None:
        """Read rows [start, stop) (``0 ≤ start ≤ stop ≤ n_events``) of one array straight into
        ``out`` (C-contiguous): chunk files decompressed directly where the layout allows, else
        through zarr. A damaged chunk is an :class:`InputError` naming the store and array."""
        try:
            files = self.chunk_files(name)
            if files is not None:
                files.read_into(start, stop, out)
                return
            arr = self.array(name)
            try:
                from zarr.core.buffer.cpu import NDBuffer
            except ImportError:  # pragma: no cover - other zarr versions: read, then copy
                out[...] = arr[start:stop]
            else:
                arr.get_basic_selection(slice(start, stop), out=NDBuffer.from_numpy_array(out))
        except InputError:
            raise
        except Exception as err:
            raise InputError(
                f"cannot read rows {start}:{stop} ({err}): the store is damaged",
                file=str(self.path),
                field=name,
            ) from None

    def iter_chunks(
        self,
        columns: Sequence[str] | None = None,
        *,
        chunk_size: int | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[dict]:
        """Yield dicts ``{column: array, "start": i0, "stop": i1}`` over [start, stop)."""
        columns = self.columns if columns is None else list(columns)
        step = int(chunk_size or self.chunk_size)
        stop = self.n_events if stop is None else min(int(stop), self.n_events)
        for i0 in range(int(start), stop, step):
            i1 = min(i0 + step, stop)
            out = {c: self.read(c, i0, i1) for c in columns}
            out["start"], out["stop"] = i0, i1
            yield out

    @property
    def partitions(self) -> dict | None:
        """Train/validation/test index ranges of a combined store (``None`` if not split)."""
        parts = self.attrs.get("partitions")
        if not parts:
            return None
        try:
            out = {str(k): (v[0], v[1]) for k, v in parts.items() if len(v) == 2}
            ok = len(out) == len(parts) and all(
                isinstance(a, int) and isinstance(b, int) and 0 <= a <= b <= self.n_events
                for a, b in out.values()
            )
        except (AttributeError, TypeError, KeyError, IndexError):
            ok = False
        if not ok:
            raise InputError(
                f"{parts!r} are not index ranges [start, stop] within the {self.n_events} events",
                file=str(self.path),
                field="attrs.partitions",
            )
        return out

    def partition_bounds(self, name: str) -> tuple[int, int]:
        """``(start, stop)`` of partition ``name``; read it with ``iter_chunks(start=, stop=)``."""
        parts = self.partitions
        if parts is None:
            raise InputError(
                "store has no train/validation/test partitions: run `eftflow combine-events` on it first",
                file=str(self.path),
                field="attrs.partitions",
            )
        if name not in parts:
            raise InputError(
                f"unknown partition {name!r}; available: {', '.join(parts)}",
                file=str(self.path),
                field="attrs.partitions",
            )
        return parts[name]

    def dask(self, name: str):
        """The array as a dask array chunked like the store."""
        import dask.array as da

        return da.from_zarr(self.array(name))

    def cross_sections(self) -> np.ndarray:
        """Σ_events weights per benchmark, streamed."""
        total = np.zeros(len(self.benchmark_names))
        for chunk in self.iter_chunks(["weights"]):
            total += chunk["weights"].sum(axis=0)
        return total

    def __repr__(self) -> str:
        return (
            f"EventStore({str(self.path)!r}, n_events={self.n_events}, observables={self.observable_names}, "
            f"benchmarks={len(self.benchmark_names)})"
        )
