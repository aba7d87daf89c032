"""Fisher information: closure on the analytic toy, binned/per-bin consistency, covariance vs scatter."""

import numpy as np
import pytest

from eftflow.errors import ConfigError, InputError
from eftflow.generate.toy import toy_fisher_information
from eftflow.inference.fisher import FisherInformation, full_information_from_scores

from .conftest import SIGMA0, nuisance_setup, write_toy_store

LUMI = 3.0


def test_truth_information_closure_at_1e6(big_store, toy):
    fi = FisherInformation(big_store, toy, n_workers=2)
    for theta in ([0.0, 0.0], [0.3, -0.2]):
        res = fi.truth_information(theta, luminosity=LUMI)
        exact = toy_fisher_information(theta, luminosity=LUMI, sigma0=SIGMA0)
        pulls = (res.information - exact) / res.errors
        assert np.all(np.abs(pulls) < 4), pulls
        assert res.kind == "truth" and res.parameter_names == ["theta_1", "theta_2"]
        assert res.extra["n_events"] == 1_000_000


def test_rate_information_closure(big_store, toy):
    fi = FisherInformation(big_store, toy)
    theta = [0.5, 0.25]
    res = fi.rate_information(theta, luminosity=LUMI)
    exact = toy_fisher_information(theta, luminosity=LUMI, sigma0=SIGMA0, kind="rate")
    assert np.all(np.abs(res.information - exact) < 4 * res.errors + 1e-12)
    assert np.allclose(fi.rate_information([0.0, 0.0], LUMI).information, 0.0, atol=1e-2)


def test_histograms_between_rate_and_truth(small_store, toy):
    fi = FisherInformation(small_store, toy)
    theta = [0.2, 0.1]
    truth = fi.truth_information(theta, LUMI).information
    rate = fi.rate_information(theta, LUMI).information
    h1 = fi.histo_information(theta, LUMI, "x", 20)  # quantile bins
    h2 = fi.histo_information(theta, LUMI, "x", 10, (-3, 3))  # fixed + overflow
    h3 = fi.histo_information(theta, LUMI, "x", [-1.0, 0.0, 1.0])
    hh = fi.histo_information_2d(theta, LUMI, "x", 5, "abs(x) * 2", [1.0, 2.0, 3.0])
    assert h1.extra["n_bins"] == 20 and h2.extra["n_bins"] == 12 and h3.extra["n_bins"] == 4
    assert hh.extra["n_bins"] == 5 * 4
    for h in (h1, h2, h3, hh):
        # information ordering: rate ≤ histogram ≤ truth (positive semi-definite differences)
        assert np.linalg.eigvalsh(truth - h.information).min() > -1e-9
        assert np.linalg.eigvalsh(h.information - rate).min() > -1e-9
    # quantile bins have (nearly) equal cross sections at θ
    xs = np.array(h1.extra["xsec_bins_pb"])
    assert xs.std() / xs.mean() < 0.05


def test_histogram_of_information_sums_to_truth(small_store, toy):
    fi = FisherInformation(small_store, toy)
    theta = [0.1, 0.0]
    bounds, sigma, rate_bins, full_bins = fi.histogram_of_information(
        theta, "x", 8, (-2, 2), luminosity=LUMI
    )
    assert bounds.size == 9 and sigma.shape == (10,) and full_bins.shape == (10, 2, 2)
    np.testing.assert_allclose(
        full_bins.sum(axis=0), fi.truth_information(theta, LUMI).information, rtol=1e-10
    )
    np.testing.assert_allclose(
        rate_bins.sum(axis=0),
        fi.histo_information(theta, LUMI, "x", 8, (-2, 2)).information,
        rtol=1e-10,
    )
    b, s, ds = fi.histogram_of_sigma_dsigma(theta, "x", 8, (-2, 2))
    assert s.sum() == pytest.approx(fi.rate_information(theta, LUMI).extra["xsec_pb"])
    assert ds.shape == (2, 10)


