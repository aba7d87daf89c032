"""The ``Detector`` protocol, detector jobs, particle sources and the chunked driver.

Input of every backend is a :class:`ParticleSource`: chunks of events as awkward Arrays with
fields ``particles`` (jagged records ``pid, status, px, py, pz, e, charge``), ``weights``
((n, n_benchmarks) numpy) and optionally ``sampling_benchmark`` — exactly what the particle store
(:mod:`eftflow.store.particles`, written by the shower) yields, and what
:mod:`eftflow.detector.sources` builds from LHE files. Output is an object store
(:mod:`eftflow.analysis.objects`) of reconstructed collections ``e, mu, l, a, j, met``.

Chunk-level backends (``builtin``, ``parton``) implement :meth:`ChunkDetector.reconstruct`; the
shared :func:`simulate_chunks` runs them over chunks (on Dask workers when ``threads > 1``) with a
per-chunk seed derived from the job seed and the chunk index. File-level backends (``delphes``)
implement ``simulate`` directly. Add a backend by adding a module ``eftflow.detector.<name>`` that
defines ``create(options) -> Detector``.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from eftflow.analysis.objects import EventObjects, ObjectStoreWriter
from eftflow.errors import ConfigError, InputError
from eftflow.progress import progress

__all__ = [
    "Detector",
    "ChunkDetector",
    "DetectorJob",
    "DetectorResult",
    "ParticleSource",
    "simulate_chunks",
    "get_detector",
    "chunk_rng",
    "BACKENDS",
]

log = logging.getLogger(__name__)

BACKENDS = ("builtin", "parton", "delphes")


@dataclass
class ParticleSource:
    """Where events come from: benchmark names and a chunk iterator.

    ``iter_chunks(chunk_size)`` yields awkward Arrays with fields ``particles`` and ``weights``
    (and optionally ``sampling_benchmark``).
    """

    benchmark_names: list[str]
    iter_chunks: Callable[[int], Iterator[Any]]
    path: str | None = None
    n_events: int | None = None
    provenance: dict = field(default_factory=dict)
    #: sampling benchmark index for all events when the chunks carry none (−1 = background)
    sampling_benchmark: int = -1
    #: the original file for file-level backends (HepMC for Delphes), if any
    hepmc_path: str | None = None

    @classmethod
    def from_arrays(cls, events, benchmark_names, **kw) -> ParticleSource:
        """A source over an in-memory awkward Array (tests, notebooks)."""

        def chunks(size: int):
            for i in range(0, len(events), size):
                yield events[i : i + size]

        return cls(list(benchmark_names), chunks, n_events=len(events), **kw)


@dataclass
class DetectorJob:
    """One detector job: input, output, seed and resources."""

    source: ParticleSource
    output: Path
    seed: int
    chunk_size: int = 10_000
    threads: int = 1
    memory_mb: int = 2000
    provenance: dict = field(default_factory=dict)
    #: the ``cluster`` config section (where Dask runs; ``None``: local, serial for one thread)
    cluster: dict | None = None

    def __post_init__(self):
        from eftflow.generate.base import check_count

        self.chunk_size = check_count(self.chunk_size, field="detector.chunk_size")
        self.threads = check_count(self.threads, field="threads")


@dataclass
class DetectorResult:
    output: Path
    n_events: int
    seconds: float
    metadata: dict = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    """A detector backend: particle-level events → reconstructed objects (an object store)."""

    name: str

    def simulate(self, job: DetectorJob) -> DetectorResult:
        """Run the job and write ``job.output`` atomically."""
        ...


class ChunkDetector:
    """Base for backends that reconstruct chunk by chunk (``builtin``, ``parton``)."""

    name = "chunk"

    def describe(self) -> dict:
        """What is recorded as the store's ``detector`` attribute."""
        return {"backend": self.name}

    def reconstruct(self, events, rng: np.random.Generator) -> EventObjects:
        """Reconstruct one chunk (awkward Array with ``particles``)."""
        raise NotImplementedError

    def simulate(self, job: DetectorJob) -> DetectorResult:
        return simulate_chunks(self, job)


