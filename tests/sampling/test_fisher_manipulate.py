"""Profile, project, constraint terms and covariance propagation on known matrices."""

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.inference.fisher import (
    nuisance_constraint_information,
    profile_information,
    project_information,
    sample_information,
)

INFO = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])


def test_project_and_profile_known_matrix():
    assert project_information(INFO, [2, 0]).tolist() == [[2.0, 0.5], [0.5, 4.0]]
    prof = profile_information(INFO, [0, 1])
    a, b, d = INFO[:2, :2], INFO[:2, 2:], INFO[2:, 2:]
    np.testing.assert_allclose(prof, a - b @ np.linalg.inv(d) @ b.T)
    # profiling = inverting the covariance of the kept block: (I⁻¹)_θθ⁻¹
    np.testing.assert_allclose(prof, np.linalg.inv(np.linalg.inv(INFO)[:2, :2]))
    np.testing.assert_allclose(profile_information(INFO, [0, 1, 2]), INFO)


def test_covariance_propagation_against_toys():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(9, 9)) * 0.05
    cov = (a @ a.T).reshape(3, 3, 3, 3)
    p, pcov = profile_information(INFO, [0], cov)
    toys = sample_information(INFO, cov, 20000, rng)
    vals = np.array([profile_information(t, [0])[0, 0] for t in toys])
    assert pcov.shape == (1, 1, 1, 1)
    assert vals.var() == pytest.approx(pcov[0, 0, 0, 0], rel=0.1)
    _, jcov = project_information(INFO, [1, 2], cov)
    assert jcov[0, 1, 0, 1] == cov[1, 2, 1, 2]


def test_constraint_term_makes_profiling_possible():
    info = np.array([[2.0, 1.0], [1.0, 0.0]])  # unconstrained nuisance
    with pytest.raises(InputError, match="singular"):
        profile_information(info, [0])
    c = nuisance_constraint_information(1, 1)
    assert c.tolist() == [[0.0, 0.0], [0.0, 1.0]]
    assert profile_information(info + c, [0]).tolist() == [[1.0]]


def test_bad_remaining_components():
    with pytest.raises(InputError, match="distinct indices"):
        profile_information(INFO, [0, 0])
    with pytest.raises(InputError, match="distinct indices"):
        project_information(INFO, [3])
    with pytest.raises(InputError, match="square"):
        project_information(np.zeros((2, 3)), [0])


def test_expected_error_fixes_profiles_and_scales():
    from eftflow.inference.fisher import expected_error

    cov = np.array([[0.04, 0.01, 0.0], [0.01, 0.09, 0.02], [0.0, 0.02, 0.25]])
    info = np.linalg.inv(cov)
    names = ["a", "b", "nu"]
    # all others profiled: the error is the square root of the covariance's diagonal
    assert expected_error(info, names, "a") == pytest.approx(0.2)
    assert expected_error(info, names, "b") == pytest.approx(0.3)
    # b known: 1/sqrt of the information of (a, nu) profiled over nu
    sub = info[np.ix_([0, 2], [0, 2])]
    assert expected_error(info, names, "a", fixed=["b"]) == pytest.approx(
        np.sqrt(np.linalg.inv(sub)[0, 0])
    )
    # four times the luminosity: half the error
    assert expected_error(info, names, "a", scale=4.0) == pytest.approx(0.1)
    # a rank-1 information (a rate alone): the other direction is not determined
    flat = np.outer([1.0, 2.0], [1.0, 2.0])
    assert expected_error(flat, ["a", "b"], "a") == float("inf")
    assert expected_error(flat, ["a", "b"], "a", fixed=["b"]) == pytest.approx(1.0)
    with pytest.raises(InputError, match="'c' is not among"):
        expected_error(info, names, "c")
    with pytest.raises(InputError, match="is fixed"):
        expected_error(info, names, "a", fixed=["a"])
