"""MadMiner HDF5 event files ↔ eftflow event stores, streaming by slices.

:func:`export_madminer` writes, on top of a copy of the setup file, exactly the datasets MadMiner
0.9.6 reads (``madminer/utils/interfaces/hdf5.py``): ``samples/observations`` (n, n_obs),
``samples/weights`` (n, n_benchmarks) with columns in the setup's ``benchmarks/names`` order
(physics benchmarks, then nuisance benchmarks), ``samples/sampling_benchmarks`` (n,) int64 (index
of the physics benchmark in the setup, −1 = background), ``sample_summary/signal_events``
(n_physics,) int64, ``sample_summary/background_events`` () int64, ``observables/names`` and
``observables/definitions`` (S256; ``"None"`` where no expression is known, as MadMiner writes
for callables). Datasets are contiguous and uncompressed, as MadMiner writes them; they are created
at full size and filled chunk by chunk, so memory does not grow with the number of events. The
file is written to a temporary path and renamed when complete.

Weights are exported as stored (no n_b/Σn mixing factor, no partition rescaling): MadMiner applies
its mixing factors and its own train/validation/test bounds when it reads the file. Export a
shuffled store (``eftflow combine-events``), since MadMiner splits by index.

:func:`import_madminer` reads a MadMiner event file (for example one written by
``combine_and_shuffle``) slice by slice into an event store: physics-benchmark weight columns go to
``weights``, nuisance-benchmark columns to ``nuisance_weights``; ``sample_summary`` becomes the
``signal_events`` / ``background_events`` attributes; the setup's fingerprint is recorded as
``setup_hash``.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from eftflow.setup import EFTSetup
>>> from eftflow.store.events import EventStoreWriter, EventStore
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> s = EFTSetup()
>>> s.add_parameter("eft", 1, "a", morphing_max_power=2, parameter_range=(-1, 1))
>>> s.add_benchmark({"a": 0.0}, "sm")
>>> s.set_morphing(max_overall_power=2, seed=1)
>>> s.save(d / "setup.h5")
>>> names = list(s.benchmarks)
>>> with EventStoreWriter(d / "ev.zarr", ["x"], names) as w:
...     w.append(observables=np.ones((5, 1)), weights=np.ones((5, 3)),
...              sampling_benchmark=np.zeros(5, int))
>>> export_madminer(d / "ev.zarr", d / "setup.h5", d / "ev.h5")
>>> import_madminer(d / "ev.h5", d / "back.zarr")
>>> EventStore(d / "back.zarr").cross_sections().tolist()
[5.0, 5.0, 5.0]
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.store.atomic import atomic_path
from eftflow.store.combine import count_sampling, setup_fingerprint, split_bounds
from eftflow.store.events import EventStore, EventStoreWriter, check_finite, make_provenance
from eftflow.store.setup_h5 import EMPTY, read_setup, reference_flags

__all__ = ["export_madminer", "import_madminer"]

log = logging.getLogger(__name__)

_EVENT_GROUPS = ("samples", "sample_summary", "observables")


def _enc(strings) -> np.ndarray:
    return np.array(
        [(EMPTY if s is None else str(s)).encode("ascii", "ignore") for s in strings], dtype="S256"
    )


def _dec(values) -> list[str]:
    return [
        v.decode("ascii", "replace") if isinstance(v, bytes) else str(v)
        for v in np.atleast_1d(values)
    ]


def export_madminer(
    store_path: str | Path,
    setup_path: str | Path,
    out_h5: str | Path,
    *,
    chunk_size: int | None = None,
) -> None:
    """Write an event store as a MadMiner event file (setup + ``samples/*`` + ``sample_summary/*``).

    Parameters
    ----------
    store_path
        The event store (preferably combined and shuffled).
    setup_path
        The setup file the store was made with; its benchmark names must match the store's.
    out_h5
        The MadMiner file to write (atomically; replaced if it exists).
    chunk_size
        Events per slice (default: the store's chunk size).

    Raises
    ------
    InputError
        Store and setup disagree on benchmarks or setup fingerprint; unreadable inputs.
    """
    import h5py

    store = EventStore(store_path)
    setup = read_setup(setup_path)
    s_path, st_path = str(setup_path), str(store.path)
    names = [b["name"] for b in setup["benchmarks"]]
    is_nuis = [bool(b["is_nuisance"]) for b in setup["benchmarks"]]
    phys = [n for n, f in zip(names, is_nuis) if not f]
    store_nuis = list(store.nuisance_benchmark_names or [])
    if sorted(store.benchmark_names) != sorted(phys):
        raise InputError(
            f"store benchmarks {store.benchmark_names!r} differ from the physics benchmarks {phys!r} of setup {s_path}",
            file=st_path,
            field="attrs.benchmark_names",
        )
    nuis = [n for n, f in zip(names, is_nuis) if f]
    if sorted(store_nuis) != sorted(nuis):
        raise InputError(
            f"store nuisance benchmarks {store_nuis!r} differ from {nuis!r} in setup {s_path}",
            file=st_path,
            field="attrs.nuisance_benchmark_names",
        )
    if store.attrs.get("setup_hash") not in (None, setup_fingerprint(setup_path)):
        raise InputError(
            f"store was made with a different setup than {s_path} (setup_hash differs)",
            file=st_path,
            field="attrs.setup_hash",
        )
    # column sources, in the setup's benchmark order
    src = [
        ("w", store.benchmark_names.index(n)) if not f else ("nu", store_nuis.index(n))
        for n, f in zip(names, is_nuis)
    ]
    w_idx = np.array([i for kind, i in src if kind == "w"], dtype=np.int64)
    w_pos = np.array([j for j, (kind, _) in enumerate(src) if kind == "w"], dtype=np.int64)
    nu_idx = np.array([i for kind, i in src if kind == "nu"], dtype=np.int64)
    nu_pos = np.array([j for j, (kind, _) in enumerate(src) if kind == "nu"], dtype=np.int64)
    id_map = np.array(
        [phys.index(n) for n in store.benchmark_names] + [-1], dtype=np.int64
    )  # [-1] → −1
    n, n_obs, n_all = store.n_events, len(store.observable_names), len(names)
    defs = store.attrs.get("observable_definitions") or [None] * n_obs
    cols = ["observables", "weights", "sampling_benchmark"] + (
        ["nuisance_weights"] if nu_idx.size else []
    )
    counts = np.zeros(len(store.benchmark_names) + 1, np.int64)

    unreadable = [s["name"] for s in setup["systematics"] if s["type"] in ("norm", "pdf")]
    if unreadable:
        log.warning(
            "%s: MadMiner 0.9.6 cannot load a file with norm or pdf systematics (%s): its "
            "loader fails with 'Invalid systematic scale: None'; files without them load",
            out_h5, ", ".join(unreadable),
        )  # fmt: skip
    with atomic_path(out_h5) as tmp:
        shutil.copyfile(setup_path, tmp)
        with h5py.File(tmp, "a") as f:
            for g in _EVENT_GROUPS:
                if g in f:
                    del f[g]
            # the reference benchmark flagged, as MadMiner's nuisance morphing needs (setup
            # files written before the flag was set have none)
            flags = np.array(reference_flags(setup["benchmarks"]), np.int64)
            if "benchmarks/is_reference" in f:
                del f["benchmarks/is_reference"]
            f.create_dataset("benchmarks/is_reference", data=flags)
            f.create_dataset("observables/names", data=_enc(store.observable_names), dtype="S256")
            f.create_dataset("observables/definitions", data=_enc(defs), dtype="S256")
            d_obs = f.create_dataset("samples/observations", shape=(n, n_obs), dtype=np.float64)
            d_w = f.create_dataset("samples/weights", shape=(n, n_all), dtype=np.float64)
            d_s = f.create_dataset("samples/sampling_benchmarks", shape=(n,), dtype=np.int64)
            for c in store.iter_chunks(cols, chunk_size=chunk_size):
                i0, i1 = c["start"], c["stop"]
                d_obs[i0:i1] = c["observables"]
                w = np.empty((i1 - i0, n_all))
                w[:, w_pos] = c["weights"][:, w_idx]
                if nu_idx.size:
                    w[:, nu_pos] = c["nuisance_weights"][:, nu_idx]
                check_finite(w, file=st_path, field="weights", start=i0)
                d_w[i0:i1] = w
                sb = c["sampling_benchmark"]
                counts += count_sampling(sb, len(store.benchmark_names), file=st_path)
                d_s[i0:i1] = id_map[sb]  # id −1 indexes the last entry, −1
            signal = store.attrs.get("signal_events")
            signal = counts[1:] if signal is None else np.asarray(signal, np.int64)
            background = int(store.attrs.get("background_events", counts[0]))
            summary = np.zeros(len(phys), np.int64)
            summary[id_map[:-1]] = signal
            f.create_dataset("sample_summary/signal_events", data=summary)
            f.create_dataset("sample_summary/background_events", data=np.int64(background))
    log.info("wrote %s: %d events, %d benchmarks (MadMiner layout)", out_h5, n, n_all)


def import_madminer(
    h5_path: str | Path,
    out_store: str | Path,
    *,
    chunk_size: int = 100_000,
    validation_split: float = 0.2,
    test_split: float = 0.2,
) -> None:
    """Read a MadMiner event file into an event store, slice by slice.

    The store gets train/validation/test partitions by index, as MadMiner's ``SampleAugmenter``
    splits the file (its defaults: ``validation_split=0.2``, ``test_split=0.2``; see
    :func:`~eftflow.store.combine.split_bounds`). They are random subsets only if the file was
    shuffled (by MadMiner's ``combine_and_shuffle``); otherwise run ``combine-events`` on the
    imported store. ``validation_split=test_split=0`` puts every event in ``train``.

    Raises
    ------
    InputError
        Missing datasets, inconsistent shapes, no events, non-finite weights (the file and the
        dataset are named; nothing is written).
    """
    import h5py

    path = str(h5_path)
    setup = read_setup(h5_path)  # also checks the file exists and has a setup
    split_bounds(1_000_000, validation_split, test_split)  # the splits checked before reading
    try:
        f = h5py.File(path, "r")
    except OSError as err:  # pragma: no cover - read_setup opened it already
        raise InputError(f"not a readable HDF5 file ({err})", file=path) from None
    with f:
        for name in ("samples/observations", "samples/weights"):
            if name not in f:
                raise InputError(
                    "dataset is missing: not a MadMiner event file", file=path, field=name
                )
        d_obs, d_w = f["samples/observations"], f["samples/weights"]
        n = d_obs.shape[0]
        names = [b["name"] for b in setup["benchmarks"]]
        is_nuis = np.array([bool(b["is_nuisance"]) for b in setup["benchmarks"]], dtype=bool)
        if n == 0:
            raise InputError(
                "the file holds no events: the sample is empty",
                file=path,
                field="samples/observations",
            )
        if d_obs.ndim != 2 or d_w.shape != (n, len(names)):
            raise InputError(
                f"shape {d_w.shape} does not match {n} events × {len(names)} benchmarks",
                file=path,
                field="samples/weights",
            )
        d_s = f["samples/sampling_benchmarks"] if "samples/sampling_benchmarks" in f else None
        if d_s is not None and d_s.size == 0:
            d_s = None  # MadMiner writes an empty array when no sampling ids are known
        if d_s is not None and d_s.shape != (n,):
            raise InputError(
                f"shape {d_s.shape}, expected ({n},)",
                file=path,
                field="samples/sampling_benchmarks",
            )
        if "observables/names" in f:
            obs_names = _dec(f["observables/names"][()])
            defs = (
                _dec(f["observables/definitions"][()])
                if "observables/definitions" in f
                else [EMPTY] * len(obs_names)
            )
        else:
            obs_names = [f"observable_{i}" for i in range(d_obs.shape[1])]
            defs = [EMPTY] * len(obs_names)
        if len(obs_names) != d_obs.shape[1]:
            raise InputError(
                f"{len(obs_names)} observable names but {d_obs.shape[1]} columns",
                file=path,
                field="observables/names",
            )
        phys = [nm for nm, fl in zip(names, is_nuis) if not fl]
        nuis = [nm for nm, fl in zip(names, is_nuis) if fl]
        attrs = {
            "observable_definitions": [None if d == EMPTY else d for d in defs],
            "setup_hash": setup_fingerprint(h5_path),
            "imported_from": path,
            "partitions": split_bounds(n, validation_split, test_split),
            "split": {"validation_split": float(validation_split), "test_split": float(test_split)},
        }
        if "sample_summary/signal_events" in f:
            sig = np.atleast_1d(f["sample_summary/signal_events"][()]).astype(np.int64)
            if sig.size == len(phys):
                attrs["signal_events"] = [int(v) for v in sig]
                attrs["background_events"] = int(f["sample_summary/background_events"][()])
        writer = EventStoreWriter(
            out_store,
            obs_names,
            phys,
            chunk_size=chunk_size,
            provenance=make_provenance(stage="import_madminer", source=path),
            nuisance_names=nuis or None,
            attrs=attrs,
        )
        with writer:
            for i0 in range(0, n, chunk_size):
                i1 = min(i0 + chunk_size, n)
                w = np.asarray(d_w[i0:i1], dtype=np.float64)
                check_finite(w, file=path, field="samples/weights", start=i0)
                s = (
                    np.full(i1 - i0, -1, np.int64)
                    if d_s is None
                    else np.asarray(d_s[i0:i1], np.int64)
                )
                count_sampling(s, len(phys), file=path)
                writer.append(
                    observables=d_obs[i0:i1],
                    weights=w[:, ~is_nuis],
                    sampling_benchmark=s,
                    nuisance_weights=w[:, is_nuis] if nuis else None,
                )
    log.info("wrote %s: %d events from %s", out_store, n, path)
