"""Learned systematics: the ν-parameterised network vs up/down interpolation (tiny networks)."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.errors import InputError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from eftflow.inference.model.systematics import (
        train_nuisance_network,
        train_updown_networks,
    )
    from eftflow.inference.model.toy import SystToy
    from eftflow.ml.train import TrainingConfig

    toy = SystToy(luminosity=1000.0, kappa=0.2, delta=np.log(1.1))
    rng = np.random.default_rng(1)
    cfg = TrainingConfig(
        method="alice",
        hidden=(16, 16),
        n_epochs=4,
        batch_size=256,
        learning_rate=3e-3,
        validation_split=0.2,
        early_stopping=False,
    )
    out = tmp_path_factory.mktemp("nets")
    a, secs_a = train_nuisance_network(toy, 8000, cfg, out, rng, n_members=2)
    b, secs_b = train_updown_networks(toy, 8000, cfg, out, rng)
    return toy, a, b, secs_a, secs_b


def _exact(toy):
    import torch

    def f(x, p):
        z = torch.zeros_like(p[:, 0])
        return toy.log_ratio(x, torch.stack([p[:, 0], z], 1), torch.stack([p[:, 1], z], 1))

    def nominal(x, p):
        z = torch.zeros_like(p[:, 0])
        return toy.log_ratio(x[:, 0], torch.stack([p[:, 0], z], 1), torch.stack([z, z], 1))

    return f, nominal


def test_model_nu_network_vs_updown_comparison_runs(trained, make_model):
    from eftflow.inference.model import ExactLogRatio, UpDownLogRatio
    from eftflow.inference.model.inference import asimov_closure
    from eftflow.inference.model.systematics import nuisance_accuracy

    toy, prov_a, variations, secs_a, secs_b = trained
    exact, nominal = _exact(toy)
    prov_b = UpDownLogRatio(ExactLogRatio(nominal, ["theta_1"]), variations)
    x = np.random.default_rng(2).normal(size=2000)
    acc_a = nuisance_accuracy(prov_a, exact, x, [0.0, 0.2], [-1.5, -0.5, 0.5, 1.5])
    acc_b = nuisance_accuracy(prov_b, exact, x, [0.0, 0.2], [-1.5, -0.5, 0.5, 1.5])
    # both learn the ν dependence (exact Δ log r has RMS ≈ κ|ν| ≈ 0.1–0.3 over these points)
    assert acc_a["rms_mean"] < 0.2 and acc_b["rms_mean"] < 0.1
    assert secs_a > 0 and secs_b > 0
    # both are usable in the model and close on Asimov data (pool normalisation)
    for prov in (prov_a, prov_b):
        model, _ = make_model(kappa=0.2, provider=prov, n_pool=1500)
        assert asimov_closure(model, {"theta_1": 0.1}, eps=1e-4)["passed"]


def test_model_ensemble_spread_term(trained, make_model):
    from eftflow.inference.model.batchfit import minimize_batched
    from eftflow.inference.model.ensemble_stat import SpreadTerm

    _, prov_a, _, _, _ = trained
    plain, _ = make_model(kappa=0.2, provider=prov_a, n_pool=1500)
    spread, _ = make_model(kappa=0.2, provider=prov_a, n_pool=1500, spread=SpreadTerm("gamma_sr"))
    assert "gamma_sr" in spread.names
    data = plain.asimov({"theta_1": 0.1})
    import torch

    aux = torch.cat([data.aux, torch.zeros((1, 1), dtype=data.aux.dtype)], 1)
    from eftflow.inference.model import ModelData

    e0 = minimize_batched(plain, data, plain.init).errors()[0, 0]
    e1 = minimize_batched(spread, ModelData(data.regions, aux), spread.init).errors()[0, 0]
    assert e1 >= e0 * (1 - 1e-6)  # profiling the spread never narrows the interval


def test_model_estimator_without_declared_nuisances(trained):
    from eftflow.inference.model import EnsembleLogRatio

    _, prov_a, _, _, _ = trained
    with pytest.raises(InputError, match="trained without"):
        EnsembleLogRatio(prov_a.members, ["theta_1", "nu_shape", "nu_other"])


def test_model_estimator_refuses_events_with_other_observables(trained):
    import torch

    _, prov_a, _, _, _ = trained
    d = prov_a.n_observables
    assert d == 1
    with pytest.raises(InputError, match=f"takes {d} observables, the events have 3"):
        prov_a.bind(np.zeros((5, 3)), dtype=torch.float64, device="cpu")
    with pytest.raises(InputError, match="the events have 2"):
        prov_a.bind_rows(np.zeros((2, 5, 2)), dtype=torch.float64, device="cpu")
