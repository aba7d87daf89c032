"""CLs limits against pyhf: multi-bin with signal and background systematics, large excesses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.errors import InputError
from eftflow.inference.asimov import BinnedPoissonModel, Systematic, counting_model
from eftflow.inference.limits import hypotest, upper_limit

pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated")


def _pyhf(s, b, ds=None, db=None):
    pyhf = pytest.importorskip("pyhf")
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-12))
    sig = {"name": "signal", "data": list(s), "modifiers": []}
    sig["modifiers"].append({"name": "mu", "type": "normfactor", "data": None})
    bkg = {"name": "background", "data": list(b), "modifiers": []}
    for sample, name, d in ((sig, "sig_norm", ds), (bkg, "bkg_norm", db)):
        if d is not None:
            mod = {"name": name, "type": "normsys", "data": {"hi": 1 + d, "lo": 1 / (1 + d)}}
            sample["modifiers"].append(mod)
    spec = {"channels": [{"name": "c", "samples": [sig, bkg]}]}
    model = pyhf.Model(spec, modifier_settings={"normsys": {"interpcode": "code1"}}, poi_name="mu")
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, 100.0)
    return pyhf, model, bounds


def _ours(s, b, ds=None, db=None):
    s, b = np.asarray(s, float), np.asarray(b, float)
    systs = []
    if ds is not None:
        systs.append(Systematic("sig_norm", {"signal": ds}))
    if db is not None:
        systs.append(Systematic("bkg_norm", {"background": db}))
    return BinnedPoissonModel(
        lambda th: np.stack([th[0] * s, b]),
        n_bins=s.size,
        samples=["signal", "background"],
        systematics=systs,
    )


def test_limits_qa3_multibin_signal_and_background_systematics_equal_pyhf():
    s, b, n = [3.0, 5.0, 2.0], [10.0, 6.0, 1.0], [14, 3, 0]
    pyhf, pm, bounds = _pyhf(s, b, 0.1, 0.15)
    data = n + pm.config.auxdata
    m = _ours(s, b, 0.1, 0.15)
    d = m.make_data(n)
    for mu in (0.5, 1.0):
        obs, exp = pyhf.infer.hypotest(
            mu, data, pm, test_stat="qtilde", return_expected_set=True, par_bounds=bounds
        )
        r = hypotest(m, d, mu, test_stat="qtilde", poi_bounds=(-30.0, 30.0))
        assert r.cls == pytest.approx(float(obs), abs=1e-6)
        np.testing.assert_allclose(r.cls_expected, np.ravel(exp), atol=1e-6)
    ul = upper_limit(m, d)
    # at our limits, pyhf's CLs (observed; expected +2 sigma band) is alpha
    assert float(pyhf.infer.hypotest(ul.observed, data, pm, par_bounds=bounds)) == pytest.approx(
        0.05, abs=1e-6
    )
    _, exp = pyhf.infer.hypotest(
        ul.expected[4], data, pm, par_bounds=bounds, return_expected_set=True
    )
    assert float(np.ravel(exp)[4]) == pytest.approx(0.05, abs=1e-6)


def test_limits_qa3_large_excess_still_gets_its_limit(tmp_path):
    """n = 100 on b = 10, s = 5: mu_hat = 18 lies beyond the automatic range (+-14.5); before,
    the limit failed with 'widen poi_bounds', which the CLI cannot do."""
    pyhf, pm, bounds = _pyhf([5.0], [10.0])
    m = counting_model(5.0, 10.0)
    ul = upper_limit(m, m.make_data([100]))
    assert ul.observed > 18.0
    cls = pyhf.infer.hypotest(ul.observed, [100], pm, par_bounds=bounds)
    assert float(cls) == pytest.approx(0.05, abs=1e-6)
    # explicit bounds stay the user's: too narrow is an error naming them
    with pytest.raises(InputError, match="widen poi_bounds"):
        upper_limit(m, m.make_data([100]), poi_bounds=(-10.0, 10.0))
    spec = tmp_path / "lim.json"
    spec.write_text(
        json.dumps(
            {"kind": "counting", "counting": {"signal": 5, "background": 10, "observed": 100}}
        )
    )
    out = tmp_path / "out.json"
    assert main(["compute-limits", str(spec), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["observed"] == pytest.approx(ul.observed, rel=1e-9)
