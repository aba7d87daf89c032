"""Joint ratios and scores equal MadMiner 0.9.6's on the same events.

The toy's observable x identifies an event, so rows of eftflow's and MadMiner's training sets
drawn from the same exported store can be matched by (x, y) and their r_xz and t_xz compared:
same σ(θ) (partition, closest-benchmark subset), same sign and normalisation conventions.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from eftflow.sampling import SampleAugmenter, benchmark, morphing_point
from eftflow.sampling.output import read_training_set

from .conftest import write_toy_store

madminer = pytest.importorskip("madminer")

THETA0 = [0.3, -0.2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, toy):
    from eftflow.store.madminer_io import export_madminer

    d = tmp_path_factory.mktemp("mm_aug")
    toy.save(d / "setup.h5")
    store = write_toy_store(d / "ev.zarr", toy, 4000, 8, sampling=("sm", "t1_pos"), chunk=2500)
    export_madminer(store, d / "setup.h5", d / "events.h5")
    logging.getLogger("madminer").setLevel(logging.WARNING)
    return d, store


def _rows(x, y):
    return {(round(float(a), 9), int(b)): i for i, (a, b) in enumerate(zip(x[:, 0], y))}


@pytest.mark.parametrize("closest", [True, False])
def test_ratio_r_xz_and_t_xz0_equal_madminer(exported, closest, caplog):
    from madminer.sampling import SampleAugmenter as MMAugmenter
    from madminer.sampling import benchmark as mm_benchmark
    from madminer.sampling import morphing_point as mm_point

    d, store = exported
    caplog.set_level(logging.ERROR)
    SampleAugmenter(store, d / "setup.h5", dtype="float64").sample_train_ratio(
        morphing_point(THETA0), benchmark("sm"), 4000, d / "r.zarr", seed=3,
        sample_only_from_closest_benchmark=closest,
    )  # fmt: skip
    ours = read_training_set(d / "r.zarr")
    x, th0, th1, y, r, t0, _ = MMAugmenter(str(d / "events.h5")).sample_train_ratio(
        mm_point(THETA0), mm_benchmark("sm"), 4000, folder=None, filename=None,
        test_split=0.2, validation_split=0.2, sample_only_from_closest_benchmark=closest,
    )  # fmt: skip
    theirs = _rows(x, y[:, 0])
    mine = _rows(ours["x"], ours["y"][:, 0])
    common = sorted(set(mine) & set(theirs))
    assert len(common) > 50
    i = np.array([mine[k] for k in common])
    j = np.array([theirs[k] for k in common])
    np.testing.assert_allclose(ours["theta0"][i], th0[j], rtol=1e-6)
    np.testing.assert_allclose(ours["theta1"][i], th1[j], atol=1e-6)
    np.testing.assert_allclose(ours["r_xz"][i, 0], r[j, 0], rtol=1e-6)
    np.testing.assert_allclose(ours["t_xz0"][i], t0[j], rtol=1e-6, atol=1e-6)


def test_local_t_xz_equals_madminer(exported, caplog):
    from madminer.sampling import SampleAugmenter as MMAugmenter
    from madminer.sampling import morphing_point as mm_point

    d, store = exported
    caplog.set_level(logging.ERROR)
    SampleAugmenter(store, d / "setup.h5", dtype="float64").sample_train_local(
        morphing_point(THETA0), 3000, d / "l.zarr", seed=4
    )
    ours = read_training_set(d / "l.zarr")
    x, theta, t = MMAugmenter(str(d / "events.h5")).sample_train_local(
        mm_point(THETA0), 3000, folder=None, filename=None, test_split=0.2, validation_split=0.2
    )[:3]
    theirs = {round(float(v), 9): k for k, v in enumerate(x[:, 0])}
    mine = {round(float(v), 9): k for k, v in enumerate(ours["x"][:, 0])}
    common = sorted(set(mine) & set(theirs))
    assert len(common) > 50
    i = np.array([mine[k] for k in common])
    j = np.array([theirs[k] for k in common])
    np.testing.assert_allclose(ours["theta"][i], theta[j], rtol=1e-6)
    np.testing.assert_allclose(ours["t_xz"][i], t[j], rtol=1e-6, atol=1e-6)
