"""Reconstructed objects: columnar collections per event, awkward conversion, the object store.

A batch of events is an :class:`EventObjects`: named collections (``e``, ``mu``, ``l``, ``a``,
``j``, ``met``, ...), each a :class:`Collection` of flat numpy field arrays (``pt``, ``eta``,
``phi``, ``m``, ``e``, ``charge`` and extras such as ``btag``) plus per-event offsets. Objects in
each event are ordered by decreasing pT. ``met`` is a *single* collection (exactly one object per
event). :meth:`EventObjects.to_awkward` gives the same data as awkward records per event, e.g.
``events.l[:, 0].pt``.

The object store (output of ``eftflow simulate-detector``, input of ``eftflow analyse-events``) is
a zarr v3 group, chunked along events (flat object arrays along objects)::

    objects.zarr/
      weights             (n, n_benchmarks) float64   pb per event, as in the event store
      sampling_benchmark  (n,)              int64     −1 = background
      <collection>/offsets  (n + 1,)        int64     objects of event i: [offsets[i], offsets[i+1])
      <collection>/values   (n_objects, n_fields) float64   columns in the order of attrs
                                                            collections[<collection>].fields
      attrs: format="eftflow-objects", format_version=1, collections={name: {fields, single}},
             benchmark_names, detector, provenance, n_events (written last: marks completeness)

It is written atomically (temporary sibling directory renamed into place) and read in chunks.

Example
-------
>>> import numpy as np
>>> mu = Collection.from_fields([2, 0, 1], pt=[50.0, 30.0, 20.0], eta=[0.1, -0.2, 1.0],
...                             phi=[0.0, 3.0, 1.0], m=[0.1057] * 3, charge=[1.0, -1.0, 1.0])
>>> ev = EventObjects(3, {"mu": mu})
>>> ev.to_awkward().mu.pt.tolist()
[[50.0, 30.0], [], [20.0]]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from eftflow.analysis.vectors import energy_from_mass, from_cartesian, to_cartesian
from eftflow.errors import InputError
from eftflow.store.atomic import atomic_path

__all__ = [
    "Collection",
    "EventObjects",
    "ObjectStoreWriter",
    "ObjectStore",
    "STANDARD_FIELDS",
    "STANDARD_COLLECTIONS",
    "SINGLE_COLLECTIONS",
    "OBJECTS_FORMAT",
    "merge_collections",
    "single_from_cartesian",
]

log = logging.getLogger(__name__)

STANDARD_FIELDS = ("pt", "eta", "phi", "m", "e", "charge")
#: collections every detector backend writes (jets also carry ``btag``)
STANDARD_COLLECTIONS = ("e", "mu", "l", "a", "j", "met")
SINGLE_COLLECTIONS = ("met",)
OBJECTS_FORMAT = "eftflow-objects"
OBJECTS_FORMAT_VERSION = 1


class Collection:
    """A jagged collection of objects: per-event counts and flat field arrays.

    Parameters
    ----------
    offsets
        (n_events + 1,) int64, starting at 0: the objects of event i are
        ``fields[f][offsets[i]:offsets[i+1]]``.
    fields
        Field name → flat float64 array of length ``offsets[-1]``.
    """

    __slots__ = ("offsets", "fields")

    def __init__(self, offsets: np.ndarray, fields: Mapping[str, np.ndarray]):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.fields = {k: np.asarray(v, dtype=np.float64) for k, v in fields.items()}

    @classmethod
    def from_fields(cls, counts, **fields) -> Collection:
        """Build from per-event counts and flat fields; ``e`` is derived from ``m`` if absent."""
        counts = np.asarray(counts, dtype=np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        fields = {k: np.asarray(v, dtype=np.float64) for k, v in fields.items()}
        if "e" not in fields and {"pt", "eta", "m"} <= set(fields):
            fields["e"] = energy_from_mass(fields["pt"], fields["eta"], fields["m"])
        return cls(offsets, fields)

    @classmethod
    def empty(cls, n_events: int, field_names: Sequence[str] = STANDARD_FIELDS) -> Collection:
        return cls(np.zeros(n_events + 1, np.int64), {f: np.zeros(0) for f in field_names})

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_objects(self) -> int:
        return int(self.offsets[-1])

    def event_index(self) -> np.ndarray:
        """Event number of every object (flat, length n_objects)."""
        return np.repeat(np.arange(self.n_events), self.counts)

    def select(self, keep: np.ndarray) -> Collection:
        """Keep the objects where the flat boolean mask ``keep`` is true (order preserved)."""
        keep = np.asarray(keep, dtype=bool)
        counts = np.bincount(self.event_index()[keep], minlength=self.n_events)
        offsets = np.zeros(self.n_events + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Collection(offsets, {k: v[keep] for k, v in self.fields.items()})

    def sorted_by(self, field: str = "pt", descending: bool = True) -> Collection:
        """Objects reordered within each event by ``field``."""
        if self.n_objects == 0:
            return self
        key = -self.fields[field] if descending else self.fields[field]
        order = np.lexsort((key, self.event_index()))
        return Collection(self.offsets, {k: v[order] for k, v in self.fields.items()})

    def events(self, start: int, stop: int) -> Collection:
        """The sub-collection of events [start, stop)."""
        o0, o1 = self.offsets[start], self.offsets[stop]
        return Collection(
            self.offsets[start : stop + 1] - o0, {k: v[o0:o1] for k, v in self.fields.items()}
        )

    def take_events(self, mask: np.ndarray) -> Collection:
        """Keep whole events where the per-event boolean ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return self.select(np.repeat(mask, self.counts))._trim(mask)

    def _trim(self, mask: np.ndarray) -> Collection:
        counts = self.counts[mask]
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Collection(offsets, self.fields)

    def cartesian(self):
        """(px, py, pz, E) flat arrays."""
        f = self.fields
        px, py, pz, _ = to_cartesian(
            f["pt"], f["eta"], f["phi"], f.get("m", np.zeros_like(f["pt"]))
        )
        return px, py, pz, f["e"] if "e" in f else _

    def __repr__(self) -> str:
        return f"Collection(n_events={self.n_events}, n_objects={self.n_objects}, fields={list(self.fields)})"


