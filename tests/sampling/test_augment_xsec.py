"""Cross sections and gradients: closure on the analytic toy, partitions, mixing factors, bad inputs."""

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.generate.toy import toy_cross_section
from eftflow.sampling import cross_sections
from eftflow.sampling.weights import WeightModel

from .conftest import SIGMA0, write_toy_store

THETAS = np.array([[0.0, 0.0], [0.5, 0.0], [-0.3, 0.4], [1.0, 1.0], [2.0, -1.5]])


def test_xsec_closure_at_1e6(big_store, toy):
    res = cross_sections(big_store, toy, THETAS, gradients=True, n_workers=2)
    exact = toy_cross_section(THETAS, sigma0=SIGMA0)
    pulls = (res["xsec"] - exact) / res["xsec_error"]
    assert np.all(np.abs(pulls) < 4), pulls
    grad_exact = SIGMA0 * np.stack([2 * THETAS[:, 0], 4 * THETAS[:, 1]], axis=1)
    gp = (res["gradient"] - grad_exact) / res["gradient_error"]
    assert np.all(np.abs(gp) < 4), gp
    # at the SM all weights are equal: σ is exact and its error is σ/sqrt(N)
    assert res["xsec"][0] == pytest.approx(SIGMA0, rel=1e-12)
    assert res["xsec_error"][0] == pytest.approx(SIGMA0 / 1000.0, rel=1e-9)


def test_partitions_rescale_by_fraction(small_store, toy):
    full = cross_sections(small_store, toy, [[0.0, 0.0]], partition="all")
    for part, frac in (("train", 0.6), ("validation", 0.2), ("test", 0.2)):
        r = cross_sections(small_store, toy, [[0.0, 0.0]], partition=part)
        assert r["n_events"][0] == round(frac * 20_000)
        assert r["xsec"][0] == pytest.approx(full["xsec"][0], rel=1e-12)  # SM weights all equal
        assert r["xsec_error"][0] == pytest.approx(full["xsec_error"][0] / np.sqrt(frac), rel=1e-9)


def test_mixed_samples_use_mixing_factors_or_closest(tmp_path, toy):
    path = write_toy_store(
        tmp_path / "mix.zarr", toy, 100_000, 5, sampling=("sm", "t1_pos"), chunk=50_000
    )
    theta = np.array([[0.5, 0.0], [0.0, 0.3]])
    exact = toy_cross_section(theta, sigma0=SIGMA0)
    allr = cross_sections(path, toy, theta)
    clo = cross_sections(path, toy, theta, sample_only_from_closest_benchmark=True)
    for r in (allr, clo):
        assert np.all(np.abs(r["xsec"] - exact) < 4 * r["xsec_error"])
    assert clo["n_events"].tolist() == [100_000, 100_000]
    assert allr["n_events"].tolist() == [200_000, 200_000]
    # at t1_pos only its own events: all weights equal there, so σ is exact
    assert clo["xsec"][0] == pytest.approx(exact[0], rel=1e-12)


def test_theta_with_wrong_dimension(small_store, toy):
    with pytest.raises(InputError, match="2 components"):
        cross_sections(small_store, toy, [[0.0, 0.0, 0.0]])


def test_empty_partition_without_partition_attrs(tmp_path, toy):
    path = write_toy_store(tmp_path / "np.zarr", toy, 1000, 1, partitions=None)
    r = cross_sections(path, toy, [[0.0, 0.0]], partition="train")
    assert r["n_events"][0] == 1000
    with pytest.raises(InputError, match="partition 'test' is empty") as err:
        cross_sections(path, toy, [[0.0, 0.0]], partition="test")
    assert err.value.field == "attrs.partitions.test" and err.value.file == str(path)


def test_store_and_setup_mismatch(tmp_path, toy):
    from eftflow.generate.toy import toy_setup

    other = toy_setup(benchmarks={"sm": (0, 0), "elsewhere": (0.9, 0.9)})
    path = write_toy_store(tmp_path / "s.zarr", toy, 1000, 1)
    with pytest.raises(InputError, match="lacks weights for benchmark") as err:
        WeightModel(path, other)
    assert err.value.field == "attrs.benchmark_names"


def test_setup_hash_mismatch(tmp_path, toy):
    from eftflow.generate.toy import toy_setup

    toy.save(tmp_path / "a.h5")
    toy_setup(seed=7, parameter_range=(-2, 2)).save(tmp_path / "b.h5")
    from eftflow.store.combine import setup_fingerprint

    path = write_toy_store(
        tmp_path / "h.zarr",
        toy,
        1000,
        1,
        attrs={"setup_hash": setup_fingerprint(tmp_path / "a.h5")},
    )
    WeightModel(path, toy, setup_file=tmp_path / "a.h5")
    with pytest.raises(InputError, match="different setup") as err:
        WeightModel(path, toy, setup_file=tmp_path / "b.h5")
    assert err.value.field == "attrs.setup_hash"
