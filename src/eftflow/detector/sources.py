"""Particle sources for the detector stage: particle stores (showered) and LHE files (parton level).

Both give chunks as awkward Arrays with fields ``particles`` (jagged ``pid, status, px, py, pz, e,
charge``), ``weights`` ((n, n_benchmarks), in benchmark order) and, for particle stores, ``hard``
(the hard-process record, used for b-tagging truth). Final-state particles have ``status > 0``
and ``!= 2`` (Pythia's positive codes, LHE's 1); LHE intermediate resonances (status 2) and
incoming partons (−1) are not final.

Example
-------
>>> # src = open_source("results/shower/sm/0.zarr", benchmarks=["sm", "w_pos"])
>>> # for chunk in src.iter_chunks(10_000): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eftflow.detector.base import ParticleSource
from eftflow.errors import InputError

__all__ = [
    "open_source",
    "lhe_source",
    "particle_store_source",
    "lhe_chunk_to_awkward",
    "charge_from_pid",
]

_CHARGED_3 = {1: -1, 2: 2, 3: -1, 4: 2, 5: -1, 6: 2, 11: -3, 13: -3, 15: -3, 24: 3, 37: 3}


def charge_from_pid(pid: np.ndarray) -> np.ndarray:
    """Electric charge of elementary particles from their PDG id (0 for unknown ids)."""
    pid = np.asarray(pid, np.int64)
    table = np.zeros(40)
    for k, q3 in _CHARGED_3.items():
        table[k] = q3 / 3.0
    a = np.abs(pid)
    q = np.where(a < 40, table[np.minimum(a, 39)], 0.0)
    return np.sign(pid) * q


def lhe_chunk_to_awkward(events, weights: np.ndarray):
    """An :class:`~eftflow.generate.lhe_events.LHEEvents` chunk → awkward chunk for the detectors."""
    import awkward as ak

    cols = {
        "pid": events.pid,
        "status": events.status,
        "px": events.px,
        "py": events.py,
        "pz": events.pz,
        "e": events.e,
        "charge": charge_from_pid(events.pid),
    }
    parts = ak.unflatten(ak.zip(cols), np.diff(events.offsets))
    return ak.zip({"particles": parts, "weights": weights}, depth_limit=1)


def lhe_source(
    path,
    benchmarks: Sequence[str] | None = None,
    *,
    sampling_benchmark: int = -1,
    nuisance=None,
    reference: str | None = None,
) -> ParticleSource:
    """A source over an LHE file (``.lhe``/``.lhe.gz``); weights in ``benchmarks`` order (all ids if None).

    ``nuisance`` (:class:`~eftflow.generate.systematics.NuisanceWeights` of the setup's scale and
    PDF systematics) adds one column per nuisance benchmark after them; ``reference`` must then
    be one of the columns.
    """
    from eftflow.generate.lhe import LHEReader
    from eftflow.generate.systematics import NuisanceWeights

    nuisance = nuisance or NuisanceWeights()
    reader = LHEReader(path, benchmarks=benchmarks)
    names = list(benchmarks) if benchmarks is not None else list(reader.weight_ids)
    ids = list(reader.weight_ids)
    if nuisance:
        unknown = [i for i in nuisance.ids if i not in ids]
        if reference not in names or unknown or set(nuisance.names) & set(names):
            raise InputError(
                f"{nuisance!r} needs weight ids of the file and a reference among "
                f"{', '.join(names)} (got {reference!r})",
                file=str(path),
                field="initrwgt",
            )
    var_idx = [ids.index(i) for i in nuisance.ids]
    ref_col = names.index(reference) if nuisance else 0

    def chunks(size: int):
        done = 0
        for ev in reader.iter_chunks(size):
            w = reader.benchmark_weights(ev) if benchmarks is not None else ev.weights
            if nuisance:
                var = nuisance.columns(
                    ev.weights[:, var_idx], ev.xwgtup, w[:, ref_col], file=path, first_event=done
                )
                w = np.concatenate([w, var], axis=1)
            done += len(w)
            yield lhe_chunk_to_awkward(ev, w)

    names = [*names, *nuisance.names]

    return ParticleSource(
        names,
        chunks,
        path=str(path),
        n_events=reader.header.n_events,
        provenance={"lhe": str(path)},
        sampling_benchmark=sampling_benchmark,
    )


def particle_store_source(
    path, benchmarks: Sequence[str] | None = None, *, sampling_benchmark: int = -1
) -> ParticleSource:
    """A source over a particle store (:mod:`eftflow.store.particles`), weights in ``benchmarks`` order."""
    from eftflow.store.particles import ParticleStore

    store = ParticleStore(path)
    names = store.benchmark_names
    idx = None
    if benchmarks is not None:
        missing = [b for b in benchmarks if b not in names]
        if missing:
            raise InputError(
                f"no weights for benchmark(s) {', '.join(missing)}; the store has {', '.join(names)}",
                file=str(path),
                field="benchmark_names",
            )
        idx = [names.index(b) for b in benchmarks]
        names = list(benchmarks)

    def chunks(size: int):
        import awkward as ak

        for c in store.iter_chunks(size):
            if idx is None:
                yield c
            else:
                w = ak.to_numpy(c["weights"])[:, idx]
                yield ak.zip(
                    {"particles": c["particles"], "hard": c["hard"], "weights": w}, depth_limit=1
                )

    return ParticleSource(
        list(names),
        chunks,
        path=str(path),
        n_events=store.n_events,
        provenance=store.provenance,
        sampling_benchmark=sampling_benchmark,
    )


def open_source(
    path,
    benchmarks: Sequence[str] | None = None,
    *,
    sampling_benchmark: int = -1,
    nuisance=None,
    reference: str | None = None,
) -> ParticleSource:
    """Open a particle store directory or an LHE file as a :class:`ParticleSource`.

    ``nuisance`` and ``reference`` apply to LHE files (:func:`lhe_source`); a particle store
    carries its nuisance columns already.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("input does not exist", file=str(path))
    if p.is_dir():
        return particle_store_source(p, benchmarks, sampling_benchmark=sampling_benchmark)
    name = p.name.lower()
    if name.endswith((".lhe", ".lhe.gz", ".lhef", ".lhef.gz")):
        return lhe_source(
            p,
            benchmarks,
            sampling_benchmark=sampling_benchmark,
            nuisance=nuisance,
            reference=reference,
        )
    raise InputError(
        "expected a particle store (*.zarr directory) or an LHE file (*.lhe, *.lhe.gz)",
        file=str(path),
    )