def test_truth_covariance_matches_scatter_of_independent_samples(tmp_path, toy):
    """Independent toy samples with a Poisson number of events (the model behind σ ± sqrt(Σw²)):
    the scatter of the estimates equals the reported covariance, not 9× it (MadMiner 0.9.6)."""
    rng = np.random.default_rng(1)
    theta = [0.3, -0.2]
    n_mean, n_rep = 1000, 60
    est, cov = [], []
    for i in range(n_rep):
        n = int(rng.poisson(n_mean))
        path = write_toy_store(
            tmp_path / f"s{i}.zarr", toy, n, 100 + i, partitions=None, chunk=4096
        )
        # weights scaled to σ0/n_mean·(...): the count fluctuates, the per-event weight scale does not
        fi = FisherInformation(path, toy)
        r = fi.truth_information(theta, LUMI)
        est.append(r.information * n / n_mean)
        cov.append(r.covariance * (n / n_mean) ** 2)
    est = np.array(est).reshape(n_rep, 4)
    empirical = np.cov(est, rowvar=False)
    reported = np.mean(cov, axis=0).reshape(4, 4)
    ratio = np.diag(empirical) / np.diag(reported)
    # sampling error of a variance from 60 draws is ~18 %; MadMiner's 9x would fail by far
    assert np.all((ratio > 0.5) & (ratio < 1.7)), ratio


def test_truth_covariance_matches_poisson_bootstrap(small_store, toy):
    """Poisson bootstrap (each event weight × Poisson(1)) reproduces Σ_n I_n ⊗ I_n exactly in expectation."""
    from eftflow.sampling.weights import WeightModel, load_chunk

    model = WeightModel(small_store, toy)
    theta = np.array([[0.2, 0.3]])
    m, dm = model.theta_matrix(theta), model.dtheta_matrix(theta)
    ch = load_chunk(model.ctx, 0, model.store.n_events, None)
    w = ch.weights(m)[:, 0]
    g = ch.gradients(m, dm, np.zeros((1, 0)), w[:, None])[:, 0, :]
    per = LUMI * g[:, :, None] * g[:, None, :] / w[:, None, None]
    rng = np.random.default_rng(2)
    boots = np.array(
        [np.tensordot(rng.poisson(1.0, w.size), per, axes=1).ravel() for _ in range(400)]
    )
    reported = (
        FisherInformation(small_store, toy)
        .truth_information(theta[0], LUMI)
        .covariance.reshape(4, 4)
    )
    ratio = np.diag(np.cov(boots, rowvar=False)) / np.diag(reported)
    assert np.all((ratio > 0.75) & (ratio < 1.3)), ratio


def test_nuisance_blocks_and_constraint(tmp_path):
    setup = nuisance_setup("norm")
    path = write_toy_store(tmp_path / "n.zarr", setup, 20_000, 3, nuisance="norm")
    fi = FisherInformation(path, setup)
    res = fi.truth_information([0.0, 0.0], LUMI)
    assert res.parameter_names == ["theta_1", "theta_2", "lumi_nuisance_param_0"]
    sigma = res.extra["xsec_pb"]
    assert res.information[2, 2] == pytest.approx(LUMI * sigma * np.log(1.1) ** 2, rel=1e-10)
    assert res.covariance.shape == (3, 3, 3, 3)
    assert fi.nuisance_constraint_information().tolist() == np.diag([0, 0, 1.0]).tolist()
    assert fi.truth_information(
        [0.0, 0.0], LUMI, include_nuisance_parameters=False
    ).information.shape == (2, 2)


def test_detector_hook_with_exact_scores(big_store, toy):
    """Feeding the exact score as 'estimated' score reproduces the truth information (SALLY hook)."""
    from eftflow.generate.toy import toy_score
    from eftflow.sampling.weights import WeightModel, load_chunk

    model = WeightModel(big_store, toy, partition="test")
    ch = load_chunk(model.ctx, model.start, model.stop, None, with_x=True)
    w = ch.weights(model.theta_matrix([[0.0, 0.0]]))[:, 0]
    res = full_information_from_scores(toy_score(ch.x[:, 0], np.zeros(2)), LUMI, 0.0, weights=w)
    exact = toy_fisher_information([0, 0], luminosity=LUMI, sigma0=SIGMA0)
    assert np.all(np.abs(res.information - exact) < 4 * res.errors + 1e-9)
    un = full_information_from_scores(toy_score(ch.x[:, 0], np.zeros(2)), LUMI, SIGMA0)
    assert np.all(np.abs(un.information - exact) < 4 * un.errors + 1e-9)


def test_bad_inputs(small_store, toy):
    fi = FisherInformation(small_store, toy)
    with pytest.raises(InputError, match="2 components"):
        fi.truth_information([0.0], LUMI)
    with pytest.raises(InputError, match="luminosity"):
        fi.truth_information([0.0, 0.0], -1.0)
    with pytest.raises(ConfigError, match="strictly increasing"):
        fi.histo_information([0, 0], LUMI, "x", [1.0, 0.0])
    with pytest.raises(ConfigError, match="observable1"):
        fi.histo_information([0, 0], LUMI, "__import__('os')", 5)
