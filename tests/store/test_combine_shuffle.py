"""combine_events: permutation, seed, counts, partitions, k-factors, streaming blocks, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.errors import ConfigError, InputError
from eftflow.store.combine import (
    combine_events,
    partition_bounds,
    partition_fraction,
    sampling_factors,
    setup_fingerprint,
    split_bounds,
)
from eftflow.store.events import EventStore

# shuffle block sizes that force the one-block (in memory) and the many-block (on disk) shuffle
ONE_BLOCK, MANY_BLOCKS = None, 97


def _cat(store, col):
    return np.concatenate([c[col] for c in store.iter_chunks([col])])


@pytest.fixture
def inputs(make_store):
    return [
        make_store("a.zarr", 700, 1, sampling=0),
        make_store("b.zarr", 333, 2, sampling=1),
        make_store("c.zarr", 250, 3, sampling=-1),
    ]


@pytest.mark.parametrize("block_events", [ONE_BLOCK, MANY_BLOCKS])
def test_output_is_a_permutation(inputs, tmp_path, block_events, row_hashes):
    info = combine_events(
        inputs, tmp_path / "out.zarr", seed=7, block_events=block_events, chunk_size=100
    )
    assert (info["n_blocks"] > 1) == (block_events == MANY_BLOCKS)
    out = EventStore(tmp_path / "out.zarr")
    assert out.n_events == 1283 and out.chunk_size == 100
    expected = np.sort(np.concatenate([row_hashes(EventStore(p)) for p in inputs]))
    np.testing.assert_array_equal(row_hashes(out), expected)
    # actually shuffled: not the input order, and each input spread over the whole output
    s = _cat(out, "sampling_benchmark")
    assert not np.array_equal(s, np.repeat([0, 1, -1], [700, 333, 250]))
    for sid in (0, 1, -1):
        pos = np.flatnonzero(s == sid) / out.n_events
        assert 0.4 < pos.mean() < 0.6 and pos.min() < 0.05 and pos.max() > 0.95
    total = sum(EventStore(p).cross_sections() for p in inputs)
    np.testing.assert_allclose(out.cross_sections(), total, rtol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "b.zarr", "c.zarr", "out.zarr"]


@pytest.mark.parametrize("block_events", [ONE_BLOCK, MANY_BLOCKS])
def test_seed_reproducible(inputs, tmp_path, block_events):
    for name, seed in (("o1.zarr", 5), ("o2.zarr", 5), ("o3.zarr", 6)):
        combine_events(inputs, tmp_path / name, seed=seed, block_events=block_events)
    w1, w2, w3 = (
        _cat(EventStore(tmp_path / n), "weights") for n in ("o1.zarr", "o2.zarr", "o3.zarr")
    )
    np.testing.assert_array_equal(w1, w2)
    assert not np.array_equal(w1, w3)
    assert EventStore(tmp_path / "o1.zarr").attrs["shuffle_seed"] == 5


def test_counts_partitions_and_attrs(inputs, tmp_path):
    combine_events(inputs, tmp_path / "out.zarr", seed=1, validation_split=0.1, test_split=0.25)
    out = EventStore(tmp_path / "out.zarr")
    assert out.attrs["signal_events"] == [700, 333, 0]
    assert out.attrs["background_events"] == 250
    assert out.attrs["input_files"] == [str(p) for p in inputs]
    assert out.attrs["input_events"] == [700, 333, 250]
    assert out.provenance["shuffle_seed"] == 1
    parts = out.partitions
    assert parts == {"train": (0, 834), "validation": (834, 962), "test": (962, 1283)}
    assert partition_bounds(tmp_path / "out.zarr", "test") == (962, 1283)
    covered = np.concatenate([np.arange(*parts[k]) for k in ("train", "validation", "test")])
    np.testing.assert_array_equal(covered, np.arange(1283))  # disjoint and complete
    assert partition_fraction(out, "validation") == pytest.approx(128 / 1283)
    with pytest.raises(InputError, match="unknown partition"):
        out.partition_bounds("training")


def test_sampling_factors_are_madminer_k_factors(inputs, tmp_path):
    combine_events(inputs, tmp_path / "out.zarr", seed=1)
    f = sampling_factors(tmp_path / "out.zarr")
    np.testing.assert_allclose(f, [700 / 1033, 333 / 1033, 0.0, 1.0])
    # without the attribute, counting the ids gives the same
    assert sampling_factors(inputs[0]).tolist() == [1.0, 0.0, 0.0, 1.0]


def test_k_factors_multiply_weights(inputs, tmp_path):
    combine_events(inputs, tmp_path / "out.zarr", seed=1, k_factors=[2.0, 1.0, 0.5])
    out = EventStore(tmp_path / "out.zarr")
    ins = [EventStore(p).cross_sections() for p in inputs]
    np.testing.assert_allclose(out.cross_sections(), 2 * ins[0] + ins[1] + 0.5 * ins[2])
    with pytest.raises(ConfigError, match="k-factors"):
        combine_events(inputs, tmp_path / "bad.zarr", seed=1, k_factors=[1.0])
    assert not (tmp_path / "bad.zarr").exists()


def test_nuisance_weights_carried(make_store, tmp_path, row_hashes):
    a = make_store("a.zarr", 120, 1, nuisance=["nu_up", "nu_down"])
    b = make_store("b.zarr", 80, 2, nuisance=["nu_up", "nu_down"])
    combine_events([a, b], tmp_path / "out.zarr", seed=3, block_events=MANY_BLOCKS)
    out = EventStore(tmp_path / "out.zarr")
    cols = ("observables", "weights", "sampling_benchmark", "nuisance_weights")
    expected = np.sort(np.concatenate([row_hashes(EventStore(p), cols) for p in (a, b)]))
    np.testing.assert_array_equal(row_hashes(out, cols), expected)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"benchmarks": ("sm", "b1", "other")}, "attrs.benchmark_names"),
        ({"observables": ["x0", "x1", "y"]}, "attrs.observable_names"),
        ({"nuisance": ["nu_up"]}, "attrs.nuisance_benchmark_names"),
        ({"attrs": {"setup_hash": "def"}}, "attrs.setup_hash"),
    ],
)
def test_refuses_mismatched_stores(make_store, tmp_path, kwargs, field):
    a = make_store("a.zarr", 50, 1, attrs={"setup_hash": "abc"})
    b = make_store("b.zarr", 50, 2, **kwargs)
    with pytest.raises(InputError) as err:
        combine_events([a, b], tmp_path / "out.zarr", seed=1)
    msg = str(err.value)
    assert err.value.field == field and "a.zarr" in msg and "b.zarr" in msg
    assert not (tmp_path / "out.zarr").exists()


def test_checks_against_setup_file(make_store, tmp_path, toy_setup_file):
    setup, names = toy_setup_file
    good = make_store("good.zarr", 60, 1, benchmarks=names)
    combine_events([good], tmp_path / "out.zarr", seed=1, setup=setup)
    assert EventStore(tmp_path / "out.zarr").attrs["setup_hash"] == setup_fingerprint(setup)
    bad = make_store("bad.zarr", 60, 1, benchmarks=names[:-1] + ["zz"])
    with pytest.raises(InputError) as err:
        combine_events([bad], tmp_path / "out2.zarr", seed=1, setup=setup)
    assert err.value.field == "attrs.benchmark_names" and "setup.h5" in str(err.value)
    assert not (tmp_path / "out2.zarr").exists()


def test_bad_ids_and_bad_splits(make_store, tmp_path):
    a = make_store("a.zarr", 40, 1, sampling=5)  # only 3 benchmarks
    with pytest.raises(InputError) as err:
        combine_events([a], tmp_path / "out.zarr", seed=1)
    assert err.value.field == "sampling_benchmark" and "a.zarr" in err.value.file
    assert not (tmp_path / "out.zarr").exists()
    with pytest.raises(ConfigError):
        split_bounds(100, 0.5, 0.5)
    with pytest.raises(ConfigError):
        split_bounds(100, -0.1, 0.2)
    with pytest.raises(InputError, match="overwrite"):
        combine_events([a], a, seed=1)


def test_split_bounds_keeps_every_event():
    for n in (1, 7, 10, 1001):
        b = split_bounds(n, 0.2, 0.2)
        assert b["train"][0] == 0 and b["test"][1] == n
        assert b["train"][1] == b["validation"][0] and b["validation"][1] == b["test"][0]


def test_memory_budget_sets_block_count(tmp_path):
    """Blocks are sized from memory_mb (≈ a third of it), so memory does not follow N."""
    from eftflow.store.events import EventStoreWriter

    n = 150_000
    rng = np.random.default_rng(0)
    with EventStoreWriter(
        tmp_path / "big.zarr", ["a", "b", "c"], ["s0", "s1", "s2", "s3", "s4", "s5"]
    ) as w:
        w.append(
            observables=rng.random((n, 3)),
            weights=rng.random((n, 6)),
            sampling_benchmark=rng.integers(0, 6, n),
        )
    info = combine_events([tmp_path / "big.zarr"], tmp_path / "out.zarr", seed=1, memory_mb=16)
    assert info["n_blocks"] == 3  # 150k events × 80 B = 12 MB in blocks of ≤ 16/3 MB
    out = EventStore(tmp_path / "out.zarr")
    assert out.attrs["shuffle_blocks"] == 3 and out.n_events == n
    np.testing.assert_allclose(
        out.cross_sections(), EventStore(tmp_path / "big.zarr").cross_sections()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "big.zarr",
        "out.zarr",
    ]  # no temp files left


def test_error_in_streaming_pass_leaves_nothing(make_store, tmp_path):
    good = make_store("good.zarr", 300, 1)
    bad = make_store("bad.zarr", 300, 2, sampling=7)
    with pytest.raises(InputError) as err:
        combine_events([good, bad], tmp_path / "out.zarr", seed=1, block_events=100)
    assert err.value.field == "sampling_benchmark" and "bad.zarr" in err.value.file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zarr", "good.zarr"]


@pytest.mark.parametrize("block_events", [None, 100])
def test_non_finite_weights_and_duplicate_inputs_are_refused(make_store, tmp_path, block_events):
    # weights damaged after writing (the writers refuse NaN themselves): combine names the store
    # and the event; the same store given twice would duplicate its events
    import zarr

    good = make_store("good.zarr", 300, 1)
    nan = make_store("nan.zarr", 300, 2)
    g = zarr.open_group(str(nan), mode="r+")
    w = g["weights"][:]
    w[205, 1] = np.nan
    g["weights"][:] = w
    with pytest.raises(InputError, match="non-finite weight in event 205") as err:
        combine_events([good, nan], tmp_path / "out.zarr", seed=1, block_events=block_events)
    assert err.value.file == str(nan) and err.value.field == "weights"
    with pytest.raises(InputError, match="given twice") as err:
        combine_events([good, nan, tmp_path / "good.zarr"], tmp_path / "o.zarr", seed=1)
    assert err.value.field == "inputs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.zarr", "nan.zarr"]