def merge_collections(*collections: Collection, sort_field: str = "pt") -> Collection:
    """Merge collections event by event (fields common to all), sorted by decreasing ``sort_field``."""
    n = collections[0].n_events
    names = [f for f in collections[0].fields if all(f in c.fields for c in collections)]
    evt = np.concatenate([c.event_index() for c in collections])
    fields = {f: np.concatenate([c.fields[f] for c in collections]) for f in names}
    order = np.lexsort((-fields[sort_field], evt))
    counts = sum(c.counts for c in collections)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Collection(offsets, {f: v[order] for f, v in fields.items()})


class EventObjects:
    """Named collections of reconstructed objects for a batch of ``n_events`` events."""

    def __init__(
        self,
        n_events: int,
        collections: Mapping[str, Collection],
        singles: Sequence[str] = SINGLE_COLLECTIONS,
    ):
        self.n_events = int(n_events)
        self.collections = dict(collections)
        self.singles = tuple(s for s in singles if s in self.collections)
        for name, c in self.collections.items():
            if c.n_events != self.n_events:
                raise InputError(
                    f"collection {name!r} has {c.n_events} events, expected {self.n_events}"
                )

    def __getitem__(self, name: str) -> Collection:
        try:
            return self.collections[name]
        except KeyError:
            raise InputError(
                f"no object collection {name!r} in these events; available: {', '.join(self.collections)}",
                field=name,
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self.collections

    def schema(self) -> dict[str, dict]:
        """``{name: {"fields": [...], "single": bool}}`` (what the expression compiler checks against)."""
        return {
            n: {"fields": list(c.fields), "single": n in self.singles}
            for n, c in self.collections.items()
        }

    def events(self, start: int, stop: int) -> EventObjects:
        return EventObjects(
            stop - start,
            {k: c.events(start, stop) for k, c in self.collections.items()},
            self.singles,
        )

    def take_events(self, mask) -> EventObjects:
        mask = np.asarray(mask, dtype=bool)
        return EventObjects(
            int(mask.sum()),
            {k: c.take_events(mask) for k, c in self.collections.items()},
            self.singles,
        )

    def to_awkward(self):
        """Awkward records per event: jagged lists per collection, records for single collections."""
        import awkward as ak

        out = {}
        for name, c in self.collections.items():
            rec = ak.zip({f: v for f, v in c.fields.items()}) if c.fields else None
            if name in self.singles:
                out[name] = rec
            else:
                out[name] = ak.unflatten(rec, c.counts)
        return ak.zip(out, depth_limit=1)

    @classmethod
    def from_awkward(cls, events, *, singles: Sequence[str] = SINGLE_COLLECTIONS) -> EventObjects:
        """Inverse of :meth:`to_awkward` (records of jagged collections / single records)."""
        import awkward as ak

        n = len(events)
        cols = {}
        for name in events.fields:
            arr = events[name]
            if arr.ndim == 1:  # a record per event
                counts = np.ones(n, np.int64)
                flat = arr
            else:
                counts = ak.to_numpy(ak.num(arr, axis=1)).astype(np.int64)
                flat = ak.flatten(arr, axis=1)
            fields = {f: ak.to_numpy(flat[f]).astype(np.float64) for f in ak.fields(flat)}
            cols[name] = Collection.from_fields(counts, **fields)
        return cls(n, cols, tuple(s for s in singles if s in cols))

    def __repr__(self) -> str:
        return f"EventObjects(n_events={self.n_events}, collections={list(self.collections)})"


def single_from_cartesian(px, py, pz=None, e=None, **extra) -> Collection:
    """A single collection (one object per event), e.g. MET, from its momentum components."""
    px, py = np.asarray(px, float), np.asarray(py, float)
    pz = np.zeros_like(px) if pz is None else pz
    e = np.hypot(px, py) if e is None else e
    pt, eta, phi, m = from_cartesian(px, py, pz, e)
    return Collection.from_fields(
        np.ones(len(px), np.int64),
        pt=pt,
        eta=eta,
        phi=phi,
        m=m,
        e=e,
        charge=np.zeros_like(px),
        **extra,
    )


def _compressors():
    from zarr.codecs import BloscCodec

    return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]


