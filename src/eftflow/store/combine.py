"""Combine event stores into one, shuffle them with a recorded seed, split train/validation/test.

What :func:`combine_events` does, and why
-----------------------------------------
* **Compatibility.** All inputs must have the same observable names, benchmark names and
  nuisance-benchmark names, and, where recorded, the same ``setup_hash`` and
  ``observable_definitions`` attributes. A mismatch raises :class:`~eftflow.errors.InputError`
  naming both files and the differing field. With ``setup=`` the benchmark names are also checked
  against the setup file and its fingerprint is recorded as ``setup_hash``.
* **Sampling ids and event counts.** ``sampling_benchmark`` is carried over unchanged. The output
  records ``signal_events`` (events per physics benchmark, in ``benchmark_names`` order) and
  ``background_events`` (events with id −1), recounted from the ids as MadMiner's
  ``combine_and_shuffle`` does with its default ``recalculate_header=True``.
* **k-factors.** Weights are stored exactly as they come in (times an optional per-input
  ``k_factors``, the same argument as MadMiner's ``combine_and_shuffle``). The mixing factor
  n_b/Σn is **not** applied at combine time: MadMiner does not apply it there either, but at read
  time (``DataAnalyzer._calculate_sampling_factors``), and only when all events are used — with
  ``generated_close_to`` only the events of the closest benchmark (plus background) are used, with
  no factor. Storing raw weights keeps both uses possible and makes an exported file give MadMiner
  the numbers it expects (pre-scaled weights would be scaled twice). Consumers that use all
  events multiply the weights of an event with id b by ``sampling_factors(store)[b]`` (n_b/Σn for
  b ≥ 0, 1 for background), see :func:`sampling_factors`.
* **Shuffle.** A uniform random permutation by the scatter–shuffle method (Rao–Sandelius): pass 1
  streams the inputs chunk by chunk and sends every event to one of K blocks chosen uniformly at
  random (temporary raw files next to the output); pass 2 loads one block at a time, permutes it
  in memory and appends it to the output. K is chosen so a block fits in the memory budget, so
  peak memory depends on ``memory_mb``, not on N. When everything fits in one block the temporary
  files are skipped: the inputs are read straight into column arrays and one permutation is
  written out (no Dask: threads only; see :mod:`eftflow.store.shuffle`). The seed is recorded (``shuffle_seed``); the same inputs and seed give the
  same output.
* **Split.** The output is split by index: ``partitions = {"train": [0, n1], "validation": [n1,
  n2], "test": [n2, n]}`` (half-open), n_test = round(test_split·n), n_validation =
  round(validation_split·n), train the rest. Every event belongs to exactly one partition (MadMiner
  drops the event at each boundary; eftflow does not). Weights are **not** rescaled per partition:
  a partition's cross-section estimate is Σ w / f with f = (stop − start)/n, the partition's
  actual fraction (:func:`partition_fraction`).

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from eftflow.store.events import EventStoreWriter, EventStore
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for i in range(2):
...     with EventStoreWriter(d / f"in{i}.zarr", ["x"], ["sm", "bsm"], chunk_size=4) as w:
...         w.append(observables=np.arange(10.0)[:, None], weights=np.ones((10, 2)),
...                  sampling_benchmark=np.full(10, i))
>>> info = combine_events([d / "in0.zarr", d / "in1.zarr"], d / "all.zarr", seed=1)
>>> out = EventStore(d / "all.zarr")
>>> out.n_events, out.attrs["signal_events"], partition_bounds(out, "validation")
(20, [10, 10], (12, 16))
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.random import default_rng  # at import: numpy loads numpy.random lazily

from eftflow.errors import ConfigError, InputError
from eftflow.store.events import EventStore, EventStoreWriter, make_provenance
from eftflow.store.shuffle import (
    READ_THREADS,
    BackgroundWriter,
    RowLayout,
    count_sampling,
    load_columns,
    prefetch,
    scatter_shuffle,
    write_permuted,
)

__all__ = [
    "combine_events",
    "check_compatible",
    "split_bounds",
    "partition_bounds",
    "partition_fraction",
    "sampling_factors",
    "count_sampling",
    "setup_fingerprint",
    "PARTITIONS",
]

log = logging.getLogger(__name__)

PARTITIONS = ("train", "validation", "test")
_CHECKED_ATTRS = ("setup_hash", "observable_definitions")


# --- small public helpers --------------------------------------------------------------------
def setup_fingerprint(setup_path: str | Path) -> str:
    """SHA-256 of a setup file's physics content (parameters, benchmarks, morphing, systematics).

    Two files written separately from the same setup (by eftflow or MadMiner) get the same
    fingerprint; attributes and provenance are ignored. Record it in an event store as the
    ``setup_hash`` attribute so that stores from different setups cannot be combined.
    """
    from eftflow.store.setup_h5 import read_setup

    data = read_setup(setup_path)
    data.pop("attrs", None)

    def norm(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        return v

    text = json.dumps(norm(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def split_bounds(n: int, validation_split: float = 0.2, test_split: float = 0.2) -> dict:
    """Half-open index ranges ``{"train": [0, n1], "validation": [n1, n2], "test": [n2, n]}``.

    n_test = round(test_split·n), n_validation = round(validation_split·n), the rest is train;
    no event is dropped. Raises :class:`ConfigError` for splits outside [0, 1) or leaving no
    training events.

    >>> split_bounds(10)
    {'train': [0, 6], 'validation': [6, 8], 'test': [8, 10]}
    """
    for key, v in (
        ("combine.validation_split", validation_split),
        ("combine.test_split", test_split),
    ):
        if not (isinstance(v, int | float) and 0.0 <= float(v) < 1.0):
            raise ConfigError(f"must be a number in [0, 1), got {v!r}", field=key)
    if validation_split + test_split >= 1.0:
        raise ConfigError(
            f"validation_split + test_split = {validation_split + test_split} leaves no training events",
            field="combine.validation_split",
        )
    n_test = int(round(test_split * n))
    n_val = int(round(validation_split * n))
    n1 = n - n_val - n_test
    if n1 <= 0:
        raise ConfigError(
            f"{n} events are too few for these splits: no training events",
            field="combine.test_split",
        )
    return {"train": [0, n1], "validation": [n1, n1 + n_val], "test": [n1 + n_val, n]}


def partition_bounds(store: EventStore | str | Path, name: str) -> tuple[int, int]:
    """``(start, stop)`` of partition ``name`` (train/validation/test) of a combined store.

    Same as :meth:`EventStore.partition_bounds`; read a partition with
    ``store.iter_chunks(start=start, stop=stop)``.
    """
    store = store if isinstance(store, EventStore) else EventStore(store)
    return store.partition_bounds(name)


def partition_fraction(store: EventStore | str | Path, name: str) -> float:
    """Fraction of the store's events in partition ``name``: divide Σ w over it by this for σ."""
    store = store if isinstance(store, EventStore) else EventStore(store)
    start, stop = partition_bounds(store, name)
    return (stop - start) / store.n_events


