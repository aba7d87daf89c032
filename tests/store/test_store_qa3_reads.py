"""Storage-layer QA: exact rows for every range and chunking, agreement with zarr and dask,
stores written by plain zarr, and the combined store's shuffle (multiset, uniformity,
reproducibility)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import zarr
from scipy import stats

from eftflow.store.combine import combine_events
from eftflow.store.events import EventStore, EventStoreWriter
from eftflow.store.shuffle import BlockDraws

COLS = ("observables", "weights", "sampling_benchmark")


def _write(path, n, chunk_size, step, seed=0, **kw):
    rng = np.random.default_rng(seed)
    ref = {
        "observables": rng.normal(size=(n, 2)),
        "weights": rng.normal(size=(n, 3)),
        "sampling_benchmark": rng.integers(-1, 3, n),
    }
    with EventStoreWriter(path, ["a", "b"], ["x", "y", "z"], chunk_size=chunk_size, **kw) as w:
        for i in range(0, n, step):
            w.append(**{c: v[i : i + step] for c, v in ref.items()})
    return ref


@pytest.mark.parametrize(
    ("n", "chunk_size", "step"), [(1, 1, 1), (8, 4, 3), (9, 4, 100), (7, 8, 2)]
)
def test_every_range_reads_exact_rows(tmp_path, n, chunk_size, step):
    import dask.array as da

    path = tmp_path / "s.zarr"
    ref = _write(path, n, chunk_size, step)
    st = EventStore(path)
    group = zarr.open_group(str(path), mode="r")
    for c, v in ref.items():
        assert np.array_equal(group[c][:], v)
        assert np.array_equal(da.from_zarr(str(path / c)).compute(), v)
        for i0 in range(n + 1):
            for i1 in range(i0, n + 1):
                assert np.array_equal(st.read(c, i0, i1), v[i0:i1])
    for size in (1, 3, chunk_size):
        for start, stop in ((0, None), (1, n - 1), (n - 1, n + 4)):
            got = list(st.iter_chunks(["weights"], chunk_size=size, start=start, stop=stop))
            want = ref["weights"][start:stop]
            assert np.array_equal(
                np.concatenate([np.empty((0, 3))] + [g["weights"] for g in got]), want
            )
            assert all(g["stop"] - g["start"] == len(g["weights"]) <= size for g in got)


@pytest.mark.parametrize(
    "kw",
    [
        {},  # zarr's default zstd
        {"zarr_format": 2},
        {"compressors": None, "chunks": 1},
        {"compressors": "blosc", "fill_value": 7},  # the direct reader, missing chunks = fill
        {"compressors": "blosc", "chunks": (5, 2)},  # chunked across columns: through zarr
        {"shards": 6, "chunks": 2},
    ],
)
def test_stores_written_by_zarr(tmp_path, kw):
    from zarr.codecs import BloscCodec

    kw = dict(kw)
    n = 23
    ref = {
        "observables": np.zeros((n, 3)),
        "weights": np.random.default_rng(1).normal(size=(n, 4)),
        "sampling_benchmark": np.arange(n) % 4 - 1,
    }
    ref["observables"][10:] = 7.0  # whole chunks equal to the fill value: never written
    ref["weights"][:5] = 7.0
    path = tmp_path / "z.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=kw.pop("zarr_format", 3))
    if kw.get("compressors") == "blosc":
        kw["compressors"] = [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    chunks, shards = kw.pop("chunks", 5), kw.pop("shards", None)
    for c, v in ref.items():
        ch = chunks if isinstance(chunks, tuple) and v.ndim == 2 else (np.atleast_1d(chunks)[0],)
        extra = {} if shards is None else {"shards": (shards, *v.shape[1:])}
        a = g.create_array(
            c,
            shape=v.shape,
            chunks=ch + v.shape[1 : 1 + (len(ch) < v.ndim)],
            dtype=v.dtype,
            **kw,
            **extra,
        )
        a[:] = v
    g.attrs.update(
        format="eftflow-events", format_version=1, n_events=n, observable_names=list("abc"),
        benchmark_names=list("pqrs"),
    )  # fmt: skip
    st = EventStore(path)
    for c, v in ref.items():
        assert np.array_equal(st.read(c), v)
        assert np.array_equal(st.read(c, 3, 17), v[3:17])


def _ids_store(path, ids, chunk_size=3):
    n = len(ids)
    with EventStoreWriter(
        path, ["id"], ["p", "q"], chunk_size=chunk_size, nuisance_names=["u"]
    ) as w:
        w.append(
            observables=np.asarray(ids, float)[:, None],
            weights=np.column_stack([np.asarray(ids, float), np.ones(n)]),
            sampling_benchmark=np.asarray(ids) % 3 - 1,
            nuisance_weights=np.full((n, 1), 2.0),
        )


def test_combine_keeps_every_event_once_with_k_factors(tmp_path):
    _ids_store(tmp_path / "a.zarr", range(0, 10))
    _ids_store(tmp_path / "b.zarr", range(10, 13), chunk_size=1)
    for be, cs in ((None, 4), (1, 1), (2, 5), (4, 3)):
        out = tmp_path / f"o{be}.zarr"
        info = combine_events(
            [tmp_path / "a.zarr", tmp_path / "b.zarr"], out, seed=2, k_factors=[1.0, 10.0],
            block_events=be, chunk_size=cs,
        )  # fmt: skip
        assert info["n_blocks"] == (1 if be is None else -(-13 // be))
        st = EventStore(out)
        ids = st.read("observables")[:, 0].astype(int)
        assert sorted(ids) == list(range(13))
        k = np.where(ids < 10, 1.0, 10.0)
        assert np.array_equal(st.read("weights"), np.column_stack([ids * k, k]))
        assert np.array_equal(st.read("sampling_benchmark"), ids % 3 - 1)
        assert np.array_equal(st.read("nuisance_weights")[:, 0], 2.0 * k)
        assert st.attrs["background_events"] == 5 and st.attrs["signal_events"] == [4, 4]
        bounds = [st.partition_bounds(p) for p in ("train", "validation", "test")]
        assert bounds[0][0] == 0 and bounds[-1][1] == 13
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def test_multi_block_shuffle_is_uniform(tmp_path):
    n, runs = 6, 200
    _ids_store(tmp_path / "a.zarr", range(4), chunk_size=2)
    _ids_store(tmp_path / "b.zarr", range(4, 6), chunk_size=1)
    counts = np.zeros((n, n))
    for seed in range(runs):
        out = tmp_path / "o.zarr"
        combine_events(
            [tmp_path / "a.zarr", tmp_path / "b.zarr"], out, seed=seed, block_events=2,
            validation_split=0, test_split=0,
        )  # fmt: skip
        ids = EventStore(out).read("observables")[:, 0].astype(int)
        counts[ids, np.arange(n)] += 1
    chi2 = ((counts - runs / n) ** 2 / (runs / n)).sum()
    assert stats.chi2.sf(chi2, (n - 1) ** 2) > 1e-3


def test_block_draws_do_not_depend_on_read_sizes():
    a = BlockDraws(np.random.default_rng(4), 7, batch=10).take(95)
    d = BlockDraws(np.random.default_rng(4), 7, batch=10)
    b = np.concatenate([d.take(k) for k in (1, 9, 10, 33, 0, 42)])
    assert np.array_equal(a, b)
    assert collections.Counter(a.tolist()).keys() <= set(range(7))


def test_same_block_events_same_output_for_any_memory_budget(tmp_path):
    # 16 MB reads 14,500 rows at a time, 1000 MB 15,000: the blocks drawn for the
    # events used to differ, and so did the shuffle
    n = 45_000
    with EventStoreWriter(tmp_path / "a.zarr", ["id"], ["p"], chunk_size=100) as w:
        w.append(observables=np.arange(n)[:, None], weights=np.ones((n, 1)))
    out = []
    for mb in (16, 1000):
        info = combine_events(
            [tmp_path / "a.zarr"],
            tmp_path / f"o{mb}.zarr",
            seed=5,
            block_events=15_001,
            memory_mb=mb,
        )
        assert info["n_blocks"] == 3
        out.append(EventStore(tmp_path / f"o{mb}.zarr").read("observables")[:, 0])
    assert sorted(out[0]) == list(range(n))
    assert np.array_equal(out[0], out[1])
