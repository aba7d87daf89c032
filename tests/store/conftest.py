"""Fixtures for the event-store tests: small synthetic stores and a toy setup file."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

OBS = ["x0", "x1", "x2"]


def _row_hashes(store, columns=("observables", "weights", "sampling_benchmark")) -> np.ndarray:
    """One hash per event over the given columns, sorted (a multiset fingerprint)."""
    out = []
    for c in store.iter_chunks(list(columns)):
        parts = [np.ascontiguousarray(c[k]).reshape(len(c[k]), -1).view(np.uint8) for k in columns]
        rows = np.concatenate(parts, axis=1)
        out.extend(hashlib.blake2b(r.tobytes(), digest_size=8).hexdigest() for r in rows)
    return np.sort(np.array(out))


@pytest.fixture
def row_hashes():
    """row_hashes(store, columns=...): sorted per-event hashes (compare multisets of rows)."""
    return _row_hashes


@pytest.fixture
def make_store(tmp_path):
    """make_store(name, n, seed, benchmarks=..., sampling=..., chunk_size=..., nuisance=None, attrs=None)."""
    from eftflow.store.events import EventStoreWriter

    def make(
        name,
        n,
        seed=0,
        *,
        benchmarks=("sm", "b1", "b2"),
        observables=OBS,
        sampling=None,
        chunk_size=64,
        nuisance=None,
        attrs=None,
    ):
        rng = np.random.default_rng(seed)
        path = tmp_path / name
        x = rng.normal(size=(n, len(observables)))
        w = rng.uniform(0.5, 1.5, size=(n, len(benchmarks))) / n
        s = (
            rng.integers(-1, len(benchmarks), n)
            if sampling is None
            else np.broadcast_to(sampling, (n,))
        )
        nu = None if nuisance is None else rng.uniform(0.5, 1.5, size=(n, len(nuisance))) / n
        with EventStoreWriter(
            path,
            observables,
            benchmarks,
            chunk_size=chunk_size,
            nuisance_names=nuisance,
            attrs=attrs,
        ) as wr:
            for i in range(0, n, 50):  # unaligned appends on purpose
                wr.append(
                    observables=x[i : i + 50],
                    weights=w[i : i + 50],
                    sampling_benchmark=s[i : i + 50],
                    nuisance_weights=None if nu is None else nu[i : i + 50],
                )
        return path

    return make


@pytest.fixture
def toy_setup_file(tmp_path, toy_setup):
    """The conftest toy setup (2 parameters, 6 benchmarks) saved as setup.h5; returns (path, names)."""
    path = tmp_path / "setup.h5"
    toy_setup.save(path)
    return path, list(toy_setup.benchmarks)
