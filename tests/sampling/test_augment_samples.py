"""Augmented samples: unweighting statistics, joint-ratio and joint-score identities, reproducibility.

Identities tested (expectations over events distributed at the stated θ):
* E_θ[t_xz(θ)] = 0 (the joint score has zero mean under its own θ), so the mean of ``t_xz``
  over a local sample drawn at θ vanishes — and the per-event t_xz equals the toy's exact score;
* E_θ1[r_xz(θ0, θ1)] = 1 and E_θ0[1/r_xz(θ0, θ1)] = 1 (ratios of normalised densities);
* drawn events follow p(x|θ): E_θ[x] = (2θ₁ + 4θ₁θ₂)/(1 + θ₁² + 2θ₂²) for the toy.
"""

import json

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.generate.toy import toy_score
from eftflow.sampling import SampleAugmenter, benchmark, morphing_point, random_morphing_points
from eftflow.sampling.output import read_training_set

from .conftest import nuisance_setup, write_toy_store


def _sem(v):
    return v.std(axis=0) / np.sqrt(len(v))


def test_local_sample_at_sm_and_off_sm(big_store, toy, tmp_path):
    sa = SampleAugmenter(big_store, toy, dtype="float64", n_workers=2)
    for theta in ([0.0, 0.0], [0.4, -0.3]):
        summary = sa.sample_train_local(morphing_point(theta), 40_000, tmp_path / "l.zarr", seed=4)
        d = read_training_set(tmp_path / "l.zarr")
        assert d["x"].shape == (40_000, 2) and d["t_xz"].shape == (40_000, 2)
        assert np.all(d["theta"] == theta)
        assert np.all(np.abs(d["t_xz"].mean(axis=0)) < 4 * _sem(d["t_xz"]))
        np.testing.assert_allclose(
            d["t_xz"], toy_score(d["x"][:, 0], np.array(theta)), rtol=0, atol=1e-2
        )  # up to the MC error of ∇σ/σ
        mean_x = (2 * theta[0] + 4 * theta[0] * theta[1]) / (1 + theta[0] ** 2 + 2 * theta[1] ** 2)
        assert abs(d["x"][:, 0].mean() - mean_x) < 4 * _sem(d["x"][:, 0])
        assert summary["n_samples"] == 40_000 and summary["n_distinct_events"] <= 40_000
        assert summary["partition"] == "train" and summary["n_events_partition"] == 600_000
        if theta == [0.0, 0.0]:
            assert summary["ess_min"] == pytest.approx(600_000)  # equal weights at the SM
        assert d["attrs"]["summary"]["seed"] == 4


def test_ratio_identities(big_store, toy, tmp_path):
    sa = SampleAugmenter(big_store, toy, dtype="float64")
    prior = random_morphing_points(20, [("flat", -0.8, 0.8), ("flat", -0.5, 0.5)])
    summary = sa.sample_train_ratio(prior, benchmark("sm"), 60_000, tmp_path / "r.zarr", seed=9)
    d = read_training_set(tmp_path / "r.zarr")
    y = d["y"][:, 0]
    assert set(np.unique(y)) == {0.0, 1.0} and abs(y.mean() - 0.5) < 0.01
    assert np.all(d["theta1"] == 0.0)
    r = d["r_xz"][:, 0]
    assert abs(r[y == 1].mean() - 1) < 4 * _sem(r[y == 1])
    assert abs((1 / r[y == 0]).mean() - 1) < 4 * _sem(1 / r[y == 0])
    # t_xz0 is the score at θ0, t_xz1 at θ1 = SM
    np.testing.assert_allclose(
        d["t_xz0"], toy_score(d["x"][:, 0], d["theta0"]), rtol=0, atol=1e-2
    )  # up to the MC error of ∇σ/σ
    np.testing.assert_allclose(
        d["t_xz1"], toy_score(d["x"][:, 0], d["theta1"]), rtol=0, atol=1e-2
    )  # up to the MC error of ∇σ/σ
    assert len({tuple(t) for t in d["theta0"]}) == 40  # 20 for each half, drawn independently
    assert summary["n_sampling_points"] == 21 and len(summary["sampling_points"]["ess"]) == 21


