"""Chunk files written and read directly (eftflow.store.chunkfiles) agree with zarr."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from eftflow.errors import InputError
from eftflow.store.chunkfiles import ChunkEncoder, ChunkFiles
from eftflow.store.events import EventStore, EventStoreWriter


def _columns(rng, n):
    return {
        "observables": rng.normal(size=(n, 3)),
        "weights": rng.uniform(0.5, 1.5, size=(n, 2)),
        "sampling_benchmark": rng.integers(-1, 2, n),
        "nuisance_weights": rng.normal(size=(n, 1)),
    }


@pytest.mark.parametrize("sizes", [[1, 6, 7, 1, 20, 3], [7], [35], [2, 5, 28], [6]])
def test_appends_of_any_size_read_back_through_zarr(tmp_path, sizes):
    rng = np.random.default_rng(len(sizes))
    blocks = [_columns(rng, n) for n in sizes]
    path = tmp_path / "ev.zarr"
    with EventStoreWriter(
        path, ["a", "b", "c"], ["sm", "bsm"], chunk_size=7, nuisance_names=["up"]
    ) as w:
        for b in blocks:
            w.append(**b)
    n = sum(sizes)
    root = zarr.open_group(str(path), mode="r")
    store = EventStore(path)
    assert store.n_events == n
    for name in ("observables", "weights", "sampling_benchmark", "nuisance_weights"):
        want = np.concatenate([b[name] for b in blocks])
        assert root[name].shape == want.shape and root[name].chunks[0] == 7
        assert np.array_equal(root[name][:], want), name
        files = ChunkFiles.open(path, name)
        assert files is not None and np.array_equal(files.read(0, n), want)
        assert np.array_equal(files.read(3, n - 1), want[3 : n - 1])
    # one file per chunk, the edge chunk stored whole (zarr's layout)
    n_chunks = -(-n // 7)
    assert len(list((path / "weights" / "c").iterdir())) == n_chunks


def test_zero_chunks_get_a_file_missing_ones_read_as_zeros_without_the_flag(tmp_path):
    path = tmp_path / "ev.zarr"
    with EventStoreWriter(path, ["x"], ["sm"], chunk_size=4) as w:
        w.append(observables=np.arange(10.0)[:, None], weights=np.ones((10, 1)),
                 sampling_benchmark=np.zeros(10, int))  # fmt: skip
    assert sorted(p.name for p in (path / "sampling_benchmark" / "c").iterdir()) == ["0", "1", "2"]
    assert np.array_equal(EventStore(path).read("sampling_benchmark"), np.zeros(10))
    assert np.array_equal(zarr.open_group(str(path))["sampling_benchmark"][:], np.zeros(10))
    # a reader not told that every chunk was written takes a missing file as zeros, as zarr
    (path / "sampling_benchmark" / "c" / "1").unlink()
    assert np.array_equal(ChunkFiles.open(path, "sampling_benchmark").read(2, 9), np.zeros(7))


def test_other_layouts_get_no_direct_encoder(tmp_path):
    from zarr.codecs import ZstdCodec

    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("z", shape=(10, 2), chunks=(5, 2), dtype="float64", compressors=[ZstdCodec()])
    g.create_array("split", shape=(10, 2), chunks=(5, 1), dtype="float64")
    g.create_array("fill", shape=(10,), chunks=(5,), dtype="float64", fill_value=1.0)
    for name in ("z", "split", "fill"):
        assert ChunkEncoder.for_array(tmp_path / "g.zarr" / name) is None
    assert ChunkFiles.open(tmp_path / "g.zarr", "z") is None


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "ev.zarr"
    with pytest.raises(InputError, match="non-finite weight in event 12"):
        with EventStoreWriter(path, ["x"], ["sm"], chunk_size=4) as w:
            w.append(observables=np.zeros((10, 1)), weights=np.ones((10, 1)))
            bad = np.ones((5, 1))
            bad[2] = np.nan
            w.append(observables=np.zeros((5, 1)), weights=bad)
    assert list(tmp_path.iterdir()) == []


def test_truncated_chunk_file_is_reported(tmp_path):
    path = tmp_path / "ev.zarr"
    with EventStoreWriter(path, ["x"], ["sm"], chunk_size=4) as w:
        w.append(observables=np.ones((8, 1)), weights=np.ones((8, 1)))
    key = path / "weights" / "c" / "1" / "0"
    frame = key.read_bytes()
    key.write_bytes(frame[:10])
    with pytest.raises(ValueError, match="chunk 1 is truncated"):
        ChunkFiles.open(path, "weights").read(0, 8)
    key.write_bytes(frame[:-4])
    with pytest.raises(ValueError, match="chunk 1 is truncated"):
        ChunkFiles.open(path, "weights").read(0, 8)
    key.write_bytes(np.ones(3))  # garbage, not a cut frame
    with pytest.raises(ValueError, match="chunk 1 is not a Blosc frame of this array"):
        ChunkFiles.open(path, "weights").read(0, 8)
    key.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(ValueError, match="chunk 1 is not a Blosc frame of this array"):
        ChunkFiles.open(path, "weights").read(0, 8)
    key.write_bytes(frame[:4] + (64).to_bytes(4, "little") + frame[8:])
    with pytest.raises(ValueError, match="chunk 1 holds 64 bytes, not 32"):
        ChunkFiles.open(path, "weights").read(0, 8)


def test_store_reads_use_chunk_files_with_slice_semantics(tmp_path):
    path = tmp_path / "ev.zarr"
    x = np.arange(10.0)[:, None]
    with EventStoreWriter(path, ["x"], ["sm"], chunk_size=4) as w:
        w.append(observables=x, weights=np.ones((10, 1)))
    store = EventStore(path)
    assert store.chunk_files("observables") is not None
    for start, stop in ((3, 9), (8, None), (-3, None), (7, 2), (0, 100), (4, 8)):
        assert np.array_equal(store.read("observables", start, stop), x[start:stop])
    key = path / "observables" / "c" / "1" / "0"
    key.write_bytes(key.read_bytes()[:20])
    with pytest.raises(InputError, match="store is damaged") as err:
        EventStore(path).read("observables", 0, 10)
    assert err.value.field == "observables" and str(path) in str(err.value)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((0, 3), "float64"),
        ((10,), "int64"),
        ((5, 0), "float64"),
        ((7, 2), "float32"),
        ((9,), "bool"),
    ],
)
def test_array_metadata_is_what_zarr_writes(tmp_path, shape, dtype):
    from zarr.codecs import BloscCodec

    from eftflow.store.chunkfiles import BLOSC_CLEVEL, BLOSC_CNAME, array_metadata, write_metadata

    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=3)
    chunks = (4,) if len(shape) == 1 else (4, max(shape[1], 1))
    codec = BloscCodec(cname=BLOSC_CNAME, clevel=BLOSC_CLEVEL, shuffle="shuffle")
    g.create_array("a", shape=shape, chunks=chunks, dtype=dtype, compressors=[codec])
    theirs = (tmp_path / "g.zarr" / "a" / "zarr.json").read_bytes()
    write_metadata(tmp_path / "mine", array_metadata(shape, 4, dtype))
    assert (tmp_path / "mine" / "zarr.json").read_bytes() == theirs


def test_store_metadata_is_what_zarr_writes(tmp_path):
    """A store written with direct metadata: each zarr.json equals zarr's own for the same
    group attributes and arrays (written through zarr into a second group)."""
    from zarr.codecs import BloscCodec

    from eftflow.store.chunkfiles import BLOSC_CLEVEL, BLOSC_CNAME

    path = tmp_path / "ev.zarr"
    with EventStoreWriter(path, ["a", "b"], ["sm"], chunk_size=3, attrs={"x": float("nan")}) as w:
        w.append(observables=np.ones((7, 2)), weights=np.ones((7, 1)),
                 sampling_benchmark=np.arange(7) % 2)  # fmt: skip
    attrs = EventStore(path).attrs
    ref = zarr.open_group(str(tmp_path / "ref.zarr"), mode="w", zarr_format=3)
    codec = BloscCodec(cname=BLOSC_CNAME, clevel=BLOSC_CLEVEL, shuffle="shuffle")
    for name, shape, chunks, dtype in (
        ("observables", (7, 2), (3, 2), "float64"),
        ("weights", (7, 1), (3, 1), "float64"),
        ("sampling_benchmark", (7,), (3,), "int64"),
    ):
        ref.create_array(name, shape=shape, chunks=chunks, dtype=dtype, compressors=[codec])
        theirs = (tmp_path / "ref.zarr" / name / "zarr.json").read_bytes()
        assert (path / name / "zarr.json").read_bytes() == theirs, name
    ref.attrs.update(attrs)
    assert (path / "zarr.json").read_bytes() == (tmp_path / "ref.zarr" / "zarr.json").read_bytes()
    assert np.isnan(attrs["x"]) and list(attrs)[-1] == "n_events"


def test_store_in_zarr_v2_format_is_read_through_zarr(tmp_path):
    """A store zarr wrote in its v2 format (no zarr.json documents) is still readable."""
    rng = np.random.default_rng(3)
    cols = _columns(rng, 11)
    path = tmp_path / "v2.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    for name, v in cols.items():
        g.create_array(name, shape=v.shape, chunks=(4, *v.shape[1:]), dtype=v.dtype)[...] = v
    g.attrs.update({"format": "eftflow-events", "format_version": 1, "n_events": 11,
                    "observable_names": ["a", "b", "c"], "benchmark_names": ["sm", "bsm"],
                    "nuisance_benchmark_names": ["up"]})  # fmt: skip
    store = EventStore(path)
    assert store.columns == list(cols) and store.chunk_size == 4
    assert store.chunk_files("weights") is None
    for name, v in cols.items():
        assert np.array_equal(store.read(name, 2, 9), v[2:9]), name
    g.attrs["n_events"] = 12
    with pytest.raises(InputError, match="has 11 events, attrs say 12"):
        EventStore(path)


def test_chunk_frames_are_numcodecs_frames(tmp_path):
    """Chunks compressed into a reused buffer (c-blosc through ctypes) are byte for byte the
    frames numcodecs' Blosc writes for the same rows, the padded edge chunk included."""
    from numcodecs import blosc

    from eftflow.store.chunkfiles import BLOSC_CLEVEL, BLOSC_CNAME, _blosc_compress_ctx

    assert _blosc_compress_ctx() is not None
    cols = _columns(np.random.default_rng(5), 25)
    path = tmp_path / "ev.zarr"
    with EventStoreWriter(path, ["a", "b", "c"], ["sm", "bsm"], chunk_size=10,
                          nuisance_names=["up"]) as w:  # fmt: skip
        w.append(**cols)
    for name, v in cols.items():
        for k in range(3):
            block = np.zeros((10, *v.shape[1:]), v.dtype)
            block[: len(v[10 * k : 10 * k + 10])] = v[10 * k : 10 * k + 10]
            key = path / name / "c" / str(k)
            key = key / "0" if v.ndim == 2 else key
            want = blosc.compress(block, BLOSC_CNAME.encode(), BLOSC_CLEVEL, blosc.SHUFFLE, 0)
            assert key.read_bytes() == want, (name, k)


