"""The Drell–Yan EFT matrix element (pure numpy): SM point, quadratic form, signs, kinematics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from eftflow.errors import ConfigError
from eftflow.physics.drellyan import (
    COEFFICIENTS,
    EWParameters,
    cos_theta_star,
    dsigma_dcos,
    helicity_amplitudes,
    weight_ratios,
)
from eftflow.physics.morphing import Morpher, find_components

EW = EWParameters()
RNG = np.random.default_rng(7)
N = 2000
SHAT = np.exp(RNG.uniform(np.log(60.0**2), np.log(3000.0**2), N))
COS = RNG.uniform(-1, 1, N)
QID = RNG.choice([1, 2, 3, 4, 5, -1, -2], N)
ALPHA = RNG.uniform(1 / 132.0, 1 / 126.0, N)


def test_ratio_is_exactly_one_at_the_sm():
    theta = np.zeros((3, len(COEFFICIENTS)))
    r = weight_ratios(SHAT, COS, QID, theta, list(COEFFICIENTS), EW, alpha_em=ALPHA)
    assert r.shape == (N, 3)
    assert np.all(r == 1.0)


def test_oblique_ratio_does_not_depend_on_alpha():
    theta = np.array([[1e-3, -2e-3]])
    r1 = weight_ratios(SHAT, COS, QID, theta, ["W", "Y"], EW, alpha_em=1 / 128.0)
    r2 = weight_ratios(SHAT, COS, QID, theta, ["W", "Y"], EW, alpha_em=ALPHA)
    np.testing.assert_allclose(r1, r2, rtol=1e-13)


@pytest.mark.parametrize("names", [["W", "Y"], ["clq3", "ceu"]])
def test_morphing_reproduces_a_non_basis_benchmark(names):
    """|M|² is quadratic: 6 basis benchmarks give every other θ to 1e-10 relative, per event."""
    comps = find_components([2, 2], 2)
    scale = 1e-3 if names[0] == "W" else 1.0
    basis = scale * np.array([[0, 0], [1, 0], [0, 1], [-1, 0.5], [0.7, -1], [-0.6, -0.8]])
    target = scale * np.array([[0.37, -0.81]])
    r_basis = weight_ratios(SHAT, COS, QID, basis, names, EW, alpha_em=ALPHA)
    r_target = weight_ratios(SHAT, COS, QID, target, names, EW, alpha_em=ALPHA)[:, 0]
    w = Morpher(comps, basis).weights(target)[0]
    morphed = r_basis @ w
    np.testing.assert_allclose(morphed, r_target, rtol=1e-10)
    assert np.max(np.abs(r_target - 1)) > 1e-3  # the check is not trivial


def test_w_is_destructive_at_high_mass_and_grows_with_mass():
    cos = np.zeros(3)
    shat = np.array([150.0, 1000.0, 3000.0]) ** 2
    r = weight_ratios(shat, cos, np.array([2, 2, 2]), np.array([[1e-3, 0.0]]), ["W", "Y"], EW)[:, 0]
    assert np.all(r < 1) and r[0] > r[1] > r[2]
    assert 1 - r[0] < 0.01 and 1 - r[2] > 0.2


def test_w_equals_the_clq3_operator():
    """W ≡ c_lq3 = −g² W Λ²/(4 m_W²) (arXiv:2103.10532) at fixed α."""
    alpha = 1 / 128.0
    W = 1e-3
    g2 = 4 * np.pi * alpha / EW.sin2theta_w
    clq3 = -g2 * W * 1e6 / (4 * EW.m_w**2)
    a_w = helicity_amplitudes(SHAT, QID, [[W]], ["W"], EW, alpha)
    a_c = helicity_amplitudes(SHAT, QID, [[clq3]], ["clq3"], EW, alpha)
    np.testing.assert_allclose(a_w, a_c, rtol=1e-12)


def test_partonic_cross_section_equals_pythias_formula():
    """∫ dσ̂/dcos over cos θ (scipy quad) = Pythia's Sigma1ffbar2gmZ γ/interference/Z sum."""
    alpha = 1 / 128.0
    for q in (1, 2):
        for shat in (70.0**2, 91.0**2, 500.0**2):
            num = integrate.quad(
                lambda c, shat=shat, q=q: dsigma_dcos([shat], [c], [q], [[0.0]], ["W"], EW, alpha)[
                    0, 0
                ],
                -1,
                1,
            )[0]
            # Pythia: ef, vf = af − 4 s̄² ef, af = ±1, thetaWRat = 1/(16 s² c²)
            s2 = EW.sin2theta_w
            rat = 1 / (16 * s2 * (1 - s2))
            ef_q, af_q = (2 / 3, 1.0) if q == 2 else (-1 / 3, -1.0)
            ef_l, af_l = -1.0, -1.0
            vf_q = af_q - 4 * EW.sin2theta_w_bar * ef_q
            vf_l = af_l - 4 * EW.sin2theta_w_bar * ef_l
            den = (shat - EW.m_z**2) ** 2 + (shat * EW.gamma_z / EW.m_z) ** 2
            gam = 4 * np.pi * alpha**2 / (3 * shat)
            intp = gam * 2 * rat * shat * (shat - EW.m_z**2) / den
            res = gam * (rat * shat) ** 2 / den
            ref = (
                ef_q**2 * ef_l**2 * gam
                + ef_q * vf_q * ef_l * vf_l * intp
                + (vf_q**2 + af_q**2) * (vf_l**2 + af_l**2) * res
            ) / 3
            assert num == pytest.approx(ref, rel=1e-10)


def test_cos_theta_star_is_boost_invariant():
    rng = np.random.default_rng(1)
    n = 50
    m, c = rng.uniform(100, 2000, n), rng.uniform(-1, 1, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(1 - c**2)
    # rest frame: quark along +z, ℓ⁻ at angle θ
    lm = np.column_stack([m / 2 * s * np.cos(phi), m / 2 * s * np.sin(phi), m / 2 * c, m / 2])
    lp = np.column_stack([-lm[:, :3], m / 2])
    q = np.column_stack([np.zeros(n), np.zeros(n), m / 2, m / 2])

    def boost(p, b):
        b2 = np.sum(b**2)
        g = 1 / np.sqrt(1 - b2)
        bp = p[:, :3] @ b
        e = g * (p[:, 3] + bp)
        p3 = p[:, :3] + ((g - 1) * bp / b2 + g * p[:, 3])[:, None] * b
        return np.column_stack([p3, e])

    b = np.array([0.3, -0.2, 0.6])
    got = cos_theta_star(boost(q, b), boost(lm, b), boost(lp, b))
    np.testing.assert_allclose(got, c, atol=1e-12)


def test_unknown_coefficient_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown EFT coefficient 'CWL2'"):
        weight_ratios(SHAT[:2], COS[:2], QID[:2], [[1.0]], ["CWL2"], EW)