def sampling_factors(store: EventStore | str | Path) -> np.ndarray:
    """MadMiner's mixing factors: index b → n_b/Σn for sampling id b ≥ 0; index −1 (last) → 1.

    Multiply the weights of an event with sampling id ``s`` by ``factors[s]`` when using all
    events of a store that mixes samples generated at several benchmarks (as
    ``DataAnalyzer._calculate_sampling_factors``). Uses the ``signal_events`` attribute, or counts
    the ids if the store has none.
    """
    store = store if isinstance(store, EventStore) else EventStore(store)
    counts = store.attrs.get("signal_events")
    if counts is None:
        total = np.zeros(len(store.benchmark_names) + 1, np.int64)
        for c in store.iter_chunks(["sampling_benchmark"]):
            total += count_sampling(
                c["sampling_benchmark"], len(store.benchmark_names), file=str(store.path)
            )
        counts = total[1:]
    events = np.asarray(counts, dtype=np.float64)
    factors = events / events.sum() if events.sum() > 0 else np.ones_like(events)
    return np.hstack((factors, 1.0))


# --- compatibility ---------------------------------------------------------------------------
def check_compatible(stores: Sequence[EventStore]) -> None:
    """Raise :class:`InputError` unless all stores share observables, benchmarks and setup."""
    first = stores[0]
    fields = {
        "attrs.observable_names": lambda s: s.observable_names,
        "attrs.benchmark_names": lambda s: s.benchmark_names,
        "attrs.nuisance_benchmark_names": lambda s: s.nuisance_benchmark_names,
    }
    for other in stores[1:]:
        for field, get in fields.items():
            if get(first) != get(other):
                raise InputError(
                    f"cannot combine stores with different {field.split('.')[-1]}: "
                    f"{get(first)!r} in {first.path} but {get(other)!r} in {other.path}",
                    file=str(other.path),
                    field=field,
                )
        for key in _CHECKED_ATTRS:
            a, b = first.attrs.get(key), other.attrs.get(key)
            if a is not None and b is not None and a != b:
                raise InputError(
                    f"cannot combine stores with different {key}: {a!r} in {first.path} but {b!r} in {other.path}",
                    file=str(other.path),
                    field=f"attrs.{key}",
                )
            if (a is None) != (b is None):
                log.warning(
                    "%s recorded in only some inputs (%s, %s): not checked",
                    key,
                    first.path,
                    other.path,
                )


