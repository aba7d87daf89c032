"""Held-out events for validation (validation_events): disjoint events, rows last, used by the
trainers."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.errors import ConfigError
from eftflow.sampling import SampleAugmenter, benchmark, random_morphing_points
from eftflow.sampling.output import read_training_set
from eftflow.sampling.unweight import held_out_events


def _events(x: np.ndarray) -> set:
    """Events by their observables (x is continuous: one value per event)."""
    return set(np.round(x[:, 0], 12).tolist())


def test_held_out_events_are_a_stable_fraction():
    idx = np.arange(200_000)
    h = held_out_events(idx, 7, 0.25)
    assert abs(h.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / idx.size)
    assert np.array_equal(h[::3], held_out_events(idx[::3], 7, 0.25))  # per event, not per call
    assert not np.array_equal(h, held_out_events(idx, 8, 0.25))  # the seed chooses
    assert held_out_events(idx, 7, 0.0).sum() == 0


@pytest.mark.parametrize("memory_mb", [256.0, 0.0])  # in memory, and through part files
def test_ratio_set_with_held_out_events(small_store, toy, tmp_path, memory_mb):
    sa = SampleAugmenter(small_store, toy, dtype="float64", memory_mb=memory_mb)
    prior = random_morphing_points(10, [("flat", -0.5, 0.5), ("flat", -0.5, 0.5)])
    out = tmp_path / "r.zarr"
    sa.sample_train_ratio(prior, benchmark("sm"), 20_000, out, seed=4, validation_events=0.25)
    d = read_training_set(out)
    assert "_held" not in d and d["x"].shape[0] == 20_000
    start, stop = d["attrs"]["held_out"]["rows"]
    assert stop == 20_000 and d["attrs"]["held_out"]["fraction"] == 0.25
    assert abs(start / stop - 0.75) < 0.03  # about a quarter of the draws
    train, val = _events(d["x"][:start]), _events(d["x"][start:])
    assert train and val and not train & val  # no event on both sides
    # both parts are shuffled on their own: labels mixed in each
    assert 0.4 < d["y"][:start, 0].mean() < 0.6 and 0.4 < d["y"][start:, 0].mean() < 0.6


def test_trainer_validates_on_the_held_out_rows(small_store, toy, tmp_path):
    from eftflow.ml.data import TrainingSet
    from eftflow.ml.train import TrainingConfig, train_estimator

    sa = SampleAugmenter(small_store, toy)
    out = tmp_path / "l.zarr"
    sa.sample_train_local(benchmark("sm"), 4000, out, seed=2, validation_events=0.3)
    start = read_training_set(out)["attrs"]["held_out"]["rows"][0]
    ts = TrainingSet(out)
    assert ts.split(0.25) == ((0, start), (start, 4000))
    assert ts.split(0.0) == ((0, 4000), (4000, 4000))  # no validation asked: every row trains
    res = train_estimator(out, TrainingConfig(method="sally", hidden=(8,), n_epochs=1), None)
    assert res["n_validation"] == 4000 - start and res["n_train"] == start


def test_bad_validation_events(small_store, toy, tmp_path):
    from eftflow.sampling.config import run_augmentation, stage_sections

    sa = SampleAugmenter(small_store, toy)
    with pytest.raises(ConfigError, match=r"fraction in \[0, 1\), got 1.5"):
        sa.sample_train_local(benchmark("sm"), 100, tmp_path / "a.zarr", validation_events=1.5)
    cfg = stage_sections(
        {"augmentation": {"samples": [
            {"name": "t", "method": "test", "n_samples": 100, "validation_events": 0.2}]}}
    )  # fmt: skip
    with pytest.raises(ConfigError, match="not method test") as err:
        run_augmentation(small_store, toy, cfg, tmp_path / "out")
    assert err.value.field == "augmentation.samples[0].validation_events"
    assert not (tmp_path / "out").exists() and not (tmp_path / "a.zarr").exists()
