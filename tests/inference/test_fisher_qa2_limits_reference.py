"""compute-limits from a Fisher JSON: the Gaussian limits are ±sqrt(chi2.ppf(cl, 1) / I_ii), and a
Fisher JSON made at another θ or luminosity than the limits' is not used silently."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from scipy.stats import chi2


def _limits_cfg(**kw):
    from eftflow.inference.pipeline_limits import SCHEMA_FRAGMENT
    from eftflow.sampling.config import stage_sections

    section = {"histogram": {"enabled": False}, "n_points": 41, **kw}
    return stage_sections({"limits": section}, SCHEMA_FRAGMENT)["limits"]


def _fisher_json(path, theta, lum=1000.0):
    info = [[400.0, 0.0], [0.0, 100.0]]
    path.write_text(json.dumps({"theta": theta, "luminosity": lum, "analyses": {"truth": {
        "kind": "truth", "parameter_names": ["theta_1", "theta_2"], "information": info}}}))  # fmt: skip
    return path


def test_fisher_intervals_are_two_sided_gaussian(tmp_path, caplog):
    from eftflow.generate.toy import toy_setup
    from eftflow.inference.pipeline_limits import compute_limits_from_pipeline

    caplog.set_level(logging.WARNING)
    f = _fisher_json(tmp_path / "f.json", [0.0, 0.0])
    cfg = _limits_cfg(grids=[{"parameters": ["theta_1"], "ranges": [[-0.5, 0.5]]}])
    out, _ = compute_limits_from_pipeline(cfg, setup=toy_setup(), fisher_file=f)
    lk = out["grids"][0]["likelihoods"]["fisher:truth"]
    for cl in ("0.68", "0.95"):
        half = np.sqrt(chi2.ppf(float(cl), 1) / 400.0)
        np.testing.assert_allclose(lk["intervals"][cl], [[-half, half]], rtol=1e-9)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("theta, lum, text", [([0.2, 0.0], 1000.0, "evaluated at θ"),
                                              ([0.0, 0.0], 3000.0, "different luminosities")])  # fmt: skip
def test_fisher_json_of_another_point_or_luminosity_warns(tmp_path, caplog, theta, lum, text):
    from eftflow.generate.toy import toy_setup
    from eftflow.inference.pipeline_limits import _check_fisher_point

    caplog.set_level(logging.WARNING)
    fisher = json.loads(_fisher_json(tmp_path / "f.json", theta, lum).read_text())
    hcfg = _limits_cfg(histogram={"enabled": True, "luminosity": 1000.0})["histogram"]
    _check_fisher_point(fisher, np.zeros(len(toy_setup().parameter_names)), hcfg, "f.json")
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(msgs) == 1 and text in msgs[0] and "f.json" in msgs[0]