class ObjectStoreWriter:
    """Append batches of reconstructed events; the store appears at ``path`` only when closed cleanly.

    Batches are buffered and written a zarr chunk (``chunk_size`` events) at a time.

    Parameters
    ----------
    path
        Store path (``*.zarr``).
    benchmark_names
        Column names of ``weights``.
    chunk_size
        Events per zarr chunk.
    detector, provenance
        Recorded as attributes.
    """

    def __init__(
        self,
        path,
        benchmark_names: Sequence[str],
        *,
        chunk_size: int = 100_000,
        detector: dict | None = None,
        provenance: dict | None = None,
        attrs: dict | None = None,
    ):
        self.path = Path(path)
        self.benchmark_names = list(benchmark_names)
        self.chunk_size = int(chunk_size)
        self.detector = detector or {}
        self.provenance = provenance or {}
        self.extra_attrs = dict(attrs or {})
        self.n_events = 0
        self._schema: dict | None = None
        self._arrays: dict = {}
        self._buffer: list = []
        self._n_buffered = 0
        self._n_objects: dict[str, int] = {}

    def __enter__(self) -> ObjectStoreWriter:
        import zarr

        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._group = zarr.open_group(str(self._tmp), mode="w", zarr_format=3)
        nb = max(len(self.benchmark_names), 1)
        self._arrays["weights"] = self._group.create_array(
            "weights",
            shape=(0, len(self.benchmark_names)),
            chunks=(self.chunk_size, nb),
            dtype="float64",
            compressors=_compressors(),
            config={"write_empty_chunks": True},
        )
        self._arrays["sampling_benchmark"] = self._group.create_array(
            "sampling_benchmark",
            shape=(0,),
            chunks=(self.chunk_size,),
            dtype="int64",
            compressors=_compressors(),
            config={"write_empty_chunks": True},
        )
        return self

    def _create_collections(self, objects: EventObjects) -> None:
        self._schema = objects.schema()
        for name, c in objects.collections.items():
            g = self._group.create_group(name)
            off = g.create_array(
                "offsets",
                shape=(1,),
                chunks=(self.chunk_size + 1,),
                dtype="int64",
                compressors=_compressors(),
                config={"write_empty_chunks": True},
            )
            off[:] = np.zeros(1, np.int64)
            self._arrays[(name, "offsets")] = off
            self._arrays[(name, "values")] = g.create_array(
                "values",
                shape=(0, max(len(c.fields), 1)),
                chunks=(4 * self.chunk_size, max(len(c.fields), 1)),
                dtype="float64",
                compressors=_compressors(),
                config={"write_empty_chunks": True},
            )
            self._n_objects[name] = 0

    def append(self, objects, weights, sampling_benchmark=None) -> None:
        """Append a batch: :class:`EventObjects` (or awkward records), weights (n, n_b), sampling ids (n,)."""
        if not isinstance(objects, EventObjects):
            objects = EventObjects.from_awkward(objects)
        n = objects.n_events
        w = np.asarray(weights, np.float64).reshape(n, len(self.benchmark_names))
        s = (
            np.full(n, -1, np.int64)
            if sampling_benchmark is None
            else np.asarray(sampling_benchmark, np.int64).reshape(n)
        )
        if self._schema is None:
            self._create_collections(objects)
        elif objects.schema() != self._schema:
            raise InputError(
                f"collections changed between batches: {objects.schema()} vs {self._schema}",
                file=str(self.path),
            )
        self._buffer.append((objects, w, s))
        self._n_buffered += n
        if self._n_buffered >= self.chunk_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        items, self._buffer, n = self._buffer, [], self._n_buffered
        self._n_buffered = 0
        i0, i1 = self.n_events, self.n_events + n
        for key, k in (("weights", 1), ("sampling_benchmark", 2)):
            a = self._arrays[key]
            a.resize((i1,) + a.shape[1:])
            a[i0:i1] = np.concatenate([it[k] for it in items])
        for name, spec in self._schema.items():
            fields = spec["fields"]
            base = self._n_objects[name]
            offs, vals, pos = [], [], base
            for objects, _, _ in items:
                c = objects.collections[name]
                offs.append(c.offsets[1:] + pos)
                pos += c.n_objects
                vals.append(
                    np.stack([c.fields[f] for f in fields], axis=1)
                    if fields
                    else np.zeros((c.n_objects, 1))
                )
            off = self._arrays[(name, "offsets")]
            off.resize((i1 + 1,))
            off[i0 + 1 : i1 + 1] = np.concatenate(offs)
            v = self._arrays[(name, "values")]
            v.resize((pos, v.shape[1]))
            if pos > base:
                v[base:pos] = np.concatenate(vals)
            self._n_objects[name] = pos
        self.n_events = i1

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._flush()
                if self.n_events == 0:
                    raise InputError("no events to write: the sample is empty", file=str(self.path))
                self._group.attrs.update(
                    {
                        "format": OBJECTS_FORMAT,
                        "format_version": OBJECTS_FORMAT_VERSION,
                        "collections": self._schema,
                        "benchmark_names": self.benchmark_names,
                        "detector": self.detector,
                        "provenance": self.provenance,
                        "all_chunks_written": True,  # a missing chunk file means damage
                        **self.extra_attrs,
                    }
                )
                self._group.attrs["n_events"] = self.n_events
        except BaseException as err:
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise
        return self._ctx.__exit__(exc_type, exc, tb)


