"""Artifacts round trip and bad inputs (each a clear error naming file and field, no output left)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.ml.artifacts import load_model
from eftflow.ml.evaluate import predict_log_r, predict_score
from eftflow.ml.train import TrainingConfig, train_estimator

TINY = {"hidden": (8,), "n_epochs": 1, "batch_size": 256}


@pytest.fixture(scope="module")
def saved(toy_sets, tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    sally = train_estimator(toy_sets["local"], TrainingConfig(method="sally", **TINY), d / "sally")
    alices = train_estimator(toy_sets["ratio"], TrainingConfig(method="alices", **TINY), d / "al")
    return {"sally": (d / "sally", sally["model"]), "alices": (d / "al", alices["model"])}


def test_round_trip(saved):
    x = np.linspace(-2, 2, 50)[:, None]
    path, model = saved["sally"]
    loaded, spec = load_model(path.with_suffix(".pt"), method="sally")
    np.testing.assert_allclose(predict_score(loaded, x), predict_score(model, x), rtol=1e-6)
    assert spec["format"] == "eftflow-estimator" and spec["summary"]["history"]["train"]
    path, model = saved["alices"]
    loaded, _ = load_model(path, family="ratio")
    grid = [[0.1, -0.2], [0.3, 0.0]]
    np.testing.assert_allclose(predict_log_r(loaded, x, grid), predict_log_r(model, x, grid),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_model_of_another_method(saved):
    path, _ = saved["alices"]
    with pytest.raises(InputError, match="trained with 'alices', not 'sally'") as err:
        load_model(path, method="sally")
    assert err.value.field == "method" and str(path.with_suffix(".json")) in str(err.value)
    with pytest.raises(InputError, match="ratio estimator"):
        load_model(path, family="score")


def test_newer_format(saved, tmp_path):
    path, _ = saved["sally"]
    spec = json.loads(path.with_suffix(".json").read_text())
    spec["format_version"] = 99
    (tmp_path / "m.json").write_text(json.dumps(spec))
    (tmp_path / "m.pt").write_bytes(path.with_suffix(".pt").read_bytes())
    with pytest.raises(InputError, match="newer") as err:
        load_model(tmp_path / "m")
    assert err.value.field == "format_version"


def _hand_made_local(path, n=2000):
    """A local-score set built by hand: arrays only, no ``method`` attribute."""
    import zarr

    g = zarr.open_group(str(path), mode="w")
    x = np.random.default_rng(0).normal(size=(n, 1))
    g.create_array("x", shape=x.shape, chunks=(1000, 1), dtype="f4")[:] = x
    g.create_array("theta", shape=(n, 2), chunks=(1000, 2), dtype="f4")[:] = 0.0
    g.create_array("t_xz", shape=(n, 2), chunks=(1000, 2), dtype="f4")[:] = 2 * x
    return path


def test_missing_columns(tmp_path):
    local = _hand_made_local(tmp_path / "local.zarr")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match="missing: y, r_xz") as err:
        train_estimator(local, TrainingConfig(method="rascal", **TINY), out / "m")
    assert err.value.field == "y" and "local.zarr" in str(err.value)
    with pytest.raises(InputError, match="theta1"):
        train_estimator(local, TrainingConfig(method="carl", doubly=True, **TINY), None)
    assert not list(out.iterdir())


def test_nan_in_training_set(tmp_path):
    import zarr

    p = tmp_path / "bad.zarr"
    g = zarr.open_group(str(p), mode="w")
    x = np.random.default_rng(0).normal(size=(3000, 1))
    t = np.zeros((3000, 2))
    t[2500, 1] = np.nan
    g.create_array("x", shape=x.shape, chunks=(1000, 1), dtype="f4")[:] = x
    g.create_array("t_xz", shape=t.shape, chunks=(1000, 2), dtype="f4")[:] = t
    with pytest.raises(InputError, match="non-finite value .* row 2500") as err:
        train_estimator(
            p, TrainingConfig(method="sally", **TINY, validation_split=0.0), tmp_path / "m"
        )
    assert err.value.field == "t_xz" and "bad.zarr" in str(err.value)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["bad.zarr"]


def test_theta_of_wrong_dimension(saved):
    _, model = saved["alices"]
    with pytest.raises(InputError, match="theta0 has 3 components, the model expects 2"):
        predict_log_r(model, np.zeros((3, 1)), [[0.0, 0.1, 0.2]])
    with pytest.raises(InputError, match="components"):
        TrainingConfig(method="alices", morphing_aware=True)


def test_morphing_components_of_wrong_dimension(toy_sets):
    cfg = TrainingConfig(method="alices", morphing_aware=True, components=[[0], [1], [2]], **TINY)
    with pytest.raises(InputError, match="components have 1 parameters") as err:
        train_estimator(toy_sets["ratio"], cfg, None)
    assert err.value.field == "training.components"


def test_unknown_method_and_option():
    from eftflow.ml.train import training_config_from_dict

    with pytest.raises(InputError, match="unknown method 'foo'"):
        TrainingConfig(method="foo")
    with pytest.raises(InputError, match="unknown training option 'n_epoch'"):
        training_config_from_dict({"method": "sally", "n_epoch": 3})
