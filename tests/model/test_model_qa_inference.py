"""Spec-built binned models against pyhf: default interpolation codes, a CLs limit below the
first scan point, MINOS for a POI at its bound."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml

from .test_model_cli import spec_dir  # noqa: F401  (the tiny trained ensemble)
from .test_model_qa_spec import BASE, WS


def _histosys_ws():
    ws = copy.deepcopy(WS)
    ws["channels"][0]["samples"][1]["modifiers"].append(
        {"name": "b_shape", "type": "histosys", "data": {"hi_data": [33, 38], "lo_data": [28, 43]}}
    )
    return ws


def _pyhf_default(pyhf, ws):
    """pyhf's model of ``ws`` with pyhf's own default settings, and its observed data."""
    import warnings

    with warnings.catch_warnings():  # pyhf's schema validation uses a deprecated resolver
        warnings.filterwarnings("ignore", "jsonschema.RefResolver", DeprecationWarning)
        w = pyhf.Workspace(ws)
        model = w.model()
        return model, w.data(model)


def _spec_model(tmp_path, ws, spec=None):
    from eftflow.inference.model.spec import build_model, load_spec

    (tmp_path / "ws.json").write_text(json.dumps(ws))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec or BASE))
    return build_model(load_spec(tmp_path / "spec.yaml"))[0]


def test_model_qa_spec_default_codes_equal_pyhf(tmp_path):
    """A spec without normsys_code/histosys_code gives pyhf's likelihood (codes 4 and 4p)."""
    pyhf = pytest.importorskip("pyhf")
    pyhf.set_backend("numpy")
    ws = _histosys_ws()
    model = _spec_model(tmp_path, ws)
    pm, data = _pyhf_default(pyhf, ws)
    obs = model.observed()
    for point in (
        {"mu": 1.3, "s_norm": 1.7, "b_norm": -2.2, "b_shape": 1.4},
        {"mu": 0.4, "s_norm": -1.5, "b_norm": 0.6, "b_shape": -2.5},
    ):
        ours = model.objective(obs)(model.vector(point))
        ref = -float(pm.logpdf([point[n] for n in pm.config.par_order], data)[0])
        assert ours == pytest.approx(ref, abs=1e-8)


def test_model_qa_cls_limit_below_the_first_scan_point(tmp_path):
    """A limit below the first scan value is found by root-finding from μ = 0, not reported as
    the first scan value; pyhf's hypotest gives CLs = 0.05 there."""
    pyhf = pytest.importorskip("pyhf")
    from eftflow.inference.model.inference import cls_upper_limit

    ws = copy.deepcopy(WS)
    ws["channels"][0]["samples"][0]["data"] = [400.0, 300.0]  # strong signal: limit ≈ 0.05
    model = _spec_model(tmp_path, ws)
    data = model.asimov({"mu": 0.0})
    res = cls_upper_limit(model, data, "mu", scan=[0.25, 0.5, 1.0])
    assert 0 < res["observed"] < res["scan"][0]
    assert 0 < res["expected"][0] < res["expected"][2] < res["expected"][4] < res["scan"][0]
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(verbose=0, tolerance=1e-6))
    pm, _ = _pyhf_default(pyhf, ws)
    asimov = pm.expected_data(np.zeros(len(pm.config.par_order)))
    cls_obs, cls_exp = pyhf.infer.hypotest(
        res["observed"], asimov, pm, test_stat="qtilde", return_expected_set=True
    )
    assert float(cls_obs) == pytest.approx(0.05, abs=5e-4)
    cls_med = pyhf.infer.hypotest(
        res["expected"][2], asimov, pm, test_stat="qtilde", return_expected_set=True
    )[1][2]
    assert float(cls_med) == pytest.approx(0.05, abs=5e-4)