def test_more_ratios_rows(small_store, toy, tmp_path):
    sa = SampleAugmenter(small_store, toy, dtype="float64")
    extra = [morphing_point([0.2, 0.2]), morphing_point([-0.2, 0.1])]
    sa.sample_train_more_ratios(
        morphing_point([0.3, 0.0]),
        benchmark("sm"),
        2000,
        tmp_path / "m.zarr",
        additional_thetas=extra,
        seed=1,
    )
    d = read_training_set(tmp_path / "m.zarr")
    assert d["x"].shape[0] == 3 * 2000
    y0 = d["y"][:, 0] == 0
    assert np.all(d["theta0"][y0] == [0.3, 0.0])
    assert {tuple(t) for t in d["theta1"][y0]} == {(0.0, 0.0), (0.2, 0.2), (-0.2, 0.1)}
    # exact up to the per-θ constant ∇σ̂/σ̂ − ∇σ/σ (MC error of the cross section)
    diff = d["t_xz1"] - toy_score(d["x"][:, 0], d["theta1"])
    for t in {tuple(t) for t in d["theta1"]}:
        rows = np.all(d["theta1"] == t, axis=1)
        assert np.all(diff[rows].std(axis=0) < 1e-9) and np.all(
            np.abs(diff[rows].mean(axis=0)) < 0.1
        )


def test_plain_density_and_test_samples(small_store, toy, tmp_path):
    sa = SampleAugmenter(small_store, toy)
    sa.sample_train_plain(benchmark("t1_pos"), 1000, tmp_path / "p.zarr", seed=1)
    p = read_training_set(tmp_path / "p.zarr")
    assert set(p) == {"x", "theta", "attrs"} and p["x"].dtype == np.float32
    s = sa.sample_train_density(
        random_morphing_points(50, [("flat", -1, 1)] * 2), 1000, tmp_path / "d.zarr", seed=1
    )
    d = read_training_set(tmp_path / "d.zarr")
    assert d["t_xz"].shape == (1000, 2) and len({tuple(t) for t in d["theta"]}) == 50
    assert s["method"] == "density"
    t = sa.sample_test(benchmark("sm"), 500, tmp_path / "t.zarr", seed=1)
    assert t["partition"] == "test" and t["n_events_partition"] == 4000


def test_reproducible_and_independent_of_workers(tmp_path, toy):
    store = write_toy_store(tmp_path / "w.zarr", toy, 20_000, 12, chunk=1500)  # 8 train chunks
    a = SampleAugmenter(store, toy, n_workers=1)
    b = SampleAugmenter(store, toy, n_workers=2)  # thread pool: ≥ 2 chunks per thread
    spec = random_morphing_points(5, [("flat", -1, 1)] * 2)
    a.sample_train_ratio(spec, benchmark("sm"), 3000, tmp_path / "a.zarr", seed=5)
    b.sample_train_ratio(spec, benchmark("sm"), 3000, tmp_path / "b.zarr", seed=5)
    b.sample_train_ratio(spec, benchmark("sm"), 3000, tmp_path / "c.zarr", seed=6)
    da, db, dc = (read_training_set(tmp_path / f"{k}.zarr") for k in "abc")
    for name in ("x", "theta0", "r_xz", "t_xz0", "y"):
        assert np.array_equal(da[name], db[name])
    assert not np.array_equal(da["x"], dc["x"])


def test_closest_benchmark_uses_only_its_events(tmp_path, toy):
    path = write_toy_store(
        tmp_path / "mix.zarr", toy, 20_000, 5, sampling=("sm", "t1_pos"), chunk=8000
    )
    sa = SampleAugmenter(path, toy, dtype="float64")
    s = sa.sample_train_local(morphing_point([0.45, 0.0]), 3000, tmp_path / "c.zarr", seed=2)
    assert s["sampling_points"]["subset"] == [1]  # t1_pos is column 1
    s2 = sa.sample_train_local(morphing_point([0.45, 0.0]), 3000, tmp_path / "c2.zarr", seed=2,
                               sample_only_from_closest_benchmark=False)  # fmt: skip
    assert s2["sampling_points"]["subset"] == [None]
    # own sample at its benchmark: equal weights, ESS = number of its events in the partition
    s3 = sa.sample_train_local(benchmark("t1_pos"), 1000, tmp_path / "c3.zarr", seed=2)
    assert s3["ess_min"] == pytest.approx(s3["sampling_points"]["n_eff_madminer"][0])


