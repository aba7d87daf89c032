"""MadMiner interop: export → real madminer reads it; MadMiner's own files → import."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.store.combine import combine_events, sampling_factors
from eftflow.store.events import EventStore, EventStoreWriter
from eftflow.store.madminer_io import export_madminer, import_madminer

pytest.importorskip("madminer")


def _toy_weights(setup, n, rng):
    """Positive per-benchmark weights from a positive quadratic dσ(x|θ) (exact morphing)."""
    from eftflow.physics.morphing import Morpher

    d = setup.to_dict()
    basis = np.array([b["values"] for b in d["benchmarks"] if not b["is_nuisance"]])
    x = rng.normal(size=(n, 3))
    # dσ(x|θ) = (1 + 0.3 x0 θ1 + 0.2 x1 θ2)² + 0.1 (per event, pb/n)
    theta = basis
    w = (
        (1 + 0.3 * x[:, :1] * theta[None, :, 0] + 0.2 * x[:, 1:2] * theta[None, :, 1]) ** 2 + 0.1
    ) / n
    morpher = Morpher.from_matrix(d["components"], basis, d["morphing_matrix"])
    return x, w, morpher


@pytest.fixture
def exported(tmp_path, toy_setup, toy_setup_file):
    setup, names = toy_setup_file
    rng = np.random.default_rng(4)
    stores = []
    for k, (sb, n) in enumerate(((0, 400), (3, 300))):
        x, w, morpher = _toy_weights(toy_setup, n, rng)
        with EventStoreWriter(
            tmp_path / f"in{k}.zarr", ["x0", "x1", "x2"], names, chunk_size=64
        ) as wr:
            wr.append(observables=x, weights=w, sampling_benchmark=np.full(n, sb))
        stores.append(tmp_path / f"in{k}.zarr")
    combine_events(stores, tmp_path / "all.zarr", seed=2, setup=setup)
    export_madminer(tmp_path / "all.zarr", setup, tmp_path / "all.h5", chunk_size=100)
    return tmp_path / "all.zarr", tmp_path / "all.h5", morpher


def test_export_layout_is_madminers(exported):
    store_path, h5, _ = exported
    st = EventStore(store_path)
    with h5py.File(h5, "r") as f:
        assert f["samples/observations"].shape == (700, 3)
        assert f["samples/weights"].shape == (700, 6) and f["samples/weights"].dtype == np.float64
        assert f["samples/sampling_benchmarks"].dtype == np.int64
        assert f["samples/weights"].chunks is None  # contiguous, as MadMiner writes
        assert f["observables/names"].dtype == np.dtype("S256")
        assert [v.decode() for v in f["observables/names"][()]] == ["x0", "x1", "x2"]
        assert f["sample_summary/signal_events"][()].tolist() == [400, 0, 0, 300, 0, 0]
        assert int(f["sample_summary/background_events"][()]) == 0
        np.testing.assert_array_equal(
            f["samples/weights"][()], np.concatenate([c["weights"] for c in st.iter_chunks()])
        )
        assert "parameters/names" in f and "morphing/morphing_matrix" in f


def test_madminer_reads_export(exported):
    from madminer.fisherinformation import FisherInformation
    from madminer.sampling import SampleAugmenter

    store_path, h5, morpher = exported
    st = EventStore(store_path)
    aug = SampleAugmenter(str(h5))
    assert aug.n_samples == 700 and list(aug.observables) == ["x0", "x1", "x2"]
    # MadMiner applies the n_b/Σn mixing factors at read time: the same as sampling_factors()
    f = sampling_factors(st)
    expected = np.zeros(6)
    for c in st.iter_chunks():
        expected += (c["weights"] * f[c["sampling_benchmark"]][:, None]).sum(axis=0)
    xsecs, _ = aug.xsecs()
    np.testing.assert_allclose(xsecs, expected, rtol=1e-12)
    # truth-level Fisher information at θ = (0.2, -0.3) against an independent computation
    theta = np.array([0.2, -0.3])
    fisher = FisherInformation(str(h5))
    info, _ = fisher.truth_information(theta=theta, luminosity=1000.0)
    wm, gm = morpher.weights(theta), morpher.gradients(theta)
    ours = np.zeros((2, 2))
    for c in st.iter_chunks():
        w = c["weights"] * f[c["sampling_benchmark"]][:, None]
        sigma, dsigma = w @ wm, w @ gm.T
        ours += 1000.0 * (dsigma[:, :, None] * dsigma[:, None, :] / sigma[:, None, None]).sum(
            axis=0
        )
    np.testing.assert_allclose(info, ours, rtol=1e-10)


def test_export_import_round_trip(exported, tmp_path, row_hashes):
    store_path, h5, _ = exported
    import_madminer(h5, tmp_path / "back.zarr", chunk_size=128)
    a, b = EventStore(store_path), EventStore(tmp_path / "back.zarr")
    assert b.benchmark_names == a.benchmark_names and b.observable_names == a.observable_names
    assert b.attrs["signal_events"] == a.attrs["signal_events"]
    assert b.attrs["setup_hash"] == a.attrs["setup_hash"]
    for col in ("observables", "weights", "sampling_benchmark"):
        np.testing.assert_array_equal(b.read(col), a.read(col))


def test_import_file_written_by_madminer(tmp_path):
    """A file made by MadMiner's own writers and combine_and_shuffle imports to the same events."""
    from madminer import MadMiner
    from madminer.sampling import combine_and_shuffle
    from madminer.utils.interfaces.hdf5 import (
        _save_observables,
        _save_samples,
        _save_samples_summary,
    )

    miner = MadMiner()
    for i in (1, 2):
        miner.add_parameter(
            lha_block="toy", lha_id=i, parameter_name=f"t{i}", morphing_max_power=2,
            parameter_range=(-1.0, 1.0), param_card_transform="theta",
        )  # fmt: skip
    miner.add_benchmark({"t1": 0.0, "t2": 0.0}, "sm")
    miner.set_morphing(include_existing_benchmarks=True, max_overall_power=2)
    miner.save(str(tmp_path / "setup.h5"))
    rng = np.random.default_rng(9)
    for k, n in enumerate((150, 90)):
        f = tmp_path / f"part{k}.h5"
        shutil.copyfile(tmp_path / "setup.h5", f)
        s = np.full(n, k)
        _save_observables(str(f), True, ["a", "b"], ["l[0].pt", "met.pt"])
        _save_samples(str(f), True, rng.normal(size=(n, 2)), rng.random((n, 6)), s)
        _save_samples_summary(str(f), True, np.bincount(s, minlength=6), 0)
    out = tmp_path / "combined.h5"
    combine_and_shuffle([str(tmp_path / "part0.h5"), str(tmp_path / "part1.h5")], str(out))
    import_madminer(out, tmp_path / "mm.zarr", chunk_size=50)
    st = EventStore(tmp_path / "mm.zarr")
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(st.read("observables"), f["samples/observations"][()])
        np.testing.assert_array_equal(st.read("weights"), f["samples/weights"][()])
        np.testing.assert_array_equal(
            st.read("sampling_benchmark"), f["samples/sampling_benchmarks"][()]
        )
        assert st.attrs["signal_events"] == f["sample_summary/signal_events"][()].tolist()
        names = [v.decode() for v in f["benchmarks/names"][()]]
    assert st.benchmark_names == names and st.observable_names == ["a", "b"]
    assert st.attrs["observable_definitions"] == ["l[0].pt", "met.pt"]
    assert st.nuisance_benchmark_names is None


