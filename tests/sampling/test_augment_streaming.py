"""Streaming internals of the augmentation and its bad-input warnings.

* the in-memory path (chunks kept between the passes, output shuffled in memory) and the streamed
  one (chunks read twice, rows through part files) give identical training sets;
* chunk files read directly equal zarr's reads (aligned and unaligned ranges, absent chunks), other
  layouts fall back to zarr, a damaged chunk is an InputError naming file and array;
* θ outside a parameter's declared range is a warning naming parameter, value and range.
"""

import logging
import shutil

import numpy as np
import pytest
import zarr

from eftflow.errors import InputError
from eftflow.sampling import (
    SampleAugmenter,
    benchmark,
    cross_sections,
    morphing_point,
    random_morphing_points,
)
from eftflow.sampling.output import read_training_set
from eftflow.sampling.weights import WeightModel, _read
from eftflow.store.chunkfiles import ChunkFiles

from .conftest import write_toy_store


def test_in_memory_and_streamed_paths_give_identical_sets(small_store, toy, tmp_path):
    fast = SampleAugmenter(small_store, toy, n_workers=2, chunk_rows=700)
    slow = SampleAugmenter(small_store, toy, n_workers=2, chunk_rows=700, memory_mb=0)
    spec = random_morphing_points(4, [("flat", -0.5, 0.5)] * 2)
    for sa, name in ((fast, "f"), (slow, "s")):
        sa.sample_train_ratio(spec, benchmark("sm"), 3001, tmp_path / f"{name}r.zarr", seed=3)
        sa.sample_train_local(morphing_point([0.2, 0.1]), 2500, tmp_path / f"{name}l.zarr", seed=4)
    for kind in "rl":
        a = read_training_set(tmp_path / f"f{kind}.zarr")
        b = read_training_set(tmp_path / f"s{kind}.zarr")
        assert set(a) == set(b)
        for key in set(a) - {"attrs"}:
            assert np.array_equal(a[key], b[key]), key
        assert a["attrs"]["summary"] == b["attrs"]["summary"]
    # written as a regular zarr group: 700-row chunks, the edge chunk whole
    g = zarr.open_group(str(tmp_path / "fl.zarr"), mode="r")
    assert g["x"].chunks == (700, 2) and g["x"].shape == (2500, 2)
    assert np.all(np.isfinite(g["t_xz"][2100:]))
    assert not list(tmp_path.glob(".*parts-*"))


def test_direct_chunk_reads_equal_zarr(small_store):
    path = str(small_store)
    root = zarr.open_group(path, mode="r")
    for name in ("weights", "observables", "sampling_benchmark"):
        assert ChunkFiles.open(path, name) is not None
        for i0, i1 in ((0, 5000), (4999, 12_001), (19_990, 20_000), (0, 20_000)):
            got = _read(path, name, i0, i1)
            assert got.dtype == root[name].dtype and np.array_equal(got, root[name][i0:i1])
    # one sample at the SM: sampling ids are all 0 = the fill value; the chunk files are written
    # anyway (a missing one means damage)
    assert (small_store / "sampling_benchmark" / "c" / "0").is_file()


def test_other_layouts_fall_back_to_zarr(small_store, toy, tmp_path):
    from zarr.codecs import ZstdCodec

    copy = tmp_path / "zstd.zarr"
    shutil.copytree(small_store, copy)
    group = zarr.open_group(str(copy), mode="r+")
    w = group["weights"][:]
    del group["weights"]
    group.create_array("weights", data=w, chunks=(3000, w.shape[1]), compressors=[ZstdCodec()])
    assert ChunkFiles.open(str(copy), "weights") is None
    a = cross_sections(small_store, toy, [[0.3, -0.2]], partition="train")
    b = cross_sections(copy, toy, [[0.3, -0.2]], partition="train")
    assert b["xsec"][0] == pytest.approx(a["xsec"][0], rel=1e-12)


def test_damaged_chunk_is_an_input_error(small_store, toy, tmp_path):
    copy = tmp_path / "damaged.zarr"
    shutil.copytree(small_store, copy)
    chunk = copy / "weights" / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:100])
    model = WeightModel(copy, toy, partition="train")
    with pytest.raises(InputError, match="damaged") as err:
        cross_sections(model, None, [[0.0, 0.0]])
    assert err.value.field == "weights" and str(copy) in str(err.value.file)


def _outside(caplog):
    return [
        r.getMessage() for r in caplog.records if "outside its declared range" in r.getMessage()
    ]


def test_theta_outside_declared_range_warns(small_store, toy, tmp_path, caplog):
    from eftflow.generate.toy import toy_setup

    sa = SampleAugmenter(small_store, toy)
    with caplog.at_level(logging.WARNING, logger="eftflow.sampling"):
        sa.sample_train_local(morphing_point([0.3, 0.2]), 200, tmp_path / "in.zarr", seed=1)
        assert _outside(caplog) == []
        sa.sample_train_local(morphing_point([1.5, 0.2]), 200, tmp_path / "a.zarr", seed=1)
    (msg,) = _outside(caplog)
    assert "theta_1 = 1.5 " in msg and "[-1, 1]" in msg and "parameter_range" in msg
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="eftflow.sampling"):
        prior = random_morphing_points(50, [("flat", -1, 1), ("flat", -3, 3)])  # by mistake
        sa.sample_train_ratio(prior, benchmark("sm"), 400, tmp_path / "b.zarr", seed=2)
    assert _outside(caplog) and all(
        "theta_2" in m and "of 50 point(s)" in m for m in _outside(caplog)
    )
    caplog.clear()
    narrow = toy_setup(parameter_range=(-0.2, 0.2))  # t1_pos = (0.5, 0) lies outside
    with caplog.at_level(logging.WARNING, logger="eftflow.sampling"):
        SampleAugmenter(small_store, narrow).sample_train_plain(
            benchmark("t1_pos"), 100, tmp_path / "c.zarr", seed=3
        )
        cross_sections(small_store, narrow, [[0.0, -0.7]])
    msgs = _outside(caplog)
    assert len(msgs) == 2
    assert "(benchmark): theta_1 = 0.5 " in msgs[0] and "[-0.2, 0.2]" in msgs[0]
    assert "theta_2 = -0.7 " in msgs[1]


def test_more_samples_than_effective_sample_size_warns(tmp_path, toy, caplog):
    small = write_toy_store(tmp_path / "s.zarr", toy, 300, 1)
    sa = SampleAugmenter(small, toy)
    with caplog.at_level(logging.WARNING, logger="eftflow.sampling"):
        s = sa.sample_train_plain(benchmark("sm"), 1000, tmp_path / "o.zarr", seed=1)
    assert any("events will repeat" in r.getMessage() for r in caplog.records)
    assert s["n_samples"] == 1000 and s["n_distinct_events"] <= 180  # 60 % of 300 events
