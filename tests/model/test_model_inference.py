"""Impacts against the analytic answer, CLs against pyhf, profiles/MINOS/contours run."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.inference.model import BinnedRegion, StatModel, from_pyhf
from eftflow.inference.model.inference import ModelFitter, cls_upper_limit

DELTA = 0.1
WS = {
    "channels": [
        {
            "name": "sr",
            "samples": [
                {
                    "name": "s",
                    "data": [20.0, 10.0],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {
                            "name": "s_norm",
                            "type": "normsys",
                            "data": {"hi": float(np.exp(DELTA)), "lo": float(np.exp(-DELTA))},
                        },
                    ],
                },
                {
                    "name": "b",
                    "data": [30.0, 40.0],
                    "modifiers": [
                        {"name": "b_norm", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}}
                    ],
                },
            ],
        }
    ],
    "observations": [{"name": "sr", "data": [50.0, 50.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}


def test_model_impacts_of_a_normalisation_nuisance_are_analytic():
    """μ s e^{δν}: fixing ν at ±1 (pre-fit) moves μ̂ to μ̂ e^{∓δ} exactly."""
    model = StatModel([BinnedRegion("sr", from_pyhf(WS))], poi="mu", device="cpu")
    data = model.asimov({"mu": 1.5})
    fit = ModelFitter(model, data, tol=1e-6)
    best = fit.run().optimize.parameters["mu"]
    rows = {r["name"]: r for r in fit.impacts("mu")}
    s = rows["s_norm"]
    assert s["prefit_up"] == pytest.approx(best * (np.exp(-DELTA) - 1), rel=1e-3)
    assert s["prefit_down"] == pytest.approx(best * (np.exp(DELTA) - 1), rel=1e-3)
    # post-fit: the data do not constrain s_norm (degenerate with μ): error 1, same impacts
    assert s["postfit_up"] == pytest.approx(s["prefit_up"], rel=1e-3)
    # Minuit (unbatched) refits agree with the batched ones
    slow = {r["name"]: r for r in fit.impacts("mu", batched=False)}
    assert slow["s_norm"]["prefit_up"] == pytest.approx(s["prefit_up"], rel=1e-3)
    assert list(rows)[0] == "s_norm"  # ranked first


def test_model_unbinned_normalisation_impact(make_model):
    """Unbinned region, rate × code-4 factor of nu_norm (1.1 at +1): with θ fixed the rate is
    fitted by nu_norm alone; the impact on a free normalisation is analytic."""
    from eftflow.inference.model import ModelParameter, Process, UnbinnedRegion

    base, toy = make_model()
    proc = base.regions[0].processes[0]
    proc2 = Process(
        "sig",
        proc.log_ratio,
        rate=proc.rate,
        rate_parameters=proc.rate_parameters,
        normfactors=["mu"],
        normsys={"nu_norm": (1.1, 1 / 1.1)},
    )
    reg = UnbinnedRegion("sr", base.regions[0].pool, [proc2])
    pars = [
        ModelParameter("theta_1", 0.0, -0.5, 0.5, fixed=True),
        ModelParameter("nu_shape", 0.0, -5, 5, kind="nuisance", constraint="normal"),
    ]
    model = StatModel([reg], pars, poi="mu", device="cpu")
    fit = ModelFitter(model, model.asimov({"mu": 1.0}), tol=1e-6)
    fit.run()
    row = next(r for r in fit.impacts("mu") if r["name"] == "nu_norm")
    assert row["prefit_up"] == pytest.approx(1 / 1.1 - 1, rel=1e-3)
    assert row["prefit_down"] == pytest.approx(1.1 - 1, rel=1e-3)


def test_model_cls_matches_pyhf():
    import warnings

    import pyhf

    hf = from_pyhf(WS)
    model = StatModel([BinnedRegion("sr", hf)], poi="mu", device="cpu")
    res = cls_upper_limit(model, model.observed(), "mu", cl=0.95, scan=np.linspace(0.1, 3, 30))
    pm = hf.pyhf_model()
    data = list(hf.bins_for_pyhf(hf.observed, pm)) + pm.config.auxdata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = float(pyhf.infer.hypotest(res["observed"], data, pm, test_stat="qtilde"))
    assert cls == pytest.approx(0.05, abs=2e-3)
    assert res["expected"][0] < res["expected"][2] < res["expected"][4]


def test_model_profile_minos_contour_run(make_model):
    model, _ = make_model(n_pool=1500)
    fit = ModelFitter(model, model.asimov({"theta_1": 0.1}))
    fit.run()
    prof = fit.profile("theta_1", nvalues=5)
    assert int(np.argmin(prof.stat)) == 2  # symmetric scan around the best fit
    ci = fit.minos("theta_1")
    assert ci.errn > 0 and ci.errp > 0
    cont = fit.contour("theta_1", "nu_shape", numpoints=6)
    assert len(cont.x) >= 6 and cont.x.min() < 0.1 < cont.x.max()


def _smooth_model(make_model):
    """Toy region + a code-4 control region (smooth everywhere, so Hessians are well defined)."""
    from .conftest import CR_WORKSPACE

    base, _ = make_model(n_pool=1500)
    cr = BinnedRegion("cr", from_pyhf(CR_WORKSPACE, normsys_code="code4"))
    pars = [p for p in base.parameters if p.name in ("theta_1", "nu_shape")]
    return StatModel(base.regions + [cr], pars, poi="theta_1", device="cpu")


def test_model_gradient_matches_central_differences(make_model):
    model = _smooth_model(make_model)
    data = model.asimov({"theta_1": 0.1})
    f, g = model.objective(data), model.gradient(data)
    x = model.vector({"theta_1": 0.05, "nu_shape": 0.3, "nu_norm": -0.2, "mu_bkg": 1.1})
    h = 1e-4
    fd = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(len(x))])
    np.testing.assert_allclose(g(x), fd, rtol=1e-6)


def test_model_fitter_with_and_without_gradient_agree(make_model):
    import torch

    model = _smooth_model(make_model)
    data = model.asimov({"theta_1": 0.1})
    fits = {g: ModelFitter(model, data, tol=1e-6, grad=g) for g in (False, True)}
    # Minuit's own Hesse (second differences of the NLL) is precise to ~1e-4 at strategy 2
    res = {False: fits[False].fit.run(strategy=2), True: fits[True].run()}
    e0, e1 = res[False].covariance.errors, res[True].covariance.errors
    for name in model.names:
        v0, v1 = res[False].optimize.parameters[name], res[True].optimize.parameters[name]
        assert abs(v1 - v0) <= 1e-4 * e0[name]
        assert e1[name] == pytest.approx(e0[name], rel=1e-4)
    # with the gradient, the Hessian (differences of the autograd gradient) is the exact one
    x = model.tensor(res[True].optimize.values)
    h = torch.autograd.functional.hessian(lambda p: model.nll(p[None], data)[0], x).numpy()
    exact = np.sqrt(np.diag(np.linalg.inv(h)))
    np.testing.assert_allclose([e1[n] for n in model.names], exact, rtol=1e-6)
    assert res[True].optimize.ngrad > 0
    assert res[True].optimize.nfev < res[False].optimize.nfev / 2
    c0, c1 = fits[False].minos("theta_1"), fits[True].minos("theta_1")
    assert c1.success
    assert (c1.errn, c1.errp) == pytest.approx((c0.errn, c0.errp), rel=1e-4)
