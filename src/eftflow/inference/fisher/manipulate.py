"""Operations on Fisher information matrices: project, profile, constraint terms, error propagation.

* :func:`project_information` keeps some parameters and drops the others (their rows and columns):
  the information on θ when the dropped parameters are known exactly.
* :func:`profile_information` is the Schur complement I_θθ − I_θν I_νν⁻¹ I_νθ: the information
  on θ when the other parameters are unknown and fitted (arXiv:1612.05261, App. A.4).
* :func:`nuisance_constraint_information` is the term diag(0, …, 0, 1, …, 1) of unit Gaussian
  constraints on the nuisance parameters (add it before profiling).
* :func:`expected_error` is the expected 1σ error of one parameter, some others known, the rest
  profiled: 1/√(profiled information).

Covariances propagate linearly: Cov(f(I)) = J Cov(I) Jᵀ with the exact Jacobian of the Schur
complement, dF = dA − dB D⁻¹ Bᵀ − B D⁻¹ dBᵀ + B D⁻¹ dD D⁻¹ Bᵀ (MadMiner draws 1000 toys from a
shrunken covariance instead; the linear result is deterministic and agrees with toys for small
errors). :func:`sample_information` draws matrices from the covariance (for uncertainty bands).

Example
-------
>>> import numpy as np
>>> info = np.array([[4.0, 1.0], [1.0, 2.0]])
>>> profile_information(info, [0]).tolist()
[[3.5]]
>>> project_information(info, [0]).tolist()
[[4.0]]
>>> round(expected_error(info, ["a", "b"], "a"), 4), expected_error(info, ["a", "b"], "a", fixed=["b"])
(0.5345, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "project_information",
    "profile_information",
    "nuisance_constraint_information",
    "sample_information",
    "propagate_covariance",
    "expected_error",
]


def _check(info, remaining, covariance):
    info = np.asarray(info, float)
    if info.ndim != 2 or info.shape[0] != info.shape[1]:
        raise InputError(
            f"Fisher information must be a square matrix, got shape {info.shape}",
            field="information",
        )
    n = info.shape[0]
    rem = [int(r) for r in remaining]
    if not rem or any(r < 0 or r >= n for r in rem) or len(set(rem)) != len(rem):
        raise InputError(
            f"remaining components must be distinct indices in [0, {n}), got {list(remaining)}",
            field="remaining_components",
        )
    if covariance is not None:
        covariance = np.asarray(covariance, float)
        if covariance.shape != (n,) * 4:
            raise InputError(
                f"covariance must have shape {(n,) * 4}, got {covariance.shape}", field="covariance"
            )
    return info, rem, covariance


def propagate_covariance(jacobian: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """J Cov Jᵀ for J of shape (m, m, n, n) and Cov (n, n, n, n) → (m, m, m, m)."""
    return np.einsum("abij,ijkl,cdkl->abcd", jacobian, covariance, jacobian)


def project_information(info, remaining_components: Sequence[int], covariance=None):
    """Keep only ``remaining_components`` (in that order). Returns I or (I, Cov) if ``covariance``."""
    info, rem, covariance = _check(info, remaining_components, covariance)
    out = info[np.ix_(rem, rem)]
    if covariance is None:
        return out
    return out, covariance[np.ix_(rem, rem, rem, rem)]


def _schur(info, rem, other):
    a = info[np.ix_(rem, rem)]
    if not other:
        return a
    b = info[np.ix_(rem, other)]
    d = info[np.ix_(other, other)]
    try:
        return a - b @ np.linalg.solve(d, b.T)
    except np.linalg.LinAlgError:
        raise InputError(
            "the information block of the profiled parameters is singular: they are not constrained "
            "(add nuisance_constraint_information or more observables)",
            field="information",
        ) from None


def profile_information(info, remaining_components: Sequence[int], covariance=None):
    """Profile out all parameters not in ``remaining_components`` (Schur complement).

    Returns I_profiled, or (I_profiled, Cov) when ``covariance`` is given (linear propagation
    with the exact Jacobian).
    """
    info, rem, covariance = _check(info, remaining_components, covariance)
    n = info.shape[0]
    other = [i for i in range(n) if i not in rem]
    out = _schur(info, rem, other)
    if covariance is None:
        return out
    m = len(rem)
    jac = np.zeros((m, m, n, n))
    if other:
        b = info[np.ix_(rem, other)]
        dinv = np.linalg.inv(info[np.ix_(other, other)])
        bd = b @ dinv  # (m, o)
        for i in range(n):
            for j in range(n):
                e = np.zeros((n, n))
                e[i, j] = 1.0
                da = e[np.ix_(rem, rem)]
                db = e[np.ix_(rem, other)]
                dd = e[np.ix_(other, other)]
                jac[:, :, i, j] = da - db @ bd.T - bd @ db.T + bd @ dd @ bd.T
    else:
        for a, r in enumerate(rem):
            for c, s in enumerate(rem):
                jac[a, c, r, s] = 1.0
    return out, propagate_covariance(jac, covariance)


def expected_error(
    info, names: Sequence[str], parameter: str, *, fixed: Sequence[str] = (), scale: float = 1.0
) -> float:
    """The expected 1σ error of ``parameter`` from the information ``info`` over ``names``: the
    ``fixed`` parameters known exactly (projected out), all others profiled, the information
    multiplied by ``scale`` (a ratio of luminosities). ``inf`` when the data do not determine it
    (its profiled information vanishes, or the others cannot be profiled)."""
    names = list(names)
    if parameter not in names:
        raise InputError(
            f"{parameter!r} is not among the parameters ({', '.join(names)})", field="parameter"
        )
    if parameter in fixed:
        raise InputError(f"{parameter!r} is fixed: it has no error", field="fixed")
    keep = [i for i, n in enumerate(names) if n not in set(fixed)]
    sub = project_information(np.asarray(info, float), keep) * float(scale)
    j = keep.index(names.index(parameter))
    try:
        prof = float(profile_information(sub, [j])[0, 0])
    except InputError:
        return float("inf")
    if not prof > 1e-12 * abs(sub[j, j]) or not np.isfinite(prof):
        return float("inf")
    return float(1.0 / np.sqrt(prof))


def nuisance_constraint_information(n_parameters: int, n_nuisance: int) -> np.ndarray:
    """diag(0 × n_parameters, 1 × n_nuisance): unit Gaussian constraints on ν (MadMiner's term)."""
    return np.diag([0.0] * int(n_parameters) + [1.0] * int(n_nuisance))


def sample_information(info, covariance, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` matrices drawn from N(I, Cov) (symmetrised): shape (n, k, k).

    The (k², k²) covariance of a matrix is singular (its symmetric entries repeat), so rounding
    leaves eigenvalues slightly below zero; numpy's absolute tolerance (1e-8) would call that
    "not positive-semidefinite" at any luminosity where the entries are large. Eigenvalues below
    ``-1e-8`` of the largest are a real error (``ValueError``); the rest are rounding.
    """
    info = np.asarray(info, float)
    k = info.shape[0]
    cov = np.asarray(covariance, float).reshape(k * k, k * k)
    cov = 0.5 * (cov + cov.T)
    if cov.size:
        ev = np.linalg.eigvalsh(cov)
        if ev[0] < -1e-8 * max(abs(ev[-1]), np.finfo(float).tiny):
            raise ValueError(
                f"the covariance of the information is not positive-semidefinite (eigenvalue "
                f"{ev[0]:.3g}, largest {ev[-1]:.3g})"
            )
    draws = rng.multivariate_normal(
        info.ravel(), cov, size=int(n), method="eigh", check_valid="ignore"
    ).reshape(-1, k, k)
    return 0.5 * (draws + np.swapaxes(draws, 1, 2))