def _check_setup(stores: Sequence[EventStore], setup_path) -> str:
    from eftflow.store.setup_h5 import read_setup

    data = read_setup(setup_path)
    phys = [b["name"] for b in data["benchmarks"] if not b["is_nuisance"]]
    nuis = [b["name"] for b in data["benchmarks"] if b["is_nuisance"]]
    fp = setup_fingerprint(setup_path)
    for s in stores:
        if list(s.benchmark_names) != phys:
            raise InputError(
                f"benchmarks {s.benchmark_names!r} differ from the physics benchmarks {phys!r} of setup {setup_path}",
                file=str(s.path),
                field="attrs.benchmark_names",
            )
        if list(s.nuisance_benchmark_names or []) != nuis:
            raise InputError(
                f"nuisance benchmarks {s.nuisance_benchmark_names!r} differ from {nuis!r} in setup {setup_path}",
                file=str(s.path),
                field="attrs.nuisance_benchmark_names",
            )
        if s.attrs.get("setup_hash") not in (None, fp):
            raise InputError(
                f"store was made with a different setup than {setup_path} (setup_hash differs)",
                file=str(s.path),
                field="attrs.setup_hash",
            )
    return fp


def _block_rows(budget: float, row: int, piece: int, block_mb, block_events) -> int:
    """Events per shuffle block for a memory budget of ``budget`` bytes.

    A block in memory costs its rows (``row`` bytes each) and an 8-byte index of its permutation
    per event; besides it, about five pieces of ``piece`` rows are in memory (the reused gather
    buffers, the row buffer of pass 2, the chunk being written). At least a quarter of the budget
    goes to the block.
    """
    if block_events:
        return max(int(block_events), 1)
    rows = max(int((budget - 5 * piece * row) / (row + 8)), int(budget / 4 / row), 1)
    if block_mb:
        rows = min(rows, max(int(float(block_mb) * 2**20 / row), 1))
    return rows


