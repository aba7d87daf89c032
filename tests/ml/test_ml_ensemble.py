"""Ensembles on a local Dask cluster (2 workers), the CLI, maps and nuisance handling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.ml.ensemble import Ensemble, train_ensemble
from eftflow.ml.train import TrainingConfig


def test_ensemble_on_two_dask_workers(toy_sets, tmp_path, caplog):
    import logging

    from eftflow.cluster import dask_client

    cfg = TrainingConfig(method="sally", hidden=(16,), n_epochs=2, batch_size=256)
    with dask_client({"mode": "local"}, threads=2, memory_mb=4000) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        with caplog.at_level(logging.INFO, logger="eftflow.ml.ensemble"):
            res = train_ensemble(toy_sets["local"], cfg, 2, tmp_path / "ens", client=client)
    assert [r["member"] for r in res] == [0, 1]
    assert [r["path"] for r in res] == ["member_0", "member_1"]
    # the members' losses reach this process's log, not only the workers'
    lines = [r.getMessage() for r in caplog.records if r.name == "eftflow.ml.ensemble"]
    for k in (0, 1):
        assert any(m.startswith(f"member {k} epoch 2/2: train loss") for m in lines)
        assert any(m.startswith(f"member {k} finished: 2 epochs run") for m in lines)
    ens = Ensemble.load(tmp_path / "ens")
    assert len(set(ens.seeds)) == 2
    x = np.linspace(-2, 2, 40)[:, None]
    mean, cov = ens.predict_score(x)
    assert mean.shape == (40, 2) and cov.shape == (40, 2, 2)
    assert np.any(cov[:, 0, 0] > 0)  # members differ
    members = [m for m in ens.members]
    from eftflow.ml.evaluate import predict_score

    np.testing.assert_allclose(mean, np.mean([predict_score(m, x) for m in members], axis=0),
                               rtol=1e-6)  # fmt: skip
    w = ens.vote_expectation_weights(np.random.default_rng(0).normal(size=(2000, 1)))
    assert w.shape == (2,) and w.sum() == pytest.approx(1.0)


def test_handle_nuisance():
    from eftflow.ml.evaluate import handle_nuisance

    info = np.array([[4.0, 0.0, 1.0], [0.0, 8.0, 0.0], [1.0, 0.0, 1.0]])
    assert handle_nuisance(info, 2, "keep").shape == (3, 3)
    np.testing.assert_allclose(handle_nuisance(info, 2, "project"), np.diag([4.0, 8.0]))
    np.testing.assert_allclose(handle_nuisance(info, 2, "profile"), np.diag([3.5, 8.0]))
    np.testing.assert_allclose(handle_nuisance(info, 2, "profile", constrain=False),
                               np.diag([3.0, 8.0]))  # fmt: skip


def test_likelihood_ratio_map_and_sallino(toy, tmp_path):
    from eftflow.ml.maps import (
        likelihood_ratio_map,
        load_map,
        map_loglik,
        sallino_log_likelihood,
        save_map,
    )  # fmt: skip

    rng = np.random.default_rng(1)
    x = rng.normal(size=4000)
    axis = np.linspace(-0.3, 0.3, 7)
    grid = np.array([[a, b] for a in axis for b in axis])
    lr = np.stack([toy["log_p"](x, g) - toy["log_p"](x, np.zeros(2)) for g in grid])
    res = likelihood_ratio_map(grid, lr, luminosity=100.0, xsec=toy["norm"](grid),
                               xsec_reference=1.0, shape=(7, 7))  # fmt: skip
    assert res["best_theta"].tolist() == [0.0, 0.0]
    # expected -2ΔlnL ≈ θᵀ I θ with I = L σ diag(4, 8) (Asimov, quadratic approximation)
    k = np.argmin(np.abs(grid - [0.1, 0.0]).sum(1))
    assert res["t"][k] == pytest.approx(100 * 4 * 0.01, rel=0.15)
    save_map(tmp_path / "m", res)
    back = load_map(tmp_path / "m.npz")
    assert json.loads((tmp_path / "m.json").read_text())["shape"] == [7, 7]
    assert map_loglik(back)(np.array([0.0, 0.0])) == pytest.approx(res["log_likelihood"].max())
    # SALLINO: histogram of the exact score, reference events reweighted to every θ
    t = toy["score"](x, np.zeros(2))
    wt = np.exp(lr)
    ll = sallino_log_likelihood(t, t, wt, bins=10)
    assert grid[np.argmax(ll)].tolist() == [0.0, 0.0]
    ll1 = sallino_log_likelihood(t[:, :1], t[:, :1], wt, bins=20)
    assert ll1.shape == (len(grid),)
