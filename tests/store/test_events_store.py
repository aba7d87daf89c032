"""The zarr event store itself: round trip, chunking, bad inputs, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.store.events import EventStore, EventStoreWriter


def _leftovers(d):
    return sorted(p.name for p in d.iterdir())


def test_round_trip_and_chunked_iteration(tmp_path):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(103, 2)), rng.random((103, 3))
    s, nu = rng.integers(-1, 3, 103), rng.random((103, 1))
    with EventStoreWriter(
        tmp_path / "a.zarr", ["u", "v"], ["sm", "b1", "b2"], chunk_size=10, nuisance_names=["n+"]
    ) as wr:
        wr.append(
            observables=x[:37], weights=w[:37], sampling_benchmark=s[:37], nuisance_weights=nu[:37]
        )
        wr.append(
            observables=x[37:], weights=w[37:], sampling_benchmark=s[37:], nuisance_weights=nu[37:]
        )
    st = EventStore(tmp_path / "a.zarr")
    assert st.n_events == 103 and st.observable_names == ["u", "v"]
    assert st.nuisance_benchmark_names == ["n+"] and st.chunk_size == 10
    chunks = list(st.iter_chunks(chunk_size=25))
    assert [c["stop"] - c["start"] for c in chunks] == [25, 25, 25, 25, 3]
    np.testing.assert_array_equal(np.concatenate([c["observables"] for c in chunks]), x)
    np.testing.assert_array_equal(np.concatenate([c["weights"] for c in chunks]), w)
    np.testing.assert_array_equal(np.concatenate([c["sampling_benchmark"] for c in chunks]), s)
    np.testing.assert_array_equal(np.concatenate([c["nuisance_weights"] for c in chunks]), nu)
    np.testing.assert_allclose(st.cross_sections(), w.sum(axis=0))
    part = list(st.iter_chunks(["weights"], start=40, stop=60, chunk_size=7))
    np.testing.assert_array_equal(np.concatenate([c["weights"] for c in part]), w[40:60])


def test_non_finite_weight_refused_nothing_left(tmp_path):
    w = np.ones((5, 2))
    w[3, 1] = np.nan
    with pytest.raises(InputError) as err:
        with EventStoreWriter(tmp_path / "a.zarr", ["x"], ["sm", "b"]) as wr:
            wr.append(observables=np.zeros((5, 1)), weights=w)
    assert "event 3" in str(err.value) and err.value.field == "weights"
    assert err.value.file.endswith("a.zarr")
    assert _leftovers(tmp_path) == []


def test_empty_sample_refused_nothing_left(tmp_path):
    with pytest.raises(InputError, match="empty"):
        with EventStoreWriter(tmp_path / "a.zarr", ["x"], ["sm"]):
            pass
    assert _leftovers(tmp_path) == []


def test_exception_while_writing_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with EventStoreWriter(tmp_path / "a.zarr", ["x"], ["sm"]) as wr:
            wr.append(observables=np.zeros((3, 1)), weights=np.ones((3, 1)))
            raise RuntimeError("job killed")
    assert _leftovers(tmp_path) == []


def test_incomplete_store_detected(make_store):
    path = make_store("a.zarr", 100)
    meta = path / "zarr.json"
    data = json.loads(meta.read_text())
    del data["attributes"]["n_events"]
    meta.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        EventStore(path)
    assert err.value.field == "attrs.n_events" and "incomplete" in str(err.value)


def test_truncated_store_detected(make_store):
    path = make_store("a.zarr", 100)
    meta = path / "weights" / "zarr.json"
    data = json.loads(meta.read_text())
    data["shape"][0] = 64
    meta.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        EventStore(path)
    assert err.value.field == "weights" and "truncated" in str(err.value)


def test_missing_chunk_file_is_damage_not_zeros(tmp_path):
    # every chunk is written, all-zero ones too, so a deleted chunk file is detected
    from eftflow.sampling.weights import _read
    from eftflow.store.combine import combine_events

    path = tmp_path / "a.zarr"
    with EventStoreWriter(path, ["x"], ["sm", "b"], chunk_size=10) as wr:
        wr.append(
            observables=np.ones((30, 1)), weights=np.ones((30, 2)), sampling_benchmark=np.zeros(30)
        )
    assert sorted(p.name for p in (path / "sampling_benchmark" / "c").iterdir()) == ["0", "1", "2"]
    (path / "weights" / "c" / "1" / "0").unlink()
    for read in (
        lambda: EventStore(path).read("weights"),
        lambda: _read(str(path), "weights", 0, 30),
        lambda: combine_events([path], tmp_path / "out.zarr", seed=1),
    ):
        with pytest.raises(InputError, match="chunk 1 is missing") as err:
            read()
        assert err.value.file == str(path) and err.value.field == "weights"
    assert _leftovers(tmp_path) == ["a.zarr"]


def test_damaged_metadata_detected(make_store):
    """A cut group or array ``zarr.json``: one InputError naming the store (and the array)."""
    path = make_store("a.zarr", 100)
    meta = path / "weights" / "zarr.json"
    meta.write_text(meta.read_text()[:50])
    with pytest.raises(InputError, match="store is damaged") as err:
        EventStore(path)
    assert err.value.field == "weights" and str(path) in str(err.value)
    group = path / "zarr.json"
    group.write_text(group.read_text()[:40])
    with pytest.raises(InputError, match="not an eftflow event store") as err:
        EventStore(path)
    assert str(path) in str(err.value)


def test_missing_array_detected(make_store):
    import shutil

    path = make_store("a.zarr", 100)
    shutil.rmtree(path / "sampling_benchmark")
    with pytest.raises(InputError) as err:
        EventStore(path)
    assert err.value.field == "sampling_benchmark"


def test_missing_and_foreign_paths(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        EventStore(tmp_path / "nope.zarr")
    import zarr

    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["format"] = "something"
    with pytest.raises(InputError) as err:
        EventStore(tmp_path / "other.zarr")
    assert err.value.field == "attrs.format"


def test_partition_bounds_needs_combined_store(make_store):
    st = EventStore(make_store("a.zarr", 10))
    assert st.partitions is None
    with pytest.raises(InputError) as err:
        st.partition_bounds("train")
    assert err.value.field == "attrs.partitions"


def test_missing_attribute_names_the_field(make_store):
    path = make_store("a.zarr", 20)
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    del doc["attributes"]["benchmark_names"]
    meta.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        EventStore(path)
    assert err.value.field == "attrs.benchmark_names" and err.value.file == str(path)
