"""Morphing: dσ(x|θ) = Σ_b w_b(θ) dσ(x|θ_b) for a squared matrix element polynomial in θ.

If |M(θ)|² = Σ_c α_c(x) Π_p θ_p^{k_cp} with known integer powers k (the *components*), then
sampling at n_b ≥ n_c benchmarks θ_b determines the α_c, and the weights

    w_b(θ) = Σ_c C_c(θ) M_cb,      C_c(θ) = Π_p θ_p^{k_cp},      M = A⁺,  A_bc = C_c(θ_b)

reproduce dσ(x|θ) exactly for every θ and every x. ``M`` has shape (n_components, n_benchmarks)
(MadMiner's ``morphing/morphing_matrix``); with more benchmarks than components it is the
least-squares (Moore–Penrose) inverse, which gives the minimum-norm weights.

Everything is vectorised over many θ at once: ``theta`` has shape (n_points, n_parameters), and
numpy or dask arrays are accepted (dask arrays are processed block by block).

Basis optimisation (:func:`optimize_basis`) draws candidate bases uniformly in the parameter
ranges (seeded) and keeps the one with the smallest expected squared weight norm
``E_θ[Σ_b w_b(θ)²]`` over θ uniform in the ranges: large positive and negative weights cancel in
the morphed sum and inflate its statistical variance by Σ_b w_b², so this criterion minimises the
expected variance of morphed histograms and cross sections (MadMiner's criterion too).

Example
-------
>>> import numpy as np
>>> comps = np.array([[4, 0], [3, 1], [2, 2], [1, 3], [0, 4]])
>>> basis = np.array([[1, -5], [1, -4], [1, -3], [1, -2], [1, -1]], float)
>>> m = Morpher(comps, basis)
>>> np.round(m.weights(np.array([[1.0, 1.0]])), 6).tolist()
[[5.0, -24.0, 45.0, -40.0, 15.0]]
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np

from eftflow.errors import MorphingError

__all__ = [
    "find_components",
    "component_values",
    "component_gradients",
    "morphing_matrix",
    "Morpher",
    "optimize_basis",
    "expected_squared_weights",
]

log = logging.getLogger(__name__)

#: Condition number above which a basis counts as singular.
MAX_CONDITION = 1e12


def find_components(
    max_powers: Sequence[int], max_overall_power: int | Sequence[int] = 4
) -> np.ndarray:
    """All monomials Π θ_p^k_p with k_p ≤ max_powers[p] and Σ_p k_p ≤ max_overall_power.

    Same order as MadMiner (``itertools.product`` over the powers, first parameter slowest).
    ``max_overall_power`` may be a list of regions with ``max_powers`` then a list of lists
    (MadMiner's multi-region form); the union of components is returned.

    Returns
    -------
    numpy.ndarray
        Integer array of shape (n_components, n_parameters).
    """
    if isinstance(max_overall_power, (int, np.integer)):
        overall = [int(max_overall_power)]
        per_param = [[int(p)] for p in max_powers]
    else:
        overall = [int(v) for v in max_overall_power]
        per_param = [
            list(p) if isinstance(p, (list, tuple)) else [int(p)] * len(overall) for p in max_powers
        ]
    components: list[tuple[int, ...]] = []
    seen = set()
    for region, this_overall in enumerate(overall):
        ranges = [range(int(p[region]) + 1) for p in per_param]
        for powers in itertools.product(*ranges):
            if sum(powers) > this_overall or powers in seen:
                continue
            seen.add(powers)
            components.append(powers)
    return np.array(components, dtype=np.int64).reshape(len(components), len(max_powers))


def _powers(theta_t: np.ndarray, max_k: int) -> list[list[np.ndarray | None]]:
    """θ_p^k for k = 0..max_k as contiguous 1-d arrays (``None`` stands for θ⁰ = 1)."""
    out = []
    for row in theta_t:
        pw: list[np.ndarray | None] = [None] * (max_k + 1)
        if max_k >= 1:
            pw[1] = row
        for k in range(2, max_k + 1):
            pw[k] = pw[k - 1] * row
        out.append(pw)
    return out


def _monomial(pw, powers, n: int, *, derivative: int | None = None) -> np.ndarray:
    """Π_p θ_p^k_p (or its derivative in θ_derivative) as a 1-d array over the n points."""
    coef = 1.0
    value = None
    for p, k in enumerate(powers):
        k = int(k)
        if p == derivative:
            if k == 0:
                return np.zeros(n)
            coef *= k
            k -= 1
        if k:
            value = pw[p][k] if value is None else value * pw[p][k]
    if value is None:
        return np.full(n, coef)
    return value * coef if coef != 1.0 else value


def _component_rows(theta, components, derivative=None) -> np.ndarray:
    """(n_components, n) array of monomials (or their θ_derivative derivatives)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    components = np.asarray(components)
    n = theta.shape[0]
    pw = _powers(np.ascontiguousarray(theta.T), int(components.max(initial=0)))
    out = np.empty((components.shape[0], n))
    for c, powers in enumerate(components):
        out[c] = _monomial(pw, powers, n, derivative=derivative)
    return out


def component_values(theta, components: np.ndarray) -> np.ndarray:
    """C_c(θ) = Π_p θ_p^{k_cp} for many θ: (n, n_p) → (n, n_components)."""
    return _component_rows(theta, components).T


def component_gradients(theta, components: np.ndarray) -> np.ndarray:
    """∂C_c/∂θ_q for many θ: (n, n_p) → (n, n_p, n_components)."""
    n_p = np.asarray(components).shape[1]
    rows = np.stack([_component_rows(theta, components, derivative=q) for q in range(n_p)])
    return rows.transpose(2, 0, 1)


def morphing_matrix(components: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """M = A⁺ with A_bc = C_c(θ_b): shape (n_components, n_benchmarks).

    Raises
    ------
    MorphingError
        Fewer benchmarks than components, or a (numerically) singular basis.
    """
    components = np.asarray(components)
    basis = np.atleast_2d(np.asarray(basis, dtype=float))
    n_c, n_b = components.shape[0], basis.shape[0]
    if basis.shape[1] != components.shape[1]:
        raise MorphingError(
            f"basis has {basis.shape[1]} parameters but components have {components.shape[1]}",
            field="benchmarks",
        )
    if n_b < n_c:
        raise MorphingError(
            f"{n_b} benchmarks cannot span {n_c} morphing components: at least {n_c} are needed "
            "(add benchmarks or let set_morphing add them)",
            field="benchmarks",
        )
    a = component_values(basis, components)  # (n_b, n_c)
    sv = np.linalg.svd(a, compute_uv=False)
    cond = np.inf if sv[-1] == 0 else sv[0] / sv[-1]
    if not np.isfinite(cond) or cond > MAX_CONDITION:
        raise MorphingError(
            f"the benchmark basis is singular (condition number {cond:.3g}): some benchmarks are "
            "linearly dependent in the morphing components; choose different benchmark points",
            field="benchmarks",
        )
    if n_b == n_c:
        return np.linalg.inv(a)
    return np.linalg.pinv(a)


class Morpher:
    """Morphing weights and gradients for fixed components and basis.

    Parameters
    ----------
    components
        (n_components, n_parameters) integer powers (:func:`find_components`).
    basis
        (n_benchmarks, n_parameters) benchmark points.
    """

    def __init__(self, components, basis):
        self.components = np.asarray(components, dtype=np.int64)
        self.basis = np.atleast_2d(np.asarray(basis, dtype=float))
        self.matrix = morphing_matrix(self.components, self.basis)

    @classmethod
    def from_matrix(cls, components, basis, matrix) -> Morpher:
        """Build from a stored morphing matrix (as read from a setup file)."""
        self = cls.__new__(cls)
        self.components = np.asarray(components, dtype=np.int64)
        self.basis = np.atleast_2d(np.asarray(basis, dtype=float))
        self.matrix = np.asarray(matrix, dtype=float)
        return self

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    @property
    def n_benchmarks(self) -> int:
        return self.basis.shape[0]

    def _map(self, theta, fn, extra_dims: tuple[int, ...]):
        if hasattr(theta, "map_blocks") and hasattr(theta, "chunks"):
            if len(theta.chunks[1]) != 1:
                theta = theta.rechunk({1: -1})
            if extra_dims:
                return theta.map_blocks(
                    fn,
                    chunks=(theta.chunks[0], *extra_dims),
                    new_axis=list(range(2, 1 + len(extra_dims))),
                    dtype=float,
                )
            return theta.map_blocks(fn, chunks=(theta.chunks[0], self.n_benchmarks), dtype=float)
        return fn(theta)

    def weights(self, theta):
        """w_b(θ) for θ of shape (n, n_p) → (n, n_benchmarks). A 1-d θ gives (n_benchmarks,)."""
        if np.ndim(theta) == 1:
            return self.weights(np.asarray(theta, dtype=float)[None, :])[0]
        return self._map(
            theta, lambda t: (self.matrix.T @ _component_rows(t, self.components)).T, ()
        )

    def gradients(self, theta):
        """∂w_b/∂θ_p for θ of shape (n, n_p) → (n, n_p, n_benchmarks); 1-d θ → (n_p, n_b)."""
        if np.ndim(theta) == 1:
            return self.gradients(np.asarray(theta, dtype=float)[None, :])[0]
        n_p = self.components.shape[1]

        def grads(t):
            t = np.atleast_2d(np.asarray(t, dtype=float))
            out = np.empty((t.shape[0], n_p, self.n_benchmarks))
            for q in range(n_p):
                out[:, q, :] = (self.matrix.T @ _component_rows(t, self.components, derivative=q)).T
            return out

        return self._map(theta, grads, (n_p, self.n_benchmarks))

    def cross_section(self, theta, benchmark_xsecs):
        """σ(θ) = Σ_b w_b(θ) σ_b (any per-benchmark quantity, e.g. histograms, works alike)."""
        return self.weights(theta) @ np.asarray(benchmark_xsecs)


def expected_squared_weights(components, basis, theta_samples) -> float:
    """Mean over ``theta_samples`` of Σ_b w_b(θ)² for a basis (the optimisation criterion)."""
    w = Morpher(components, basis).weights(theta_samples)
    return float(np.mean(np.sum(w * w, axis=1)))


def optimize_basis(
    components,
    parameter_ranges,
    *,
    n_benchmarks: int | None = None,
    fixed_benchmarks=None,
    n_trials: int = 100,
    n_test_thetas: int = 1000,
    seed: int = 0,
):
    """Choose benchmark points that minimise the expected Σ_b w_b(θ)² over the parameter ranges.

    Parameters
    ----------
    components
        (n_components, n_p) powers.
    parameter_ranges
        (n_p, 2) ranges; candidates and test points are uniform in them.
    n_benchmarks
        Size of the basis (default n_components; more gives an over-determined basis).
    fixed_benchmarks
        (k, n_p) points that must stay in the basis (the benchmarks already declared).
    n_trials, n_test_thetas, seed
        Number of random candidate bases, of θ points to average over, and the seed.

    Returns
    -------
    (basis, criterion)
        ``basis`` has the fixed benchmarks first, then the new ones; ``criterion`` is its
        expected Σ w².
    """
    components = np.asarray(components)
    ranges = np.asarray(parameter_ranges, dtype=float).reshape(-1, 2)
    n_p = components.shape[1]
    n_c = components.shape[0]
    n_b = n_c if n_benchmarks is None else int(n_benchmarks)
    fixed = (
        np.zeros((0, n_p))
        if fixed_benchmarks is None
        else np.atleast_2d(np.asarray(fixed_benchmarks, float))
    )
    fixed = fixed.reshape(-1, n_p)
    n_new = n_b - fixed.shape[0]
    if n_new < 0:
        raise MorphingError(
            f"{fixed.shape[0]} fixed benchmarks exceed the requested basis size {n_b}"
        )
    rng = np.random.default_rng(seed)
    lo, hi = ranges[:, 0], ranges[:, 1]
    test = lo + (hi - lo) * rng.random((n_test_thetas, n_p))
    best, best_value = None, np.inf
    for _ in range(max(1, n_trials) if n_new > 0 else 1):
        candidate = np.vstack([fixed, lo + (hi - lo) * rng.random((n_new, n_p))])
        try:
            value = expected_squared_weights(components, candidate, test)
        except MorphingError:
            continue
        if value < best_value:
            best, best_value = candidate, value
    if best is None:
        raise MorphingError(
            "the benchmark basis is singular for every completion tried: the declared benchmarks are "
            "linearly dependent in the morphing components (e.g. two benchmarks at the same point)",
            field="benchmarks",
        )
    log.info("optimised morphing basis: expected sum of squared weights %.4g", best_value)
    return best, best_value
