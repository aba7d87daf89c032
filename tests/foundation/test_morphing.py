"""Morphing closure: MadMiner's published numbers, Σ w = 1, exact polynomial reproduction."""

import numpy as np
import pytest

from eftflow.errors import MorphingError
from eftflow.physics.morphing import (
    Morpher,
    component_gradients,
    component_values,
    find_components,
    morphing_matrix,
    optimize_basis,
)

COMPONENTS = np.array([[4, 0], [3, 1], [2, 2], [1, 3], [0, 4]])
BASIS = np.array([[1, -5], [1, -4], [1, -3], [1, -2], [1, -1]], float)


def test_madminer_published_weights_and_gradients():
    # madminer/tests/test_morphing.py: basis, components and expected values at theta = (1, 1)
    m = Morpher(COMPONENTS, BASIS)
    np.testing.assert_allclose(m.weights(np.array([1.0, 1.0])), [5, -24, 45, -40, 15], atol=1e-9)
    expected = [[13.5833, -66, 126, -115.3333, 45.75], [6.4167, -30, 54, -44.6667, 14.25]]
    np.testing.assert_allclose(m.gradients(np.array([1.0, 1.0])), expected, atol=1e-4)


def test_components_match_madminer_order():
    assert find_components([2, 2], 2).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0]]
    assert find_components([1, 1, 1], 2).shape == (7, 3)  # all but (1,1,1)
    assert find_components([4, 4], 4).shape == (15, 2)


def test_weights_sum_to_one_everywhere(toy_setup):
    rng = np.random.default_rng(1)
    theta = rng.uniform(-3, 3, size=(1000, 2))
    w = toy_setup.morpher.weights(theta)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-10)
    np.testing.assert_allclose(toy_setup.morpher.gradients(theta).sum(axis=2), 0.0, atol=1e-9)


@pytest.mark.parametrize("n_extra", [0, 3])
def test_reproduces_arbitrary_polynomial(n_extra):
    """Any dσ with the declared powers is reproduced to 1e-10 relative (also over-determined)."""
    rng = np.random.default_rng(7)
    comps = find_components([2, 2, 1], 3)
    coeff = rng.normal(size=(comps.shape[0], 50))  # 50 "phase-space points" x
    basis, _ = optimize_basis(
        comps, [(-1, 1)] * 3, n_benchmarks=comps.shape[0] + n_extra, seed=2, n_trials=20
    )
    m = Morpher(comps, basis)

    def dsigma(theta):
        return component_values(theta, comps) @ coeff

    theta = rng.uniform(-2, 2, size=(200, 3))
    morphed = m.weights(theta) @ dsigma(basis)
    truth = dsigma(theta)
    assert np.max(np.abs(morphed - truth) / np.maximum(np.abs(truth), 1e-3)) < 1e-10
    # gradients: compare with the analytic derivative of the polynomial
    grad_truth = np.einsum("npc,cx->npx", component_gradients(theta, comps), coeff)
    grad_morph = np.einsum("npb,bx->npx", m.gradients(theta), dsigma(basis))
    np.testing.assert_allclose(grad_morph, grad_truth, rtol=1e-8, atol=1e-8)


def test_gradients_match_finite_differences(toy_setup):
    theta = np.array([[0.3, -0.4]])
    m = toy_setup.morpher
    eps = 1e-6
    for p in range(2):
        d = np.zeros(2)
        d[p] = eps
        fd = (m.weights(theta + d) - m.weights(theta - d)) / (2 * eps)
        np.testing.assert_allclose(m.gradients(theta)[:, p, :], fd, atol=1e-7)


def test_dask_input_matches_numpy(toy_setup):
    import dask.array as da

    theta = np.random.default_rng(0).uniform(-1, 1, (1000, 2))
    m = toy_setup.morpher
    np.testing.assert_allclose(
        m.weights(da.from_array(theta, chunks=(300, 2))).compute(), m.weights(theta)
    )
    np.testing.assert_allclose(
        m.gradients(da.from_array(theta, chunks=(300, 2))).compute(), m.gradients(theta)
    )


def test_too_few_benchmarks():
    with pytest.raises(MorphingError, match="at least 5"):
        morphing_matrix(COMPONENTS, BASIS[:4])


def test_singular_basis():
    singular = BASIS.copy()
    singular[1] = singular[0]
    with pytest.raises(MorphingError, match="singular"):
        morphing_matrix(COMPONENTS, singular)


def test_basis_optimisation_is_seeded_and_improves():
    comps = find_components([2, 2], 2)
    b1, c1 = optimize_basis(comps, [(-1, 1), (-1, 1)], seed=5, n_trials=50)
    b2, c2 = optimize_basis(comps, [(-1, 1), (-1, 1)], seed=5, n_trials=50)
    np.testing.assert_array_equal(b1, b2)
    _, c_one = optimize_basis(comps, [(-1, 1), (-1, 1)], seed=5, n_trials=1)
    assert c1 <= c_one
    assert c1 == c2
