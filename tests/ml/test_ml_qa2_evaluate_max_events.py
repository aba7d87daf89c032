"""``evaluate-estimator`` with ``evaluation.max_events``: a truncated sample still estimates σ.

Members are replaced by the toy's exact score / log-likelihood ratio, so the detector-level
information equals the truth-level one up to the Monte-Carlo error of the events used, and the
expected −2Δln L map is θᵀ I θ near the SM (toy: I = L σ₀ diag(4, 8) at θ = 0).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.generate.toy import toy_log_density, toy_score
from eftflow.ml import ensemble as ens_mod
from eftflow.ml.ensemble import Ensemble

N_EVENTS = 20_000
LUMI = 10.0
SIGMA0 = 10.0


@pytest.fixture(scope="module")
def setup_and_store(tmp_path_factory):
    from eftflow.generate.toy import sample_toy, toy_cross_section, toy_dsigma, toy_setup
    from eftflow.store.events import EventStoreWriter

    d = tmp_path_factory.mktemp("maxev")
    s = toy_setup()
    s.save(d / "setup.h5")
    rng = np.random.default_rng(5)
    names = [b.name for b in s.physics_benchmarks()]
    bv = s.benchmark_array()
    x = sample_toy(N_EVENTS, bv[0], rng)
    p = toy_dsigma(x, bv[0]) / toy_cross_section(bv[0])
    w = np.stack([toy_dsigma(x, t, sigma0=SIGMA0) for t in bv], axis=1) / p[:, None] / N_EVENTS
    attrs = {"partitions": {"train": [0, 0], "validation": [0, 0], "test": [0, N_EVENTS]},
             "signal_events": [N_EVENTS] + [0] * (len(names) - 1)}  # fmt: skip
    with EventStoreWriter(d / "ev.zarr", ["x", "x2"], names, chunk_size=5000, attrs=attrs) as wr:
        wr.append(observables=np.stack([x, x * x], 1), weights=w,
                  sampling_benchmark=np.zeros(N_EVENTS, np.int64))  # fmt: skip
    return d / "setup.h5", d / "ev.zarr"


def _exact_ensemble(monkeypatch, family):
    spec = {"method": "sally" if family == "score" else "rascal", "family": family,
            "model": {"kwargs": {"n_observables": 2}}, "training": {"seed": 0},
            "training_set_attrs": {"observable_names": ["x", "x2"]}}  # fmt: skip
    ens = Ensemble([0], [spec])
    monkeypatch.setattr(ens_mod, "predict_score", lambda m, x: toy_score(x[:, 0], np.zeros(2)))

    def log_r(m, x, theta0, theta1=None):
        ref = toy_log_density(x[:, 0], np.zeros(2))
        return np.stack([toy_log_density(x[:, 0], t) - ref for t in np.atleast_2d(theta0)])

    monkeypatch.setattr(ens_mod, "predict_log_r", log_r)
    monkeypatch.setattr(Ensemble, "load", classmethod(lambda cls, path, **kw: ens))
    return ens


def _asimov_t(theta):
    """Exact expected −2Δln L of the extended likelihood, Asimov data at the SM (quadrature)."""
    from eftflow.generate.toy import toy_cross_section

    x = np.linspace(-9.0, 9.0, 18_001)
    p0 = np.exp(toy_log_density(x, np.zeros(2)))
    n = LUMI * SIGMA0
    out = []
    for th in theta:
        shape = np.sum(p0 * (toy_log_density(x, th) - np.log(p0))) * (x[1] - x[0])
        sig = SIGMA0 * toy_cross_section(th)
        out.append(-2.0 * (n * shape + n * np.log(sig / SIGMA0) - LUMI * (sig - SIGMA0)))
    return np.array(out)


def _config(max_events, grid=None):
    from eftflow.ml.driver import SCHEMA_FRAGMENT
    from eftflow.sampling.config import stage_sections

    ev = {"luminosity": LUMI, "max_events": max_events, "grid": grid}
    return stage_sections({"evaluation": ev}, SCHEMA_FRAGMENT)


@pytest.mark.parametrize("max_events", [None, 5000, 12_000])
def test_score_information_does_not_shrink_with_max_events(
    setup_and_store, monkeypatch, tmp_path, max_events
):
    from eftflow.ml.driver import run_evaluate

    setup, store = setup_and_store
    _exact_ensemble(monkeypatch, "score")
    out = run_evaluate("model", store, setup, _config(max_events), tmp_path / "e.json")
    truth = np.diag(out["truth"]["information"])
    det = np.diag(np.asarray(out["detector_plus_rate"]["information"]))
    np.testing.assert_allclose(truth, LUMI * SIGMA0 * np.array([4.0, 8.0]), rtol=0.05)
    # before the fix: det / truth = max_events / N_EVENTS
    np.testing.assert_allclose(det, truth, rtol=0.06 if max_events else 1e-3)


@pytest.mark.parametrize("max_events", [None, 5000])
def test_ratio_map_does_not_shrink_with_max_events(
    setup_and_store, monkeypatch, tmp_path, max_events
):
    from eftflow.ml.driver import run_evaluate

    setup, store = setup_and_store
    _exact_ensemble(monkeypatch, "ratio")
    grid = [[-0.1, 0.1, 5], [-0.1, 0.1, 5]]
    out = run_evaluate("model", store, setup, _config(max_events, grid), tmp_path / "e.json")
    m = json.loads((tmp_path / "e_map.json").read_text())
    theta = np.asarray(m["theta"])
    t = np.asarray(m["t"])
    # t(θ) + t(−θ): the Monte-Carlo noise of the term linear in θ cancels (symmetric grid)
    assert np.allclose(theta[::-1], -theta)
    np.testing.assert_allclose(
        t + t[::-1], _asimov_t(theta) + _asimov_t(-theta), rtol=0.1, atol=1e-9
    )
    assert out["map"]["best_theta"] == pytest.approx([0.0, 0.0], abs=0.051)
