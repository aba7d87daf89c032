"""The toy generator against its closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from eftflow.errors import ConfigError
from eftflow.generate.base import GenerationJob
from eftflow.generate.toy import (
    ToyGenerator,
    sample_toy,
    toy_cross_section,
    toy_dsigma,
    toy_fisher_information,
    toy_score,
    toy_setup,
)
from eftflow.store.events import EventStore


@pytest.mark.parametrize("theta", [(0.0, 0.0), (0.7, -0.3), (-1.0, 1.0), (0.2, 0.9)])
def test_cross_section_closed_form(theta):
    num, _ = integrate.quad(lambda x: toy_dsigma(x, theta, sigma0=2.5), -np.inf, np.inf)
    assert num == pytest.approx(float(toy_cross_section(theta, sigma0=2.5)), rel=1e-10)


@pytest.mark.parametrize("theta", [(0.0, 0.0), (0.4, -0.6)])
def test_fisher_information_numeric(theta):
    """I_ij = L ∫ ∂_i dσ ∂_j dσ / dσ, with the derivatives by finite differences."""
    lumi, s0, eps = 3.0, 2.0, 1e-6
    th = np.array(theta)

    def grad(x):
        return np.array(
            [
                (toy_dsigma(x, th + eps * e, sigma0=s0) - toy_dsigma(x, th - eps * e, sigma0=s0))
                / (2 * eps)
                for e in np.eye(2)
            ]
        )

    num = np.array(
        [
            [
                integrate.quad(
                    lambda x, i=i, j=j: grad(x)[i] * grad(x)[j] / toy_dsigma(x, th, sigma0=s0),
                    -12,
                    12,
                    points=[0.0],
                )[0]
                for j in range(2)
            ]
            for i in range(2)
        ]
    )
    np.testing.assert_allclose(
        num, toy_fisher_information(th, luminosity=lumi, sigma0=s0) / lumi, rtol=1e-6, atol=1e-8
    )
    full = toy_fisher_information(th, luminosity=lumi, sigma0=s0)
    rate = toy_fisher_information(th, luminosity=lumi, sigma0=s0, kind="rate")
    np.testing.assert_allclose(
        full - rate, toy_fisher_information(th, luminosity=lumi, sigma0=s0, kind="shape")
    )
    with pytest.raises(ConfigError):
        toy_fisher_information(th, luminosity=1.0, kind="bad")


def test_score_is_gradient_of_log_density():
    x = np.linspace(-3, 3, 13)
    th, eps = np.array([0.3, -0.2]), 1e-6
    logp = lambda t: np.log(toy_dsigma(x, t)) - np.log(toy_cross_section(t))  # noqa: E731
    num = np.stack(
        [(logp(th + eps * e) - logp(th - eps * e)) / (2 * eps) for e in np.eye(2)], axis=-1
    )
    np.testing.assert_allclose(toy_score(x, th), num, rtol=1e-6, atol=1e-8)
    # the mean score under p(x|θ) vanishes
    xs = sample_toy(200_000, th, np.random.default_rng(3))
    assert np.abs(toy_score(xs, th).mean(axis=0)).max() < 0.02


@pytest.mark.parametrize("theta", [(0.0, 0.0), (0.8, 0.0), (-0.5, 0.7)])
def test_sampling_is_exact(theta):
    """The first three moments of the samples agree with quadratures of the density."""
    xs = sample_toy(100_000, theta, np.random.default_rng(11))
    s = float(toy_cross_section(theta))
    for k in (1, 2, 3):
        mom = integrate.quad(lambda x, k=k: x**k * toy_dsigma(x, theta), -np.inf, np.inf)[0] / s
        m2 = (
            integrate.quad(lambda x, k=k: x ** (2 * k) * toy_dsigma(x, theta), -np.inf, np.inf)[0]
            / s
        )
        assert (xs**k).mean() == pytest.approx(mom, abs=5 * np.sqrt(m2 - mom**2) / np.sqrt(xs.size))


def run_toy(tmp_path, setup, *, sample="sm", benchmark="sm", n=20_000, seed=5, job=0, **opts):
    out = tmp_path / f"{sample}_{job}_{seed}.zarr"
    res = ToyGenerator().generate(GenerationJob(sample, job, n, seed, out, setup, benchmark, opts))
    return res, EventStore(out)


@pytest.mark.parametrize("sampling", ["sm", "t1_pos", "t2_pos"])
def test_generated_cross_sections_within_mc_error(tmp_path, sampling):
    setup = toy_setup()
    res, store = run_toy(tmp_path, setup, benchmark=sampling, sigma0=4.0)
    exact = toy_cross_section(setup.benchmark_array(), sigma0=4.0)
    got = np.array([res.cross_sections[b] for b in store.benchmark_names])
    err = np.array([res.cross_section_errors[b] for b in store.benchmark_names])
    assert np.all(np.abs(got - exact) < 4 * err + 1e-10 * exact)
    np.testing.assert_allclose(store.cross_sections(), got, rtol=1e-12)
    # the weights at the sampling benchmark are all σ_s / N
    s_idx = store.benchmark_names.index(sampling)
    w = next(store.iter_chunks())["weights"][:, s_idx]
    np.testing.assert_allclose(w, exact[s_idx] / 20_000, rtol=1e-12)


def test_morphing_reproduces_weights(tmp_path):
    setup = toy_setup()
    _, store = run_toy(tmp_path, setup, n=2000)
    chunk = next(store.iter_chunks())
    x = chunk["observables"][:, 0]
    theta = np.array([[0.33, -0.71]])
    morphed = chunk["weights"] @ setup.morpher.weights(theta)[0]
    direct = (
        toy_dsigma(x, theta[0]) / toy_dsigma(x, np.zeros(2)) * toy_cross_section(np.zeros(2)) / 2000
    )
    np.testing.assert_allclose(morphed, direct, rtol=1e-10, atol=1e-10 * direct.mean())


def test_seeds_reproducible_and_distinct(tmp_path):
    setup = toy_setup()
    _, a = run_toy(tmp_path / "a", setup, n=500, seed=9)
    _, b = run_toy(tmp_path / "b", setup, n=500, seed=9)
    _, c = run_toy(tmp_path / "c", setup, n=500, seed=10)
    xa, xb, xc = (next(s.iter_chunks())["observables"] for s in (a, b, c))
    np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(xa, xc)
    assert a.provenance["seed"] == 9 and a.provenance["generator"] == "toy"


@pytest.mark.parametrize("sampling", ["sm", "t1_pos"])
def test_nuisance_norm_weights(tmp_path, sampling):
    # the norm benchmark scales the nominal (reference, here sm) weight whatever the sampling
    # benchmark, so σ(θ, ν = 1) / σ(θ, ν = 0) is the variation, 1.05
    from eftflow.sampling import cross_sections

    setup = toy_setup()
    setup.add_systematics("norm", "lumi", norm_variation=1.05)
    _, store = run_toy(tmp_path, setup, n=100, benchmark=sampling)
    chunk = next(store.iter_chunks())
    np.testing.assert_allclose(chunk["nuisance_weights"][:, 0], 1.05 * chunk["weights"][:, 0])
    xs = [cross_sections(store.path, setup, [[0.5, 0.0]], [[nu]])["xsec"] for nu in (0.0, 1.0)]
    np.testing.assert_allclose(xs[1] / xs[0], 1.05, rtol=1e-10)


def test_bad_options_leave_nothing(tmp_path):
    setup = toy_setup()
    for opts, bench, match in [
        ({"sigma0": -1.0}, "sm", "sigma0"),
        ({"sigma0": float("inf")}, "sm", "sigma0 must be positive and finite"),
        ({"smearing": float("nan")}, "sm", "smearing"),
        ({}, "nope", "sampling benchmark"),
        ({"parameters": ["theta_1"]}, "sm", "2 parameters"),
    ]:
        with pytest.raises(ConfigError, match=match):
            run_toy(tmp_path, setup, benchmark=bench, **opts)
    assert list(tmp_path.iterdir()) == []
