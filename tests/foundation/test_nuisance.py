"""Nuisance morphing: exact at ν = ±1, positive everywhere, identical to MadMiner's a/b."""

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.physics.nuisance import (
    nuisance_coefficients,
    nuisance_factor_gradients,
    nuisance_factors,
)

rng = np.random.default_rng(4)
W0 = rng.uniform(0.5, 2.0, 100)
WP = W0 * rng.uniform(0.8, 1.3, 100)
WM = W0 * rng.uniform(0.7, 1.2, 100)


def test_two_sided_exact_at_plus_minus_one():
    a, b = nuisance_coefficients(W0, [WP], [WM])
    np.testing.assert_allclose(W0 * nuisance_factors([1.0], a, b), WP, rtol=1e-12)
    np.testing.assert_allclose(W0 * nuisance_factors([-1.0], a, b), WM, rtol=1e-12)
    np.testing.assert_allclose(nuisance_factors([0.0], a, b), 1.0)
    assert np.all(nuisance_factors([7.0], a, b) > 0)


def test_one_sided_and_gradients():
    a, b = nuisance_coefficients(W0, [WP, WP], [WM, None])
    np.testing.assert_allclose(W0 * nuisance_factors([0.0, 1.0], a, b), WP, rtol=1e-12)
    nu = np.array([0.3, -0.2])
    eps = 1e-6
    for i in range(2):
        d = np.zeros(2)
        d[i] = eps
        fd = (nuisance_factors(nu + d, a, b) - nuisance_factors(nu - d, a, b)) / (2 * eps)
        np.testing.assert_allclose(nuisance_factor_gradients(nu, a, b)[i], fd, rtol=1e-6)


def test_negative_weight_is_rejected():
    with pytest.raises(InputError, match="positive"):
        nuisance_coefficients(W0, [-WP], [WM])


def test_same_as_madminer():
    madminer = pytest.importorskip("madminer.utils.morphing")
    from madminer.models import NuisanceParameter

    params = {
        "n1": NuisanceParameter("n1", "s1", "pos", "neg"),
        "n2": NuisanceParameter("n2", "s2", "pos", None),
    }
    nm = madminer.NuisanceMorpher(params, ["ref", "pos", "neg"], "ref")
    weights = np.stack([W0, WP, WM], axis=1)
    a, b = nuisance_coefficients(W0, [WP, WP], [WM, None])
    theirs = nm.calculate_nuisance_factors(np.array([0.4, -0.7]), weights)
    np.testing.assert_allclose(nuisance_factors([0.4, -0.7], a, b), theirs, rtol=1e-12)


def test_coefficients_clipped_as_madminer():
    """|a|, |b| ≤ 10 as in MadMiner's NuisanceMorpher (a variation by more than e¹⁰)."""
    madminer = pytest.importorskip("madminer.utils.morphing")
    from madminer.models import NuisanceParameter

    w0, wp, wm = np.array([1.0, 1.0]), np.array([1e6, 1.2]), np.array([1e-6, 0.9])
    a, b = nuisance_coefficients(w0, [wp], [wm])
    assert a[0, 0] == 10.0 and abs(a[0, 1] - 0.5 * np.log(1.2 / 0.9)) < 1e-15
    nm = madminer.NuisanceMorpher(
        {"n1": NuisanceParameter("n1", "s1", "pos", "neg")}, ["ref", "pos", "neg"], "ref"
    )
    theirs = nm.calculate_nuisance_factors(np.array([0.7]), np.stack([w0, wp, wm], axis=1))
    np.testing.assert_allclose(nuisance_factors([0.7], a, b), theirs, rtol=1e-12)