def combine_events(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    seed: int,
    validation_split: float = 0.2,
    test_split: float = 0.2,
    memory_mb: float = 1000.0,
    chunk_size: int | None = None,
    k_factors: Sequence[float] | float | None = None,
    setup: str | Path | None = None,
    tmp_dir: str | Path | None = None,
    block_events: int | None = None,
    block_mb: float | None = None,
) -> dict:
    """Combine event stores into one shuffled, split store (streaming; memory set by ``memory_mb``).

    Parameters
    ----------
    inputs
        Event stores (same observables, benchmarks and setup).
    output
        The combined store; written atomically (nothing is left behind on failure).
    seed
        Seed of the shuffle (recorded as ``shuffle_seed``).
    validation_split, test_split
        Fractions of events in the validation and test partitions (MadMiner's defaults 0.2/0.2).
    memory_mb
        Memory budget for event buffers. When all events fit in it (about 8 bytes per event more
        than their columns, plus ~80 MB of buffers) they are shuffled in memory; otherwise in
        blocks that fit (see the module notes).
    chunk_size
        Events per chunk of the output (default: that of the first input).
    k_factors
        Optional factor per input (or one for all) multiplying its weights, as in MadMiner.
    setup
        Optional setup file: benchmark names are checked against it and its fingerprint is
        recorded as ``setup_hash``.
    tmp_dir
        Directory for the shuffle's temporary block files (default: next to the output).
    block_events
        Events per shuffle block, overriding the size derived from ``memory_mb``. The output for
        a given seed depends on the number of blocks, recorded as ``shuffle_blocks``: reproduce a
        store with the same seed and the same ``memory_mb`` (or ``block_events``).
    block_mb
        Optional cap on the memory of one shuffle block in MB (``combine.shuffle_block_mb``).

    Returns
    -------
    dict
        Summary: ``n_events``, ``partitions``, ``signal_events``, ``background_events``,
        ``n_blocks``, ``seconds``.
    """
    t0 = time.perf_counter()
    if not inputs:
        raise InputError("no input stores given", field="inputs")
    output = Path(output)
    stores = [EventStore(p) for p in inputs]
    if any(s.path.resolve() == output.resolve() for s in stores):
        raise InputError("output would overwrite an input store", file=str(output))
    seen: dict = {}
    for k, s in enumerate(stores):
        first = seen.setdefault(s.path.resolve(), k)
        if first != k:
            raise InputError(
                f"given twice (inputs {first + 1} and {k + 1}): its events would be duplicated",
                file=str(s.path),
                field="inputs",
            )
    check_compatible(stores)
    setup_hash = (
        _check_setup(stores, setup) if setup is not None else stores[0].attrs.get("setup_hash")
    )
    if k_factors is None:
        kf = [1.0] * len(stores)
    elif isinstance(k_factors, int | float):
        kf = [float(k_factors)] * len(stores)
    else:
        kf = [float(k) for k in k_factors]
        if len(kf) != len(stores):
            raise ConfigError(
                f"{len(kf)} k-factors for {len(stores)} input stores", field="k_factors"
            )
    if not all(math.isfinite(k) and k > 0 for k in kf):
        raise ConfigError(f"k-factors must be positive and finite, got {kf}", field="k_factors")

    first = stores[0]
    n_total = sum(s.n_events for s in stores)
    parts = split_bounds(n_total, validation_split, test_split)
    columns = first.columns
    n_b = len(first.benchmark_names)
    widths = {
        "observables": len(first.observable_names),
        "weights": n_b,
        "sampling_benchmark": 1,
        "nuisance_weights": len(first.nuisance_benchmark_names or []),
    }
    widths = {c: widths[c] for c in columns}
    layout = RowLayout(widths)
    row = 8 * layout.width
    chunk = int(chunk_size or first.chunk_size)
    budget = max(float(memory_mb), 16.0) * 2**20
    # pieces appended at once: whole chunks, ~16 MB (zarr-layout chunks are compressed in parallel)
    piece = max(chunk, (16 * 2**20 // row) // chunk * chunk)
    block_rows = _block_rows(budget, row, piece, block_mb, block_events)
    n_blocks = max(math.ceil(n_total / block_rows), 1)
    # rows per read in the many-block pass 1: ~1/48 of the budget (a read, its packed and its
    # block-sorted copy, and the next read being prefetched), whole input chunks where possible
    read_rows = max(min(int(budget / 48 / row), block_rows), 1)
    if read_rows > first.chunk_size:
        read_rows -= read_rows % first.chunk_size
    rng = default_rng(seed)
    counts = np.zeros(n_b + 1, np.int64)

    attrs = {
        "partitions": parts,
        "split": {"validation_split": float(validation_split), "test_split": float(test_split)},
        "shuffle_seed": int(seed),
        "input_files": [str(s.path) for s in stores],
        "input_events": [s.n_events for s in stores],
        "k_factors": kf,
        "observable_definitions": first.attrs.get("observable_definitions"),
        "setup_hash": setup_hash,
    }
    attrs = {k: v for k, v in attrs.items() if v is not None}
    provenance = make_provenance(
        stage="combine_events", shuffle_seed=int(seed), inputs=[s.provenance for s in stores]
    )
    writer = EventStoreWriter(
        output,
        first.observable_names,
        first.benchmark_names,
        chunk_size=chunk,
        provenance=provenance,
        nuisance_names=first.nuisance_benchmark_names,
        attrs=attrs,
    )
    log.info(
        "combining %d stores, %d events into %s: %d shuffle block(s) of ≤ %d events",
        len(stores), n_total, output, n_blocks, block_rows,
    )  # fmt: skip
    if n_blocks > 1:
        piece = min(piece, max(chunk, block_rows // 4 // chunk * chunk))
    from concurrent.futures import ThreadPoolExecutor

    with writer, ThreadPoolExecutor(READ_THREADS, thread_name_prefix="eftflow-read") as pool:
        if n_blocks == 1:
            # the permutation is drawn in a thread of its own while the pool's threads read the
            # inputs; then the pool's threads gather, compress and write the output chunks
            with ThreadPoolExecutor(1, thread_name_prefix="eftflow-perm") as side:
                perm = side.submit(rng.permutation, n_total)
                cols = load_columns(
                    pool, [(s, 0, s.n_events, k) for s, k in zip(stores, kf)], widths, counts, n_b
                )
                perm = perm.result()
            write_permuted(cols, perm, writer, pool)
            del cols, perm
        else:
            sink = BackgroundWriter(writer)
            try:
                pieces = [
                    [(s, i0, min(i0 + read_rows, s.n_events), k)]
                    for s, k in zip(stores, kf)
                    for i0 in range(0, s.n_events, read_rows)
                ]
                loaded = prefetch(load_columns(pool, p, widths, counts, n_b) for p in pieces)
                scatter_shuffle(
                    loaded, sink, layout, n_blocks, rng, output, tmp_dir, piece, n_total
                )
                sink.close()
            except BaseException:
                sink.abort()
                raise
        writer.extra_attrs["signal_events"] = [int(v) for v in counts[1:]]
        writer.extra_attrs["background_events"] = int(counts[0])
        writer.extra_attrs["shuffle_blocks"] = int(n_blocks)
        if writer.n_events != n_total:  # pragma: no cover - an inconsistency in the inputs
            raise InputError(
                f"wrote {writer.n_events} events, expected {n_total}", file=str(output)
            )
    seconds = time.perf_counter() - t0
    log.info(
        "wrote %s: %d events in %.2f s (%.0f events/s)", output, n_total, seconds, n_total / seconds
    )
    return {
        "n_events": n_total,
        "partitions": parts,
        "signal_events": [int(v) for v in counts[1:]],
        "background_events": int(counts[0]),
        "n_blocks": n_blocks,
        "seconds": seconds,
    }
