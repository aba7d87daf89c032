"""Analysis over chunks with Dask: object store → event store (observables + weights).

One plain function (:func:`analyse_chunk`) processes one chunk of events: it reads the chunk from
the object store, evaluates observables, cuts and efficiencies, and returns numpy arrays. The
driver (:func:`analyse_events`) runs these functions on the Dask cluster of the ``cluster`` config
section (:mod:`eftflow.cluster`: local, sized from the job's threads and memory, or on SLURM;
in-process for one local thread), keeps a bounded number of chunks in flight and
appends the results, in order, to an :class:`~eftflow.store.events.EventStoreWriter` — so memory
stays flat however large the input is, and the output appears only when complete.

Weights: the object store carries one weight column per benchmark of the generator; with a setup,
the physics benchmarks (in setup order) become ``weights`` and the nuisance benchmarks
``nuisance_weights``. Efficiencies multiply both.

Example
-------
>>> # analyse_events("objects.zarr", "events.zarr", {"default_observables": True}, setup=setup)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from eftflow.analysis.objects import ObjectStore
from eftflow.analysis.observables import Analysis
from eftflow.errors import InputError
from eftflow.progress import progress

__all__ = [
    "analyse_events",
    "analyse_chunk",
    "dask_client",
    "in_flight",
    "benchmark_columns",
    "LOCAL_CLUSTER",
]

log = logging.getLogger(__name__)


#: Dask settings when no ``cluster`` section is given: local, dashboard on a free loopback port.
LOCAL_CLUSTER = {"mode": "local", "dashboard_address": "127.0.0.1:0"}


@contextlib.contextmanager
def dask_client(
    threads: int = 1, memory_mb: int = 2000, *, cluster: Mapping | None = None
) -> Iterator[object | None]:
    """A Dask client from :func:`eftflow.cluster.dask_client`, or ``None`` to run serially.

    ``cluster`` is the ``cluster`` config section (mode local, slurm-runner or slurm-cluster;
    ``None``: :data:`LOCAL_CLUSTER`). Mode local with one thread runs in-process (``None``):
    a one-worker cluster only adds start-up time. Logs ``Dask dashboard: <link>`` first and
    releases the workers on success, failure and interruption.
    """
    from eftflow.cluster import dask_client as cluster_client
    from eftflow.cluster import use_dask

    cluster = LOCAL_CLUSTER if cluster is None else cluster
    if not use_dask(cluster, threads):
        yield None
        return
    with cluster_client(cluster, threads=int(threads), memory_mb=int(memory_mb)) as client:
        yield client


def in_flight(client, threads: int) -> int:
    """Chunks to keep submitted at once: twice the worker threads (at least twice ``threads``)."""
    try:
        total = sum(client.nthreads().values())
    except Exception:  # the scheduler is gone; the next result() raises the real error
        total = 0
    return 2 * max(int(threads), int(total), 1)


def benchmark_columns(
    store_names: list[str], setup=None, *, file=None
) -> tuple[list[int], list[str], list[int], list[str]]:
    """Indices/names of the physics and nuisance weight columns for ``setup`` (all physics without one)."""
    if setup is None:
        return list(range(len(store_names))), list(store_names), [], []
    phys = [b.name for b in setup.physics_benchmarks()]
    missing = [n for n in phys if n not in store_names]
    if missing:
        raise InputError(
            f"the events have no weights for benchmark(s) {', '.join(missing)} of the setup "
            f"(they have: {', '.join(store_names)}); regenerate with this setup",
            file=file,
            field="benchmark_names",
        )
    # nuisance columns: (store column, factor); a norm systematic's column is derived from the
    # reference benchmark times its variation when the events do not carry it. A nuisance
    # parameter without weights for all its benchmarks is left out (with a warning), the others kept.
    norm = setup.norm_nuisance_factors()
    ref = store_names.index(setup.reference_benchmark)
    found: dict[str, tuple[int, float]] = {}
    for nu in setup.nuisance_parameters.values():
        benches = [b for b in (nu.benchmark_positive, nu.benchmark_negative) if b is not None]
        cols = {}
        for b in benches:
            if b in store_names:
                cols[b] = (store_names.index(b), 1.0)
            elif b in norm:
                cols[b] = (ref, norm[b])
        lacking = [b for b in benches if b not in cols]
        if lacking:
            log.warning(
                "no event weights for nuisance benchmark(s) %s: nuisance parameter %s left out",
                ", ".join(lacking),
                nu.name,
            )
            continue
        found.update(cols)
    nuis_names = sorted(found)
    nuis_cols = [found[n] for n in nuis_names]
    return [store_names.index(n) for n in phys], phys, nuis_cols, nuis_names


def analyse_chunk(
    path: str,
    start: int,
    stop: int,
    analysis: Analysis,
    schema: Mapping,
    phys_idx: list[int],
    nuis_idx: list[tuple[int, float]],
) -> dict:
    """Analyse events [start, stop) of an object store; returns numpy arrays of the kept events."""
    chunk = ObjectStore(path).read(start, stop)
    result = analysis.compile(schema).run(chunk["objects"])
    w = chunk["weights"][result.keep]
    factor = result.efficiency[:, None]
    return {
        "observables": result.observables,
        "weights": w[:, phys_idx] * factor,
        "nuisance_weights": (
            np.stack([w[:, i] * f for i, f in nuis_idx], axis=1) * factor if nuis_idx else None
        ),
        "sampling_benchmark": chunk["sampling_benchmark"][result.keep],
        "cutflow": result.cutflow,
        "n_in": stop - start,
    }


def analyse_events(
    input_path,
    output_path,
    analysis: Analysis | Mapping,
    *,
    setup=None,
    threads: int = 1,
    memory_mb: int = 2000,
    chunk_size: int | None = None,
    provenance: dict | None = None,
    config_file: str | None = None,
    cluster: Mapping | None = None,
) -> dict:
    """Run the analysis on an object store and write the event store atomically.

    Parameters
    ----------
    input_path
        Object store written by ``eftflow simulate-detector``.
    output_path
        Event store to write (``*.zarr``).
    analysis
        An :class:`Analysis` or the ``analysis`` config section.
    setup
        The :class:`~eftflow.setup.EFTSetup` (selects physics and nuisance weight columns).
    threads, memory_mb
        Resources of the job: Dask workers and their memory.
    chunk_size
        Events per task (default: the config's ``chunk_size``, else the store's chunking).
    cluster
        The ``cluster`` config section: where Dask runs (:func:`dask_client`).

    Returns
    -------
    dict
        ``n_in``, ``n_out``, ``cutflow``, ``cross_sections`` (pb per benchmark), ``seconds``.

    Raises
    ------
    InputError
        Unreadable input, all events failing the cuts (nothing is written then).
    ExpressionError
        Bad expressions or unknown object/observable names (before any work is done).
    """
    from eftflow.store.events import EventStoreWriter, make_provenance

    t0 = time.perf_counter()
    if not isinstance(analysis, Analysis):
        section = dict(analysis or {})
        if chunk_size is None:
            chunk_size = section.get("chunk_size")
        analysis = Analysis.from_config(section, file=config_file)
    store = ObjectStore(input_path)
    analysis.compile(store.schema)  # fail early, in the driver
    phys_idx, phys, nuis_idx, nuis = benchmark_columns(
        store.benchmark_names, setup, file=str(input_path)
    )
    if chunk_size is not None:
        from eftflow.generate.base import check_count

        chunk_size = check_count(chunk_size, field="analysis.chunk_size", file=config_file)
    step = int(chunk_size or store.chunk_size)
    bounds = [(i, min(i + step, store.n_events)) for i in range(0, store.n_events, step)]
    prov = make_provenance(
        stage="analyse_events",
        input=str(input_path),
        upstream=store.provenance,
        detector=store.detector,
        **(provenance or {}),
    )
    cutflow: dict[str, int] = {}
    n_out = 0
    xs = np.zeros(len(phys))
    writer = EventStoreWriter(
        output_path,
        analysis.observable_names,
        phys,
        chunk_size=step,
        provenance=prov,
        nuisance_names=nuis or None,
        attrs={"cutflow": cutflow},
    )
    args = (str(input_path),)
    bar = progress(store.n_events, "analyse_events", logger=log)
    with writer, bar, dask_client(threads, memory_mb, cluster=cluster) as client:
        if client is None:
            results = (
                analyse_chunk(*args, i0, i1, analysis, store.schema, phys_idx, nuis_idx)
                for i0, i1 in bounds
            )
        else:
            results = _ordered(
                client,
                bounds,
                args,
                analysis,
                store.schema,
                phys_idx,
                nuis_idx,
                in_flight(client, threads),
            )
        for k, res in enumerate(results):
            for key, v in res["cutflow"].items():
                cutflow[key] = cutflow.get(key, 0) + v
            n = len(res["sampling_benchmark"])
            if n:
                writer.append(
                    observables=res["observables"],
                    weights=res["weights"],
                    sampling_benchmark=res["sampling_benchmark"],
                    nuisance_weights=res["nuisance_weights"],
                )
                xs += res["weights"].sum(axis=0)
                n_out += n
            bar.update(bounds[k][1] - bounds[k][0])
        if n_out == 0:
            flow = "; ".join(f"{c!r}: {v}" for c, v in cutflow.items())
            raise InputError(
                f"all {store.n_events} events fail the cuts (events left after each: {flow}); "
                "nothing written",
                file=str(input_path),
                field="analysis.cuts",
            )
        writer.extra_attrs["cutflow"] = {"input": store.n_events, **cutflow}
    seconds = time.perf_counter() - t0
    log.info(
        "wrote %s: %d of %d events (%.0f events/s)",
        output_path,
        n_out,
        store.n_events,
        store.n_events / max(seconds, 1e-9),
    )
    return {
        "n_in": store.n_events,
        "n_out": n_out,
        "cutflow": cutflow,
        "cross_sections": dict(zip(phys, xs.tolist())),
        "seconds": seconds,
        "output": Path(output_path),
    }


def _ordered(client, bounds, args, analysis, schema, phys_idx, nuis_idx, max_in_flight):
    """Submit chunk tasks with at most ``max_in_flight`` pending; yield results in order."""
    pending: deque = deque()
    it = iter(bounds)
    for i0, i1 in it:
        pending.append(
            client.submit(
                analyse_chunk, *args, i0, i1, analysis, schema, phys_idx, nuis_idx, pure=False
            )
        )
        if len(pending) >= max_in_flight:
            break
    while pending:
        fut = pending.popleft()
        res = fut.result()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(
                client.submit(
                    analyse_chunk, *args, *nxt, analysis, schema, phys_idx, nuis_idx, pure=False
                )
            )
        yield res