def test_nuisance_columns_round_trip(tmp_path, toy_setup, row_hashes):
    from eftflow.store.setup_h5 import write_setup

    data = toy_setup.to_dict()
    data["benchmarks"].append(
        {"name": "lumi_up", "values": [0.0, 0.0], "is_nuisance": True, "is_reference": False}
    )
    write_setup(tmp_path / "setup.h5", data)
    names = [b["name"] for b in data["benchmarks"][:-1]]
    rng = np.random.default_rng(1)
    with EventStoreWriter(
        tmp_path / "a.zarr", ["x"], names[::-1], nuisance_names=["lumi_up"]
    ) as wr:
        wr.append(observables=rng.random((20, 1)), weights=rng.random((20, 6)),
                  sampling_benchmark=np.full(20, 5), nuisance_weights=rng.random((20, 1)))  # fmt: skip
    export_madminer(tmp_path / "a.zarr", tmp_path / "setup.h5", tmp_path / "a.h5")
    a = EventStore(tmp_path / "a.zarr")
    with h5py.File(tmp_path / "a.h5", "r") as f:
        w = f["samples/weights"][()]
        np.testing.assert_array_equal(w[:, :6], a.read("weights")[:, ::-1])  # setup order
        np.testing.assert_array_equal(w[:, 6], a.read("nuisance_weights")[:, 0])
        assert set(f["samples/sampling_benchmarks"][()]) == {0}  # store id 5 = setup benchmark 0
        assert f["sample_summary/signal_events"][()].tolist() == [20, 0, 0, 0, 0, 0]
    import_madminer(tmp_path / "a.h5", tmp_path / "b.zarr")
    b = EventStore(tmp_path / "b.zarr")
    assert b.nuisance_benchmark_names == ["lumi_up"] and b.benchmark_names == names
    np.testing.assert_array_equal(b.read("nuisance_weights"), a.read("nuisance_weights"))