class ObjectStore:
    """Read-only view of an object store; reads chunks of events.

    Raises
    ------
    InputError
        Missing, incomplete, truncated store, or not an object store.
    """

    def __init__(self, path):
        from eftflow.store.group import lazy_group, read_store_attrs

        self.path = Path(path)
        p = str(self.path)
        attrs = read_store_attrs(
            self.path,
            kind="object",
            fmt=OBJECTS_FORMAT,
            version=OBJECTS_FORMAT_VERSION,
            hint="; run `eftflow simulate-detector` first",
        )
        self._zarr_group = lazy_group(self.path)
        self.attrs = attrs
        self.n_events = int(attrs["n_events"])
        self.schema: dict = attrs["collections"]
        self.benchmark_names = list(attrs["benchmark_names"])
        self.provenance = attrs.get("provenance", {})
        self.detector = attrs.get("detector", {})
        self._arrays: dict = {}
        expected = {"weights": self.n_events, "sampling_benchmark": self.n_events}
        expected.update({f"{c}/offsets": self.n_events + 1 for c in self.schema})
        expected.update({f"{c}/values": None for c in self.schema})
        from eftflow.store.chunkfiles import StoreArray

        for name, length in expected.items():
            try:
                arr = StoreArray(self.path, name, self._zarr_group)
            except KeyError:
                raise InputError(
                    "array is missing: the store is truncated", file=p, field=name
                ) from None
            if length is not None and arr.shape[0] != length:
                raise InputError(
                    f"has {arr.shape[0]} rows, expected {length}: the store is truncated",
                    file=p,
                    field=name,
                )
            if attrs.get("all_chunks_written") and arr.nchunks_initialized != arr.nchunks:
                raise InputError(
                    f"{arr.nchunks - arr.nchunks_initialized} of {arr.nchunks} chunk files are "
                    "missing: the store is damaged",
                    file=p,
                    field=name,
                )
            self._arrays[name] = arr

    @property
    def chunk_size(self) -> int:
        return int(self._arrays["weights"].chunks[0])

    def read(self, start: int = 0, stop: int | None = None) -> dict:
        """Events [start, stop): ``{"objects": EventObjects, "weights", "sampling_benchmark"}``."""
        stop = self.n_events if stop is None else min(int(stop), self.n_events)
        p = str(self.path)
        try:
            cols = {}
            for name, spec in self.schema.items():
                off = np.asarray(self._arrays[f"{name}/offsets"][start : stop + 1])
                o0, o1 = int(off[0]), int(off[-1])
                vals = np.asarray(self._arrays[f"{name}/values"][o0:o1])
                if vals.shape[0] != o1 - o0:
                    raise InputError(
                        "object arrays are shorter than the offsets: the store is truncated",
                        file=p,
                        field=name,
                    )
                cols[name] = Collection(
                    off - o0, {f: vals[:, k] for k, f in enumerate(spec["fields"])}
                )
            singles = [n for n, s in self.schema.items() if s.get("single")]
            weights = np.asarray(self._arrays["weights"][start:stop])
            sb = np.asarray(self._arrays["sampling_benchmark"][start:stop])
        except InputError:
            raise
        except Exception as err:
            raise InputError(
                f"cannot read events {start}:{stop} ({err}): the store is damaged", file=p
            ) from None
        return {
            "objects": EventObjects(stop - start, cols, singles),
            "weights": weights,
            "sampling_benchmark": sb,
            "start": start,
            "stop": stop,
        }

    def iter_chunks(
        self, chunk_size: int | None = None, *, start: int = 0, stop: int | None = None
    ) -> Iterator[dict]:
        """Yield :meth:`read` results over [start, stop) in steps of ``chunk_size`` events."""
        step = int(chunk_size or self.chunk_size)
        stop = self.n_events if stop is None else min(int(stop), self.n_events)
        for i0 in range(int(start), stop, step):
            yield self.read(i0, min(i0 + step, stop))

    def __repr__(self) -> str:
        return f"ObjectStore({str(self.path)!r}, n_events={self.n_events}, collections={list(self.schema)})"
