"""Drawing Fisher matrices from their covariance: no spurious 'not positive-semidefinite' at
large luminosity (the covariance of a matrix is singular; rounding leaves tiny negative
eigenvalues), a real error for a covariance that is not one; the JSON records its partition."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.inference.fisher.manipulate import sample_information


def _matrix_covariance(scale: float, rng) -> np.ndarray:
    """Covariance (k², k²) of the entries of a symmetric 2×2 matrix: singular by construction."""
    j = rng.normal(size=(3, 5)) * scale  # 3 free entries (a, b, c) of [[a, b], [b, c]]
    c3 = j @ j.T
    expand = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]], float)  # I00 I01 I10 I11
    return (expand @ c3 @ expand.T).reshape(2, 2, 2, 2)


def test_large_scale_covariance_draws_without_warnings():
    rng = np.random.default_rng(1)
    info = np.array([[4.0e8, 1.0e8], [1.0e8, 9.0e8]])
    cov = _matrix_covariance(1e7, rng)
    draws = sample_information(info, cov, 2000, np.random.default_rng(2))  # warnings are errors
    assert draws.shape == (2000, 2, 2)
    np.testing.assert_allclose(draws.mean(axis=0), info, rtol=2e-3)
    np.testing.assert_allclose(np.var(draws[:, 0, 0]), cov[0, 0, 0, 0], rtol=0.1)


def test_a_covariance_that_is_not_one_is_refused():
    cov = np.eye(4).reshape(2, 2, 2, 2)
    cov[0, 0, 0, 0] = -1.0
    with pytest.raises(ValueError, match="not positive-semidefinite"):
        sample_information(np.eye(2), cov, 10, np.random.default_rng(0))