def test_export_refuses_other_setup(make_store, toy_setup_file, tmp_path):
    setup, names = toy_setup_file
    st = make_store("a.zarr", 30, benchmarks=["sm", "b1"])
    with pytest.raises(InputError) as err:
        export_madminer(st, setup, tmp_path / "out.h5")
    assert err.value.field == "attrs.benchmark_names" and "setup.h5" in str(err.value)
    st2 = make_store("b.zarr", 30, benchmarks=names, attrs={"setup_hash": "0" * 64})
    with pytest.raises(InputError, match="different setup") as err:
        export_madminer(st2, setup, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_import_bad_files(tmp_path, toy_setup_file):
    setup, _ = toy_setup_file
    with pytest.raises(InputError) as err:  # a setup without events
        import_madminer(setup, tmp_path / "x.zarr")
    assert err.value.field == "samples/observations" and err.value.file == str(setup)
    bad = tmp_path / "bad.h5"
    shutil.copyfile(setup, bad)
    with h5py.File(bad, "a") as f:
        w = np.ones((10, 6))
        w[7, 2] = np.inf
        f["samples/observations"] = np.zeros((10, 2))
        f["samples/weights"] = w
    with pytest.raises(InputError, match="event 7") as err:
        import_madminer(bad, tmp_path / "x.zarr", chunk_size=4)
    assert err.value.field == "samples/weights"
    with h5py.File(bad, "a") as f:
        del f["samples"]
        f["samples/observations"] = np.zeros((0, 2))
        f["samples/weights"] = np.zeros((0, 6))
    with pytest.raises(InputError, match="empty"):
        import_madminer(bad, tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5", "setup.h5"]


def test_reference_benchmark_flagged_for_madminer_nuisance_morphing(tmp_path, toy_setup):
    """Exports name the reference benchmark (MadMiner's NuisanceMorpher needs it), also from a
    setup file written before the flag was set, whose flags read as written (so fingerprints
    recorded from it stay valid)."""
    from madminer.sampling import SampleAugmenter

    from eftflow.store.setup_h5 import read_setup, write_setup

    data = toy_setup.to_dict()
    data["benchmarks"].append(
        {"name": "mu_up", "values": [0.0, 0.0], "is_nuisance": True, "is_reference": False}
    )
    data["systematics"] = [{"name": "mu", "type": "scale", "value": "2.0", "scale": "mu"}]
    data["nuisance_parameters"] = [
        {"name": "mu_nuisance_param_0", "systematic": "mu", "benchmark_positive": "mu_up",
         "benchmark_negative": None}
    ]  # fmt: skip
    write_setup(tmp_path / "setup.h5", data)
    with h5py.File(tmp_path / "setup.h5", "r") as f:
        assert f["benchmarks/is_reference"][()].tolist() == [1, 0, 0, 0, 0, 0, 0]
    shutil.copyfile(tmp_path / "setup.h5", tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "a") as f:  # as written before: no flag
        f["benchmarks/is_reference"][...] = 0
    assert not any(b["is_reference"] for b in read_setup(tmp_path / "old.h5")["benchmarks"])
    names = [b["name"] for b in data["benchmarks"][:-1]]
    rng = np.random.default_rng(2)
    with EventStoreWriter(tmp_path / "a.zarr", ["x"], names, nuisance_names=["mu_up"]) as wr:
        wr.append(observables=rng.random((40, 1)), weights=rng.uniform(1, 2, (40, 6)),
                  sampling_benchmark=np.zeros(40, int), nuisance_weights=rng.uniform(1, 2, (40, 1)))  # fmt: skip
    export_madminer(tmp_path / "a.zarr", tmp_path / "old.h5", tmp_path / "a.h5")
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f["benchmarks/is_reference"][()].tolist() == [1, 0, 0, 0, 0, 0, 0]
    sa = SampleAugmenter(str(tmp_path / "a.h5"))  # failed with "None is not in list"
    assert sa.n_nuisance_parameters == 1


def test_export_warns_about_systematics_madminer_cannot_read(
    make_store, tmp_path, toy_setup, caplog
):
    from eftflow.store.setup_h5 import write_setup

    data = toy_setup.to_dict()
    data["systematics"] = [{"name": "lumi", "type": "norm", "value": "1.02", "scale": None}]
    write_setup(tmp_path / "setup.h5", data)
    st = make_store("a.zarr", 30, benchmarks=[b["name"] for b in data["benchmarks"]])
    with caplog.at_level("WARNING"):
        export_madminer(st, tmp_path / "setup.h5", tmp_path / "out.h5")
    assert "cannot load a file with norm or pdf systematics (lumi)" in caplog.text
    assert (tmp_path / "out.h5").exists()


def test_import_records_madminers_default_split(exported, tmp_path):
    """MadMiner's SampleAugmenter splits a file 60/20/20 by index; an import keeps that split
    (or the one asked for), so sample_test finds its events."""
    from eftflow.errors import ConfigError

    _, h5, _ = exported
    import_madminer(h5, tmp_path / "a.zarr")
    st = EventStore(tmp_path / "a.zarr")
    n = st.n_events
    assert st.partition_bounds("train") == (0, n - 2 * round(0.2 * n))
    assert st.partition_bounds("test") == (n - round(0.2 * n), n)
    import_madminer(h5, tmp_path / "b.zarr", validation_split=0.0, test_split=0.0)
    assert EventStore(tmp_path / "b.zarr").partition_bounds("train") == (0, n)
    with pytest.raises(ConfigError) as err:
        import_madminer(h5, tmp_path / "c.zarr", test_split=1.5)
    assert err.value.field == "combine.test_split" and not (tmp_path / "c.zarr").exists()
