"""Shared builders for the statistical-model tests: the analytic toy with known systematics."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.inference.model.toy import CR_WORKSPACE  # noqa: F401  (re-exported for the tests)


def toy_model(
    *, n_pool=3000, luminosity=1000.0, kappa=0.05, binned=False, provider=None, seed=0, spread=None
):
    """Unbinned toy region (POI theta_1, nuisances nu_shape and nu_norm) [+ binned CR]."""
    import torch

    from eftflow.inference.model import (
        BinnedRegion,
        ExactLogRatio,
        ModelParameter,
        Process,
        StatModel,
        UnbinnedRegion,
        from_pyhf,
    )
    from eftflow.inference.model.toy import SystToy

    toy = SystToy(luminosity=luminosity, kappa=kappa, delta=np.log(1.1))
    pool = np.random.default_rng(seed).normal(size=n_pool)

    def th_nu(p):
        z = torch.zeros_like(p[:, 0])
        return torch.stack([p[:, 0], z], 1), torch.stack([p[:, 1], z], 1)

    def lr(x, p):
        th, nu = th_nu(p)
        return toy.log_ratio(x[:, 0], th, nu)

    def rate(p):
        th, nu = th_nu(p)
        return toy.rate(th, nu)

    prov = provider or ExactLogRatio(lr, ["theta_1", "nu_shape"])
    proc = Process(
        "sig",
        prov,
        rate=rate,
        rate_parameters=["theta_1", "nu_shape"],
        normsys={"nu_norm": (1.1, 1 / 1.1)},
    )
    regions = [UnbinnedRegion("sr", pool, [proc], spread=spread)]
    if binned:
        regions.append(BinnedRegion("cr", from_pyhf(CR_WORKSPACE)))
    pars = [
        ModelParameter("theta_1", 0.0, -0.5, 0.5, kind="poi"),
        ModelParameter("nu_shape", 0.0, -5.0, 5.0, kind="nuisance", constraint="normal"),
    ]
    return StatModel(regions, pars, poi="theta_1", device="cpu"), toy


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def make_model():
    """The :func:`toy_model` builder."""
    return toy_model