def test_nuisance_parameters(tmp_path):
    setup = nuisance_setup("shape")
    path = write_toy_store(tmp_path / "nu.zarr", setup, 50_000, 3, nuisance="shape", chunk=20_000)
    sa = SampleAugmenter(path, setup, dtype="float64")
    sa.sample_train_local(benchmark("sm"), 20_000, tmp_path / "n.zarr", nuisance_score=True, seed=1)
    d = read_training_set(tmp_path / "n.zarr")
    assert d["t_xz"].shape == (20_000, 3) and d["theta"].shape == (20_000, 2)
    assert np.all(np.abs(d["t_xz"].mean(axis=0)) < 4 * _sem(d["t_xz"]))
    # ∂/∂ν of log p at ν=0 is a − E[a] = 0.1 (x − E[x]): exact per event
    np.testing.assert_allclose(d["t_xz"][:, 2], 0.1 * d["x"][:, 0], atol=0.01)
    from eftflow.sampling import iid_nuisance_parameters

    spec = random_morphing_points(50, [("flat", -0.5, 0.5)] * 2)  # one ν draw per θ (MadMiner)
    sa.sample_train_plain(spec, 2000, tmp_path / "p.zarr", nu=iid_nuisance_parameters(), seed=1)
    p = read_training_set(tmp_path / "p.zarr")
    assert p["theta"].shape == (2000, 3) and len(np.unique(p["theta"][:, 2])) == 50


def test_negative_weights_are_never_drawn(tmp_path, toy, caplog):
    from eftflow.store.events import EventStoreWriter

    rng = np.random.default_rng(0)
    n = 5000
    w = np.abs(rng.normal(1.0, 0.1, (n, 6))) / n
    w[:100, 0] = -0.5 / n  # negative SM weights (e.g. NLO)
    with EventStoreWriter(
        tmp_path / "neg.zarr", ["x", "x2"], [b.name for b in toy.physics_benchmarks()]
    ) as wr:
        wr.append(
            observables=np.c_[np.arange(n), np.arange(n)],
            weights=w,
            sampling_benchmark=np.zeros(n, int),
        )
    sa = SampleAugmenter(tmp_path / "neg.zarr", toy, dtype="float64")
    s = sa.sample_train_plain(benchmark("sm"), 20_000, tmp_path / "o.zarr", seed=1)
    x = read_training_set(tmp_path / "o.zarr")["x"][:, 0]
    assert x.min() >= 100 and s["n_negative_weight_events_max"] == 100


def test_all_zero_weights_and_too_small_partition(tmp_path, toy):
    from eftflow.store.events import EventStoreWriter

    names = [b.name for b in toy.physics_benchmarks()]
    with EventStoreWriter(tmp_path / "z.zarr", ["x", "x2"], names) as wr:
        wr.append(
            observables=np.zeros((50, 2)),
            weights=np.zeros((50, 6)),
            sampling_benchmark=np.zeros(50, int),
        )
    sa = SampleAugmenter(tmp_path / "z.zarr", toy)
    with pytest.raises(InputError, match="zero or negative") as err:
        sa.sample_train_plain(benchmark("sm"), 10, tmp_path / "o.zarr", seed=1)
    assert err.value.field == "weights" and not (tmp_path / "o.zarr").exists()
    small = write_toy_store(tmp_path / "s.zarr", toy, 30, 1)
    sa = SampleAugmenter(small, toy, min_effective_samples=50)
    with pytest.raises(InputError, match="too small") as err:
        sa.sample_train_plain(benchmark("sm"), 10, tmp_path / "o.zarr", seed=1)
    assert "min_effective_samples" in err.value.field and not (tmp_path / "o.zarr").exists()
    assert not list(tmp_path.glob(".o.zarr*"))


def test_summary_is_json(small_store, toy, tmp_path):
    s = SampleAugmenter(small_store, toy).sample_train_local(
        benchmark("sm"), 100, tmp_path / "j.zarr", seed=3
    )
    back = json.loads(json.dumps(s))
    assert back["ess_min"] > 0 and back["algorithm"].startswith("two-pass")