def chunk_rng(seed: int, chunk_index: int) -> np.random.Generator:
    """The generator of chunk ``chunk_index`` of a job seeded ``seed`` (independent streams)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(chunk_index)]))


def _reconstruct_task(detector: ChunkDetector, events, seed: int, index: int):
    objects = detector.reconstruct(events, chunk_rng(seed, index))
    return objects


def _chunk_columns(events, source: ParticleSource, n_b: int):
    import awkward as ak

    fields = ak.fields(events)
    if "particles" not in fields or "weights" not in fields:
        raise InputError(
            f"event chunks need fields 'particles' and 'weights', got {fields}", file=source.path
        )
    w = np.asarray(ak.to_numpy(events["weights"]), dtype=np.float64).reshape(len(events), -1)
    if w.shape[1] != n_b:
        raise InputError(
            f"events carry {w.shape[1]} weights but {n_b} benchmark names",
            file=source.path,
            field="weights",
        )
    if "sampling_benchmark" in fields:
        sb = ak.to_numpy(events["sampling_benchmark"]).astype(np.int64)
    else:
        sb = np.full(len(events), source.sampling_benchmark, np.int64)
    return w, sb


def simulate_chunks(detector: ChunkDetector, job: DetectorJob) -> DetectorResult:
    """Run a chunk-level detector over the job's source into an object store (atomic)."""
    from eftflow.analysis.analyse import dask_client, in_flight
    from eftflow.store.events import make_provenance

    t0 = time.perf_counter()
    src = job.source
    n_b = len(src.benchmark_names)
    prov = make_provenance(
        stage="simulate_detector",
        detector=detector.name,
        seed=job.seed,
        input=src.path,
        upstream=src.provenance or None,
        **job.provenance,
    )
    writer = ObjectStoreWriter(
        job.output,
        src.benchmark_names,
        chunk_size=job.chunk_size,
        detector=detector.describe(),
        provenance=prov,
    )
    n = 0
    bar = progress(src.n_events, "simulate_detector", logger=log)
    with writer, bar, dask_client(job.threads, job.memory_mb, cluster=job.cluster) as client:
        pending: deque = deque()
        for k, events in enumerate(src.iter_chunks(job.chunk_size)):
            w, sb = _chunk_columns(events, src, n_b)
            if client is None:
                pending.append((_reconstruct_task(detector, events, job.seed, k), w, sb))
            else:
                pending.append(
                    (
                        client.submit(_reconstruct_task, detector, events, job.seed, k, pure=False),
                        w,
                        sb,
                    )
                )
            while pending and (client is None or len(pending) > in_flight(client, job.threads)):
                n += _write_one(writer, pending.popleft(), bar)
        while pending:
            n += _write_one(writer, pending.popleft(), bar)
        if n == 0:
            raise InputError("no events to simulate: the input is empty", file=src.path)
    seconds = time.perf_counter() - t0
    log.info(
        "detector %s: %d events in %.1f s (%.0f events/s) -> %s",
        detector.name,
        n,
        seconds,
        n / max(seconds, 1e-9),
        job.output,
    )
    return DetectorResult(Path(job.output), n, seconds)


def _write_one(writer: ObjectStoreWriter, item, bar) -> int:
    obj, w, sb = item
    if hasattr(obj, "result"):
        obj = obj.result()
    writer.append(obj, w, sb)
    bar.update(obj.n_events)
    return obj.n_events


def get_detector(
    backend: str, options: Mapping | None = None, *, file: str | None = None
) -> Detector:
    """The detector backend ``backend`` configured with ``options`` (the ``detector`` config section)."""
    if backend not in BACKENDS:
        raise ConfigError(
            f"unknown detector backend {backend!r}; expected one of {', '.join(BACKENDS)}",
            file=file,
            field="detector.backend",
        )
    from eftflow.generate.base import check_count

    # backend options may sit in a sub-section named after the backend (the config schema's form)
    options = dict(options or {})
    if "chunk_size" in options:
        check_count(options["chunk_size"], field="detector.chunk_size", file=file)
    merged = {k: v for k, v in options.items() if k not in BACKENDS}
    merged.update(options.get(backend) or {})
    module = importlib.import_module(f"eftflow.detector.{backend}")
    return module.create(merged, file=file)
