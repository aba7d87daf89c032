"""Batched ensembles: K members trained together in one process (eftflow.ml.batched)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.ml.batched import train_ensemble_batched
from eftflow.ml.ensemble import Ensemble, member_seed
from eftflow.ml.train import TrainingConfig, train_estimator

TRUTH_PER_EVENT = np.diag([4.0, 8.0])  # I(0) per event of the toy


def test_batched_members_load_and_predict(toy_sets, tmp_path):
    cfg = TrainingConfig(method="alices", hidden=(16, 16), n_epochs=2, batch_size=256, seed=7)
    res = train_ensemble_batched(toy_sets["ratio"], cfg, 3, tmp_path / "ens")
    assert [r["member"] for r in res] == [0, 1, 2]
    index = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert index["batched"] is True and index["members"] == ["member_0", "member_1", "member_2"]
    ens = Ensemble.load(tmp_path / "ens")
    assert len(ens) == 3 and ens.method == "alices"
    assert ens.seeds == [member_seed(7, k) for k in range(3)]
    x = np.linspace(-2, 2, 30)[:, None]
    theta0 = np.array([[0.1, 0.0], [0.0, -0.2], [0.3, 0.3], [0.0, 0.0]])
    mean, var = ens.predict_log_r(x, theta0)
    assert mean.shape == (4, 30) and var.shape == (4, 30)
    assert np.all(np.isfinite(mean)) and np.any(var > 0)  # members differ


def test_batched_sally_fisher_closure(toy_sets, tmp_path):
    """Same configuration and tolerance as the one-at-a-time closure test (test_ml_closure)."""
    cfg = TrainingConfig(method="sally", hidden=(32, 32), n_epochs=8, batch_size=128,
                         learning_rate=5e-3, final_learning_rate=5e-4, validation_split=0.2)  # fmt: skip
    train_ensemble_batched(toy_sets["local"], cfg, 2, tmp_path / "ens")
    ens = Ensemble.load(tmp_path / "ens")
    x = np.random.default_rng(5).normal(size=(20000, 1))
    sigma, lum = 2.0, 50.0
    w = np.full(len(x), sigma / len(x))
    truth = lum * sigma * TRUTH_PER_EVENT
    for mode in ("score", "information", "modified_score"):
        info, cov = ens.fisher_information(x, w, lum, mode=mode)
        assert info.shape == (2, 2) and cov.shape == (4, 4)
        np.testing.assert_allclose(np.diag(info), np.diag(truth), rtol=0.10)
        assert abs(info[0, 1]) < 0.1 * np.sqrt(truth[0, 0] * truth[1, 1])


@pytest.mark.parametrize(("method", "kind", "k_members"), [("sally", "local", 1),
                                                          ("alices", "ratio", 2)])  # fmt: skip
def test_batched_members_equal_one_at_a_time(method, kind, k_members, toy_sets, tmp_path):
    """Each batched member sees its own data order, the same as train_estimator with its seed.

    buffer_rows = 4000 splits the 15000 training rows into several buffers, so the members'
    batches differ in size at buffer ends (the padded path) and still match exactly.
    """
    cfg = TrainingConfig(method=method, hidden=(16, 16), n_epochs=2, batch_size=256,
                         buffer_rows=4000, early_stopping=True, patience=1)  # fmt: skip
    train_ensemble_batched(toy_sets[kind], cfg, k_members, tmp_path / "ens")
    ens = Ensemble.load(tmp_path / "ens")
    for k in range(k_members):
        ref = train_estimator(toy_sets[kind], replace(cfg, seed=member_seed(cfg.seed, k)), None)
        got, want = ens.members[k].state_dict(), ref["model"].state_dict()
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), atol=1e-5,
                                       err_msg=name)  # fmt: skip
        hist = ens.specs[k]["summary"]["history"]
        np.testing.assert_allclose(hist["validation"], ref["history"]["validation"], rtol=1e-4)


@pytest.mark.parametrize("kw", [{"method": "nde"},
                                {"method": "alices", "morphing_aware": True,
                                 "components": [[0, 0], [1, 0], [0, 1]]}])  # fmt: skip
def test_batched_unsupported_method(kw, toy_sets, tmp_path):
    cfg = TrainingConfig(n_epochs=1, **kw)
    with pytest.raises(InputError, match="batched mode") as err:
        train_ensemble_batched(toy_sets["ratio"], cfg, 2, tmp_path / "ens")
    assert err.value.field == "ensemble.batched"
    assert not (tmp_path / "ens").exists()


def test_cli_train_ensemble_batched(toy_sets, tmp_path, capsys):
    from eftflow.cli import main

    conf = json.dumps({"training": {"method": "sally", "hidden": [8], "n_epochs": 1},
                       "ensemble": {"n_members": 2, "batched": True}})  # fmt: skip
    assert main(["train-ensemble", str(toy_sets["local"]), "--config", conf,
                 "-o", str(tmp_path / "ens")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "ens" / "ensemble.json").read_text())["batched"] is True
    assert len(Ensemble.load(tmp_path / "ens")) == 2
    # --batched with a method that cannot be batched: clear error, nothing written
    conf = json.dumps({"training": {"method": "nde", "n_epochs": 1}, "ensemble": {"n_members": 2}})
    rc = main(["train-ensemble", str(toy_sets["density"]), "--config", conf, "--batched",
               "-o", str(tmp_path / "bad")])  # fmt: skip
    assert rc != 0 and "ensemble.batched" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # ensemble.batched must be a boolean
    conf = json.dumps({"training": {"method": "sally"}, "ensemble": {"batched": "yes"}})
    rc = main(["train-ensemble", str(toy_sets["local"]), "--config", conf,
               "-o", str(tmp_path / "bad2")])  # fmt: skip
    assert rc != 0 and "ensemble.batched" in capsys.readouterr().err
    assert not (tmp_path / "bad2").exists()
