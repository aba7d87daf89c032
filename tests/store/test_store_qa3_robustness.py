"""Storage-layer QA: damaged metadata, bad appends, write failures, killed and concurrent
writers, leftovers of killed shuffles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.store import chunkfiles
from eftflow.store.atomic import stale_prefix
from eftflow.store.combine import combine_events
from eftflow.store.events import EventStore, EventStoreWriter


@pytest.fixture
def store20(tmp_path):
    path = tmp_path / "base.zarr"
    rng = np.random.default_rng(0)
    with EventStoreWriter(path, ["a", "b"], ["p", "q"], chunk_size=8) as w:
        w.append(
            observables=rng.normal(size=(20, 2)),
            weights=rng.normal(size=(20, 2)),
            sampling_benchmark=np.zeros(20, int),
        )
    return path


def _edit(path, key, value, array=None):
    f = path / (array or "") / "zarr.json"
    meta = json.loads(f.read_text())
    target = meta if array else meta["attributes"]
    if key == "chunk_shape":
        meta["chunk_grid"]["configuration"]["chunk_shape"] = value
    else:
        target[key] = value
    f.write_text(json.dumps(meta))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize(
    ("key", "value", "array", "field"),
    [
        ("shape", [20, 3], "weights", "weights"),  # was read through zarr: a column of zeros
        ("chunk_shape", [-8, 2], "weights", "weights"),  # was uninitialised memory
        ("n_events", "abc", None, "attrs.n_events"),  # was a bare ValueError
        ("n_events", None, None, "attrs.n_events"),  # was a bare TypeError
        ("observable_names", 5, None, "attrs.observable_names"),  # was a bare TypeError
        ("observable_names", ["a"], None, "observables"),  # was accepted
        ("benchmark_names", ["p", "q", "r"], None, "weights"),  # was accepted
    ],
)
def test_inconsistent_metadata_is_an_input_error(store20, key, value, array, field):
    _edit(store20, key, value, array)
    with pytest.raises(InputError) as err:
        EventStore(store20)
    assert err.value.file == str(store20)
    assert err.value.field == field


def test_malformed_partitions_are_an_input_error(store20):
    _edit(store20, "partitions", {"train": [0]})
    with pytest.raises(InputError) as err:
        _ = EventStore(store20).partitions
    assert err.value.field == "attrs.partitions"


def test_empty_chunk_file_is_named(store20):
    (store20 / "weights" / "c" / "1" / "0").write_bytes(b"")
    with pytest.raises(InputError, match="chunk 1 is an empty file") as err:
        EventStore(store20).read("weights")
    assert err.value.field == "weights"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sampling_benchmark": np.zeros(4, int)}, "sampling_benchmark"),
        ({"observables": np.zeros((5, 3))}, "observables"),
        ({"weights": np.zeros((5, 1, 2))}, "weights"),
        ({"nuisance_weights": np.zeros((4, 1))}, "nuisance_weights"),
        ({"nuisance_weights": np.zeros((5, 2))}, "nuisance_weights"),
    ],
)
def test_append_with_bad_shapes_is_an_input_error(tmp_path, kwargs, field):
    cols = {
        "observables": np.zeros((5, 2)),
        "weights": np.zeros((5, 2)),
        "sampling_benchmark": np.zeros(5, int),
        "nuisance_weights": np.zeros((5, 1)),
    }
    cols.update(kwargs)
    out = tmp_path / "o.zarr"
    with pytest.raises(InputError) as err:
        with EventStoreWriter(out, ["a", "b"], ["p", "q"], nuisance_names=["n"]) as w:
            w.append(**cols)
    assert err.value.field == field
    assert os.listdir(tmp_path) == []


def test_write_failure_names_store_and_array(tmp_path, monkeypatch):
    real_open = open

    def full_disk(path, mode="r", *a, **k):
        if "w" in mode and "/c/" in str(path):
            f = real_open(path, mode, *a, **k)
            f.close()
            raise OSError(28, "No space left on device")  # as write() raises it: no file name
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(chunkfiles, "open", full_disk, raising=False)
    out = tmp_path / "o.zarr"
    with pytest.raises(InputError, match="No space left on device") as err:
        with EventStoreWriter(out, ["a"], ["p"], chunk_size=4) as w:
            w.append(observables=np.zeros((10, 1)), weights=np.ones((10, 1)))
    assert err.value.file == str(out)
    assert err.value.field in ("observables", "weights", "sampling_benchmark")
    assert os.listdir(tmp_path) == []


def test_concurrent_writers_of_one_output(tmp_path):
    out, errors = tmp_path / "o.zarr", []

    def work(k):
        for _ in range(15):
            try:
                with EventStoreWriter(out, ["a"], ["p"], chunk_size=4) as w:
                    w.append(observables=np.full((k + 1, 1), k), weights=np.ones((k + 1, 1)))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert os.listdir(tmp_path) == ["o.zarr"]  # no temporary or replaced copy left behind
    st = EventStore(out)
    x = st.read("observables")[:, 0]
    assert st.n_events == int(x[0]) + 1 and (x == x[0]).all()  # one writer's complete store


def test_leftovers_of_killed_writers_and_shuffles_are_removed(tmp_path, store20):
    pid = _dead_pid()
    out = tmp_path / "c.zarr"
    stale = [
        tmp_path / f"{stale_prefix(out, kind)}{pid}-0123abcd" for kind in ("tmp", "old", "shuffle")
    ]
    for d in stale:
        shutil.copytree(store20, d)
    live = tmp_path / f"{stale_prefix(out, 'shuffle')}{os.getpid()}-0123abcd"
    live.mkdir()  # a live process's: left alone
    combine_events([store20], out, seed=1, block_events=4)
    assert sorted(os.listdir(tmp_path)) == sorted(["base.zarr", "c.zarr", live.name])
