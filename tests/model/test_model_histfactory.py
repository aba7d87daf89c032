"""The binned part equals pyhf; pyhf JSON round trip; bad workspaces give clear errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from eftflow.errors import EftflowError, InputError
from eftflow.inference.model import from_pyhf

WS = {
    "channels": [
        {
            "name": "sr",
            "samples": [
                {
                    "name": "sig",
                    "data": [5.0, 10.0, 3.0],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {"name": "lumi", "type": "lumi", "data": None},
                        {
                            "name": "shape",
                            "type": "histosys",
                            "data": {"hi_data": [6, 11, 2.5], "lo_data": [4.5, 8, 3.2]},
                        },
                        {"name": "stat_sr", "type": "staterror", "data": [0.5, 1.0, 0.4]},
                    ],
                },
                {
                    "name": "bkg",
                    "data": [50.0, 60.0, 20.0],
                    "modifiers": [
                        {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.85}},
                        {"name": "lumi", "type": "lumi", "data": None},
                        {
                            "name": "shape",
                            "type": "histosys",
                            "data": {"hi_data": [52, 61, 19], "lo_data": [49, 58, 21]},
                        },
                        {"name": "stat_sr", "type": "staterror", "data": [3.0, 2.0, 1.5]},
                        {"name": "bkg_unc", "type": "shapesys", "data": [5.0, 6.0, 2.0]},
                    ],
                },
            ],
        },
        {
            "name": "cr",
            "samples": [
                {
                    "name": "bkg",
                    "data": [100.0, 80.0],
                    "modifiers": [
                        {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.85}},
                        {"name": "mu_cr", "type": "normfactor", "data": None},
                        {"name": "sf", "type": "shapefactor", "data": None},
                    ],
                }
            ],
        },
    ],
    "observations": [{"name": "sr", "data": [60, 68, 25]}, {"name": "cr", "data": [105, 77]}],
    "measurements": [
        {
            "name": "m",
            "config": {
                "poi": "mu",
                "parameters": [
                    {
                        "name": "lumi",
                        "auxdata": [1.0],
                        "sigmas": [0.02],
                        "bounds": [[0.5, 1.5]],
                        "inits": [1.0],
                    }
                ],
            },
        }
    ],
    "version": "1.0.0",
}


@pytest.mark.parametrize("codes", [("code1", "code0"), ("code4", "code4p")])
def test_model_logpdf_equals_pyhf(codes):
    hf = from_pyhf(WS, normsys_code=codes[0], histosys_code=codes[1])
    m = hf.pyhf_model()
    rng = np.random.default_rng(3)
    data = list(hf.bins_for_pyhf(hf.observed, m)) + list(m.config.auxdata)
    widths = np.array(
        [
            0.2 if p.kind in ("gamma", "normfactor", "free", "poi") or p.name == "lumi" else 1.5
            for p in hf.parameters
        ]
    )
    for k in range(6):  # includes |alpha| > 1 (exponential / linear extrapolation)
        p = hf.init + (rng.normal(0, 1, len(hf.init)) * widths if k else 0.0)
        ours = float(hf.logpdf(p)[0])
        theirs = float(m.logpdf(hf.pars_for_pyhf(p, m), data)[0])
        assert ours == pytest.approx(theirs, rel=1e-8, abs=0)
        np.testing.assert_allclose(
            hf.bins_for_pyhf(hf.expected(p[None])[0], m),
            m.expected_actualdata(hf.pars_for_pyhf(p, m)),
            rtol=1e-12,
        )


def test_model_default_codes_are_pyhfs():
    """from_pyhf(ws) without codes has the likelihood of pyhf's own default model."""
    import warnings

    import pyhf

    hf = from_pyhf(WS)
    with warnings.catch_warnings():  # pyhf's schema validation uses a deprecated resolver
        warnings.filterwarnings("ignore", "jsonschema.RefResolver", DeprecationWarning)
        m = pyhf.Workspace(WS).model()  # pyhf's default modifier_settings
    data = list(hf.bins_for_pyhf(hf.observed, m)) + list(m.config.auxdata)
    p = hf.init.copy()
    p[hf.parameter_names.index("bkg_norm")] = 0.4  # |alpha| < 1: code1 and code4 differ
    p[hf.parameter_names.index("shape")] = -0.6  # code0 and code4p differ
    ours = float(hf.logpdf(p)[0])
    assert ours == pytest.approx(float(m.logpdf(hf.pars_for_pyhf(p, m), data)[0]), rel=1e-10)
    old = from_pyhf(WS, normsys_code="code1", histosys_code="code0")
    assert abs(float(old.logpdf(p)[0]) - ours) > 1e-6  # the codes matter at this point


def test_model_numpy_and_torch_agree():
    import torch

    hf = from_pyhf(WS, normsys_code="code4", histosys_code="code4p")
    p = np.stack([hf.init, hf.init + 0.3])
    np.testing.assert_allclose(hf.expected(p), hf.expected(torch.tensor(p)).numpy(), rtol=1e-13)


def test_model_pyhf_roundtrip(tmp_path):
    import json

    hf = from_pyhf(WS)
    ws = hf.to_pyhf(observed=hf.observed + 1)
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(ws))
    hf2 = from_pyhf(str(path))
    np.testing.assert_allclose(hf2.observed, hf.observed + 1)
    assert hf2.parameter_names == hf.parameter_names
    np.testing.assert_allclose(hf2.expected(hf2.init[None]), hf.expected(hf.init[None]))


def _bad(mutate):
    ws = copy.deepcopy(WS)
    mutate(ws)
    return ws


def test_model_unknown_modifier_type():
    ws = _bad(
        lambda w: w["channels"][0]["samples"][0]["modifiers"].append(
            {"name": "x", "type": "magic", "data": None}
        )
    )
    with pytest.raises(InputError, match="unknown modifier type 'magic'") as err:
        from_pyhf(ws)
    assert err.value.field == "channels[0].samples[0].modifiers[4].type"


def test_model_mismatched_bins():
    ws = _bad(lambda w: w["channels"][0]["samples"][1].__setitem__("data", [1.0, 2.0]))
    with pytest.raises(InputError, match="has 2 bins") as err:
        from_pyhf(ws)
    assert err.value.field == "channels[0].samples[1].data"


def test_model_bad_histosys_and_observation(tmp_path):
    ws = _bad(
        lambda w: w["channels"][0]["samples"][0]["modifiers"][2]["data"].__setitem__(
            "hi_data", [1.0]
        )
    )
    with pytest.raises(InputError, match="histosys data must have 3 bins"):
        from_pyhf(ws)
    ws = _bad(lambda w: w["observations"].pop())
    with pytest.raises(InputError, match="no observation for channel 'cr'"):
        from_pyhf(ws)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="malformed JSON") as err:
        from_pyhf(str(bad))
    assert err.value.file == str(bad)


def test_model_parameters_of_wrong_dimension():
    hf = from_pyhf(WS)
    with pytest.raises(EftflowError, match=r"shape \(batch, 13\)"):
        hf.expected(np.zeros((1, 3)))
