"""The particle store: round trip, chunked reading with flat memory, truncation and bad input."""

from __future__ import annotations

import shutil
import tracemalloc

import awkward as ak
import numpy as np
import pytest
import zarr

from eftflow.errors import InputError
from eftflow.store.particles import PARTICLE_FIELDS, ParticleStore, ParticleStoreWriter


def _block(rng, n, start):
    counts = rng.integers(0, 12, n)
    tot = int(counts.sum())
    cols = {f: rng.normal(size=tot) for f in ("px", "py", "pz", "e")}
    cols["pid"] = rng.integers(-300, 300, tot)
    cols["status"] = np.ones(tot, int)
    cols["charge"] = rng.integers(-1, 2, tot).astype(float)
    cols["counts"] = counts
    w = np.column_stack([np.arange(start, start + n, dtype=float), rng.normal(size=n)])
    return cols, w


def write_store(path, n_blocks=5, n=1000, chunk=700, seed=1, particle_chunk=5000):
    rng = np.random.default_rng(seed)
    blocks = []
    with ParticleStoreWriter(
        path, ["sm", "bsm"], chunk_size=chunk, particle_chunk_size=particle_chunk
    ) as wr:
        for k in range(n_blocks):
            cols, w = _block(rng, n, k * n)
            wr.append(cols, weights=w, info={"mHat": w[:, 0] * 2}, hard=cols)
            blocks.append((cols, w))
    return blocks


def test_round_trip_and_chunks(tmp_path):
    path = tmp_path / "p.zarr"
    blocks = write_store(path)
    store = ParticleStore(path)
    assert store.n_events == 5000 and store.benchmark_names == ["sm", "bsm"]
    chunks = list(store.iter_chunks(1300))
    assert [len(c) for c in chunks] == [1300, 1300, 1300, 1100]
    allc = ak.concatenate(chunks)
    pid = np.concatenate([b[0]["pid"] for b in blocks])
    counts = np.concatenate([b[0]["counts"] for b in blocks])
    np.testing.assert_array_equal(ak.to_numpy(ak.flatten(allc.particles.pid)), pid)
    np.testing.assert_array_equal(ak.to_numpy(ak.num(allc.particles)), counts)
    np.testing.assert_array_equal(ak.to_numpy(ak.num(allc.hard)), counts)
    w = ak.to_numpy(allc.weights)
    np.testing.assert_array_equal(w, np.concatenate([b[1] for b in blocks]))
    np.testing.assert_array_equal(ak.to_numpy(allc.info.mHat), 2 * w[:, 0])
    assert set(ak.fields(allc.particles)) == set(PARTICLE_FIELDS)
    np.testing.assert_allclose(store.cross_sections(), w.sum(axis=0))
    assert chunks[1].attrs["start"] == 1300


def _peak(path, chunk):
    store = ParticleStore(path)
    tracemalloc.start()
    n = 0
    for c in store.iter_chunks(chunk):
        n += len(c)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return n, peak


def test_chunked_reading_memory_is_flat(tmp_path):
    """Peak memory of a chunked pass does not grow with the store: 4x the events, same peak."""
    write_store(tmp_path / "small.zarr", n_blocks=1, n=50_000, chunk=10_000, particle_chunk=100_000)
    write_store(tmp_path / "big.zarr", n_blocks=4, n=50_000, chunk=10_000, particle_chunk=100_000)
    n_small, peak_small = _peak(tmp_path / "small.zarr", 10_000)
    n_big, peak_big = _peak(tmp_path / "big.zarr", 10_000)
    assert (n_small, n_big) == (50_000, 200_000)
    assert peak_big < 1.3 * peak_small, (peak_small, peak_big)


def test_truncated_and_incomplete_stores_are_clear_errors(tmp_path):
    path = tmp_path / "p.zarr"
    write_store(path)
    # a chunk file of a particle column missing
    bad = tmp_path / "bad1.zarr"
    shutil.copytree(path, bad)
    chunk_files = sorted((bad / "particles" / "px" / "c").iterdir())
    chunk_files[1].unlink()
    with pytest.raises(InputError, match="truncated") as err:
        ParticleStore(bad)
    assert err.value.file == str(bad) and err.value.field == "particles/px"
    # an interrupted write: no n_events attribute
    bad2 = tmp_path / "bad2.zarr"
    shutil.copytree(path, bad2)
    g = zarr.open_group(str(bad2), mode="r+")
    del g.attrs["n_events"]
    with pytest.raises(InputError, match="incomplete") as err:
        ParticleStore(bad2)
    assert err.value.field == "attrs.n_events"
    # weights shorter than the event count
    bad3 = tmp_path / "bad3.zarr"
    shutil.copytree(path, bad3)
    zarr.open_group(str(bad3), mode="r+")["weights"].resize((10, 2))
    with pytest.raises(InputError, match="truncated") as err:
        ParticleStore(bad3)
    assert err.value.field == "weights"
    with pytest.raises(InputError, match="does not exist"):
        ParticleStore(tmp_path / "none.zarr")


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "p.zarr"
    rng = np.random.default_rng(0)
    cols, w = _block(rng, 10, 0)
    w[3, 1] = np.nan
    with pytest.raises(InputError, match="non-finite weight in event 3") as err:
        with ParticleStoreWriter(path, ["sm", "bsm"]) as wr:
            wr.append(cols, weights=w)
    assert err.value.field == "weights"
    assert not list(tmp_path.iterdir())
    with pytest.raises(InputError, match="every event was dropped"):
        with ParticleStoreWriter(path, ["sm", "bsm"]):
            pass
    assert not list(tmp_path.iterdir())