def test_write_chunk_out_of_order_and_not_after_a_partial_append(tmp_path):
    cols = _columns(np.random.default_rng(7), 10)
    path = tmp_path / "ev.zarr"
    with EventStoreWriter(path, ["a", "b", "c"], ["sm", "bsm"], chunk_size=4,
                          nuisance_names=["up"]) as w:  # fmt: skip
        for k in (2, 0, 1):  # any order; the last chunk is short
            w.write_chunk(k, {c: v[4 * k : 4 * k + 4] for c, v in cols.items()})
        assert w.n_events == 10
    store = EventStore(path)
    for c, v in cols.items():
        assert np.array_equal(store.read(c), v), c
    with pytest.raises(ValueError, match="cannot follow a partial append"):
        with EventStoreWriter(tmp_path / "b.zarr", ["a", "b", "c"], ["sm", "bsm"], chunk_size=4,
                              nuisance_names=["up"]) as w:  # fmt: skip
            w.append(**{c: v[:3] for c, v in cols.items()})
            w.write_chunk(1, {c: v[4:8] for c, v in cols.items()})
    assert not (tmp_path / "b.zarr").exists()


def test_store_array_reads_like_zarr_and_falls_back_to_it(tmp_path):
    """StoreArray: rows, shape, chunks and chunk-file counts as zarr gives them, for the
    standard layout (read directly) and another codec (read through zarr)."""
    from zarr.codecs import BloscCodec, ZstdCodec

    from eftflow.store.chunkfiles import StoreArray

    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=3)
    rng = np.random.default_rng(2)
    data = {"std": rng.normal(size=(23, 3)), "ids": rng.integers(0, 9, 23).astype(np.int32),
            "zstd": rng.normal(size=(23, 2))}  # fmt: skip
    blosc_ = [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    for name, v in data.items():
        codecs = [ZstdCodec()] if name == "zstd" else blosc_
        a = g.create_array(name, shape=v.shape, chunks=(5, *v.shape[1:]), dtype=v.dtype,
                           compressors=codecs, config={"write_empty_chunks": True})  # fmt: skip
        a[...] = v
    (tmp_path / "g.zarr" / "std" / "c" / "2" / "0").unlink()

    def group():
        return zarr.open_group(str(tmp_path / "g.zarr"), mode="r")

    for name in data:
        arr, ref = StoreArray(tmp_path / "g.zarr", name, group), group()[name]
        assert (arr._files is None) == (name == "zstd")
        assert arr.shape == ref.shape and arr.chunks == ref.chunks and arr.dtype == ref.dtype
        assert arr.nchunks == ref.nchunks == 5
        assert arr.nchunks_initialized == ref.nchunks_initialized == (4 if name == "std" else 5)
        for sl in (slice(0, 23), slice(3, 17), slice(20, 40), slice(7, 2)):
            assert np.array_equal(arr[sl], ref[sl]), (name, sl)
    with pytest.raises(KeyError):
        StoreArray(tmp_path / "g.zarr", "nope", group)


@pytest.mark.parametrize("works", [True, False])
def test_preallocated_chunk_files_hold_exactly_the_frame(tmp_path, monkeypatch, works):
    """Chunk files are reserved with fallocate(2) before they are written: the file then holds
    the frame and nothing more, and where the filesystem refuses (a failed call) the write goes
    ahead unchanged."""

    from eftflow.store import chunkfiles

    calls = []
    if works:
        real = chunkfiles._preallocate
        with open(tmp_path / "probe", "wb") as f:  # resolves the libc call
            real(f.fileno(), 1)
        fn = chunkfiles._fallocate
        if fn is None:
            pytest.skip("no fallocate in this libc")

        def spy(fd, mode, offset, size):
            calls.append(size)
            return fn(fd, mode, offset, size)
    else:

        def spy(fd, mode, offset, size):
            calls.append(size)
            return -1  # EOPNOTSUPP, as on filesystems without it

    monkeypatch.setattr(chunkfiles, "_fallocate", spy)
    cols = _columns(np.random.default_rng(7), 25)
    path = tmp_path / "ev.zarr"
    with EventStoreWriter(path, ["a", "b", "c"], ["sm", "bsm"], chunk_size=10,
                          nuisance_names=["up"]) as w:  # fmt: skip
        w.append(**cols)
    sizes = sorted(
        p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    assert sorted(calls) == sizes and len(calls) == 3 * len(cols)
    back = EventStore(path)
    for name, v in cols.items():
        np.testing.assert_array_equal(back.read(name), v)
    z = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(z["weights"][:], cols["weights"])
