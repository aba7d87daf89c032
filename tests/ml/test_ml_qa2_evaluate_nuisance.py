"""``evaluate-estimator`` with score estimators that also predict ∂/∂ν (``nuisance_score``).

Toy with a 10 % normalisation systematic: the exact kinematic score of ν is 0, so all the
information on ν, and on θ through the rate, is in the rate term. Profiling ν must therefore be
done on detector + rate together (the rate's information on θ is mostly removed), and it must
reproduce the profiled truth-level information; ``keep`` must not crash.
"""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.generate.toy import toy_score
from eftflow.ml import ensemble as ens_mod
from eftflow.ml.ensemble import Ensemble

N_EVENTS = 20_000
THETA = [0.3, 0.0]


@pytest.fixture(scope="module")
def setup_and_store(tmp_path_factory):
    from eftflow.generate.toy import sample_toy, toy_cross_section, toy_dsigma, toy_setup
    from eftflow.store.events import EventStoreWriter

    d = tmp_path_factory.mktemp("nuis")
    s = toy_setup()
    s.add_systematics("norm", "lumi", norm_variation=1.1)
    s.save(d / "setup.h5")
    rng = np.random.default_rng(7)
    names = [b.name for b in s.physics_benchmarks()]
    nu_names = [b.name for b in s.benchmarks.values() if b.is_nuisance]
    bv = s.benchmark_array()
    x = sample_toy(N_EVENTS, bv[0], rng)
    p = toy_dsigma(x, bv[0]) / toy_cross_section(bv[0])
    w = np.stack([toy_dsigma(x, t, sigma0=10.0) for t in bv], axis=1) / p[:, None] / N_EVENTS
    attrs = {"partitions": {"train": [0, 0], "validation": [0, 0], "test": [0, N_EVENTS]},
             "signal_events": [N_EVENTS] + [0] * (len(names) - 1)}  # fmt: skip
    with EventStoreWriter(d / "ev.zarr", ["x", "x2"], names, chunk_size=5000,
                          nuisance_names=nu_names, attrs=attrs) as wr:  # fmt: skip
        wr.append(observables=np.stack([x, x * x], 1), weights=w,
                  sampling_benchmark=np.zeros(N_EVENTS, np.int64),
                  nuisance_weights=1.1 * w[:, :1])  # fmt: skip
    return d / "setup.h5", d / "ev.zarr"


@pytest.fixture
def exact_score_with_nu(monkeypatch):
    spec = {"method": "sally", "family": "score", "model": {"kwargs": {"n_observables": 2}},
            "training": {"seed": 0}, "training_set_attrs": {"observable_names": ["x", "x2"]}}  # fmt: skip
    ens = Ensemble([0], [spec])

    def score(m, x):
        t = toy_score(x[:, 0], np.asarray(THETA))
        return np.concatenate([t, np.zeros((len(x), 1))], axis=1)  # ∂ν: 0 for a norm systematic

    monkeypatch.setattr(ens_mod, "predict_score", score)
    monkeypatch.setattr(Ensemble, "load", classmethod(lambda cls, path, **kw: ens))


def _config(nuisance):
    from eftflow.ml.driver import SCHEMA_FRAGMENT
    from eftflow.sampling.config import stage_sections

    ev = {"luminosity": 10.0, "theta": THETA, "nuisance": nuisance}
    return stage_sections({"evaluation": ev}, SCHEMA_FRAGMENT)


def test_profiled_detector_plus_rate_equals_profiled_truth(
    setup_and_store, exact_score_with_nu, tmp_path
):
    from eftflow.inference.fisher import FisherInformation, profile_information
    from eftflow.ml.driver import run_evaluate

    setup, store = setup_and_store
    out = run_evaluate("model", store, setup, _config("profile"), tmp_path / "e.json")
    total = np.asarray(out["detector_plus_rate"]["information"])
    fi = FisherInformation(store, setup, partition="test")
    truth = fi.truth_information(THETA, 10.0).information
    rate = fi.rate_information(THETA, 10.0).information
    assert truth.shape == (3, 3) and rate[0, 2] > 1.0  # the rate carries θ-ν correlation
    expected = profile_information(truth + np.diag([0.0, 0.0, 1.0]), [0, 1])
    np.testing.assert_allclose(total, expected, rtol=0.01)
    # profiling the detector part alone and adding the θ-only rate gives the unprofiled θθ block
    # of the truth (the ν kinematic score is 0): too much by about R_θν² / (R_νν + 1)
    lost = rate[0, 2] ** 2 / (rate[2, 2] + 1.0)
    assert lost > 0.03 * truth[0, 0] and total[0, 0] < truth[0, 0] - 0.5 * lost
    np.testing.assert_allclose(out["ratio_to_truth"], [1.0, 1.0], rtol=0.03)


def test_keep_returns_theta_and_nu_blocks(setup_and_store, exact_score_with_nu, tmp_path):
    from eftflow.inference.fisher import FisherInformation
    from eftflow.ml.driver import run_evaluate

    setup, store = setup_and_store
    out = run_evaluate("model", store, setup, _config("keep"), tmp_path / "e.json")
    total = np.asarray(out["detector_plus_rate"]["information"])
    names = out["detector_plus_rate"]["parameter_names"]
    assert len(names) == 3 and names[:2] == ["theta_1", "theta_2"]
    truth = FisherInformation(store, setup, partition="test").truth_information(THETA, 10.0)
    np.testing.assert_allclose(total, truth.information, rtol=0.03, atol=0.05)