def test_model_qa_minos_of_a_poi_at_its_bound(tmp_path):
    """Asimov data at μ = 0 (the POI's lower bound): Minuit's MINOS fails on the upper side
    (its error ran to the upper bound 10); the interval comes from the profile likelihood."""
    from eftflow.inference.model.batchfit import minimize_batched
    from eftflow.inference.model.inference import ModelFitter

    spec = copy.deepcopy(BASE)
    spec["binned"][0].update(normsys_code="code4", histosys_code="code4p")
    model = _spec_model(tmp_path, WS, spec)
    data = model.asimov({"mu": 0.0})
    fitter = ModelFitter(model, data)
    fmin = fitter.run().optimize.fval
    r = fitter.minos("mu")
    assert r.success and r.at_lower_limit and not r.at_upper_limit
    assert 0.2 < r.errp < 0.4
    i = model.index("mu")
    fixed = np.zeros(len(model.names), bool)
    fixed[i] = True
    x = model.init.copy()
    x[i] = r.value + r.errp
    dnll = minimize_batched(model, data, x, fixed=fixed).nll[0] - fmin
    assert dnll == pytest.approx(0.5, abs=2e-3)


def test_model_qa_vector_is_a_copy(tmp_path):
    model = _spec_model(tmp_path, WS)
    start = model.init.copy()
    v = model.vector(start)
    v[0] = 123.0
    assert start[0] != 123.0


def test_model_qa_observed_unbinned_events_fit_analytic():
    """Observed events of an unbinned region: flat ratio, rate 10·μ, 37 events → μ̂ = 3.7 and
    the MINOS interval of the Poisson likelihood 10μ − 37 ln(10μ)."""
    from scipy.optimize import brentq

    from eftflow.inference.model import ExactLogRatio, Process, StatModel, UnbinnedRegion
    from eftflow.inference.model.inference import ModelFitter

    flat = ExactLogRatio(lambda x, p: (x[:, 0] * 0.0)[None].expand(p.shape[0], -1), [])
    region = UnbinnedRegion("ur", np.linspace(-1, 1, 50), [Process("s", flat, 10.0, (), ["mu"])])
    model = StatModel([region], poi="mu", device="cpu")
    data = model.observed(events={"ur": np.random.default_rng(2).uniform(-1, 1, 37)})
    fitter = ModelFitter(model, data)
    assert fitter.run().optimize.parameters["mu"] == pytest.approx(3.7, abs=1e-3)
    r = fitter.minos("mu")

    def g(mu):
        return 10 * mu - 37 * np.log(10 * mu) - (37 - 37 * np.log(37)) - 0.5

    assert r.value - r.errn == pytest.approx(brentq(g, 1.0, 3.7), abs=2e-3)
    assert r.value + r.errp == pytest.approx(brentq(g, 3.7, 9.0), abs=2e-3)


def test_model_qa_spec_observed_events_checked(spec_dir):  # noqa: F811
    """data: observed needs every unbinned region's events, with the pool's observables."""
    from eftflow.errors import EftflowError
    from eftflow.inference.model.spec import build_model, load_spec

    spec = yaml.safe_load((spec_dir / "spec.yaml").read_text())
    spec["data"] = "observed"
    path = spec_dir / "observed.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(EftflowError, match="observed events") as info:
        build_model(load_spec(path))
    assert (info.value.file, info.value.field) == (str(path), "unbinned[0].observed")
    np.save(spec_dir / "obs3.npy", np.zeros((20, 3)))
    spec["unbinned"][0]["observed"] = "obs3.npy"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(EftflowError, match="1 observables") as info:
        build_model(load_spec(path))
    assert info.value.file == str(spec_dir / "obs3.npy")
    np.save(spec_dir / "obs1.npy", np.random.default_rng(1).normal(size=(450, 1)))
    spec["unbinned"][0]["observed"] = "obs1.npy"
    path.write_text(yaml.safe_dump(spec))
    model, observed = build_model(load_spec(path))
    data = model.observed(events=observed)  # raised "needs UnbinnedData" before
    assert data.regions["sr"].weights.shape == (1, 450)
