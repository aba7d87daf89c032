"""Pulls and coverage from toys (profile likelihood), Neyman-construction coverage."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.inference.model.inference import neyman_construction, toy_study


def test_model_pulls_and_profile_likelihood_coverage(make_model, rng):
    model, _ = make_model(n_pool=2000)
    res = toy_study(model, {"theta_1": 0.1}, 240, rng, batch=240)
    assert res["converged"] > 0.99
    for name, p in res["pulls"].items():
        assert abs(p["mean"]) < 0.2, (name, p)  # 0 within ~3 standard errors (0.065)
        assert 0.8 < p["width"] < 1.2, (name, p)
    for lev, c in res["coverage"]["theta_1"].items():
        assert abs(c["coverage"] - float(lev)) < 3 * c["binomial_error"] + 0.01, (lev, c)


def test_model_neyman_intervals_cover(make_model):
    """Binned counting model with a normalisation nuisance: the Neyman interval at 68 % CL
    contains the truth in 68 % of pseudo-experiments (within binomial error)."""
    from eftflow.inference.model import BinnedRegion, StatModel, from_pyhf

    ws = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "s",
                        "data": [20.0, 10.0],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "b",
                        "data": [30.0, 40.0],
                        "modifiers": [
                            {"name": "bn", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "sr", "data": [50.0, 50.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }
    model = StatModel([BinnedRegion("sr", from_pyhf(ws))], poi="mu", device="cpu")
    rng = np.random.default_rng(7)
    grid = np.linspace(0.0, 2.5, 11)
    n_exp = 40
    pseudo = model.toys({"mu": 1.0}, n_exp, rng)
    hits = 0
    for k in range(n_exp):
        res = neyman_construction(
            model, pseudo.select(slice(k, k + 1)), grid, 50, rng, cl=0.68, batch=2000
        )
        lo, hi = res.interval
        hits += lo <= 1.0 <= hi
        assert res.toys_per_second > 0
    err = np.sqrt(0.68 * 0.32 / n_exp)
    assert abs(hits / n_exp - 0.68) < 3 * err
    # the toys' critical values approach the asymptotic chi2 quantile
    assert np.median(res.t_critical) == pytest.approx(res.asymptotic_critical, abs=0.35)
