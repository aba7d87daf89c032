"""Asimov closure of the combined model and the closure gate."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.errors import EftflowError, InputError
from eftflow.inference.model.inference import ClosureError, ModelFitter, asimov_closure

TRUTH = {"theta_1": 0.1, "nu_shape": 0.0}


def test_model_asimov_closure_batched_and_minuit(make_model):
    model, _ = make_model(binned=True)
    rep = asimov_closure(model, TRUTH, eps=1e-6)
    assert rep["passed"]
    fit = ModelFitter(model, model.asimov(TRUTH), tol=1e-5)
    res = fit.run().optimize.parameters
    assert res["theta_1"] == pytest.approx(0.1, abs=1e-3 * 0.03)
    for n in ("nu_shape", "nu_norm"):
        assert abs(res[n]) < 1e-3
    assert res["mu_bkg"] == pytest.approx(1.0, abs=1e-3)
    # pulls on Asimov data are zero
    assert all(abs(p["pull"]) < 1e-3 for p in fit.pulls())


def test_model_closure_gate_fails_for_mistrained_estimator(make_model):
    import torch

    from eftflow.inference.model import ExactLogRatio

    good, toy = make_model()

    def biased(x, p):  # a "mis-trained" estimator: extra x-dependence, odd in x
        z = torch.zeros_like(p[:, 0])
        th = torch.stack([p[:, 0], z], 1)
        nu = torch.stack([p[:, 1], z], 1)
        return toy.log_ratio(x[:, 0], th, nu) + 0.05 * x[:, 0][None]

    bad, _ = make_model(provider=ExactLogRatio(biased, ["theta_1", "nu_shape"]))
    # Asimov data from the true model, fitted with the mis-trained one
    data = good.asimov(TRUTH)
    from eftflow.inference.model.batchfit import minimize_batched

    fr = minimize_batched(bad, data, bad.init)
    assert abs(fr.values[0, 0] - 0.1) > 0.01
    # the gate: a model whose own Asimov fit does not close raises with the numbers
    with pytest.raises(ClosureError, match="Asimov non-closure: theta_1 injected 0.1"):
        _gate_against(good, bad)


def _gate_against(truth_model, fit_model):
    """Closure of ``fit_model`` on Asimov data of ``truth_model`` (what the stage runs)."""
    import types

    proxy = types.SimpleNamespace(
        **{
            k: getattr(fit_model, k)
            for k in (
                "names",
                "init",
                "lower",
                "upper",
                "fixed",
                "constraints",
                "tensor",
                "nll",
                "index",
                "check_in_bounds",
                "parameters",
            )
        }
    )
    proxy.vector = fit_model.vector
    proxy.asimov = truth_model.asimov
    return asimov_closure(proxy, TRUTH, eps=0.1)


def test_model_bad_inputs(make_model):
    from eftflow.inference.model import ModelParameter, StatModel

    model, _ = make_model()
    with pytest.raises(InputError, match="no parameter of interest"):
        StatModel(
            model.regions,
            [ModelParameter("theta_1", 0.0, -1, 1), ModelParameter("nu_shape", 0.0, -5, 5)],
            device="cpu",
        )
    with pytest.raises(InputError, match="undeclared parameter"):
        StatModel(
            model.regions, [ModelParameter("theta_1", 0.0, -1, 1)], poi="theta_1", device="cpu"
        )
    with pytest.raises(InputError, match="outside its bounds") as err:
        model.toys({"theta_1": 2.0}, 5, np.random.default_rng(0))
    assert err.value.field == "toys.theta_1"
    with pytest.raises(EftflowError, match=r"shape \(batch, 3\)"):
        model.nll(model.tensor(np.zeros((2, 5))), model.asimov())
    with pytest.raises(InputError, match="expected 3 parameter values"):
        model.vector([0.0, 1.0])
