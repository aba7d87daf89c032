"""Finite-difference gradients, Jacobians and Hessians (central differences).

Used for Hessian-based covariances when the backend gives none (scipy, constrained fits) and for
the Jacobians of :func:`eftflow.inference.uncertainties.propagate`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["default_steps", "gradient", "jacobian", "hessian"]


def default_steps(x: np.ndarray, scales: np.ndarray | None = None, rel: float = 1e-3) -> np.ndarray:
    """Steps ``rel * scale`` (or ``rel * max(|x|, 1)`` without scales)."""
    x = np.asarray(x, dtype=float)
    base = np.maximum(np.abs(x), 1.0) if scales is None else np.asarray(scales, dtype=float)
    return rel * base


def gradient(f: Callable[[np.ndarray], float], x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference gradient of a scalar function."""
    x = np.asarray(x, dtype=float)
    g = np.empty_like(x)
    for i, h in enumerate(steps):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2.0 * h)
    return g


def jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian ``J[i, j] = d f_i / d x_j`` of a vector function."""
    x = np.asarray(x, dtype=float)
    cols = []
    for j, h in enumerate(steps):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((np.atleast_1d(f(x + e)) - np.atleast_1d(f(x - e))) / (2.0 * h))
    return np.stack(cols, axis=-1)


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of a scalar function (symmetric, ``2 n**2`` evaluations)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = f(x)
    hmat = np.empty((n, n))
    shifted: dict[tuple[int, int], float] = {}

    def fx(i: int, si: int, j: int = -1, sj: int = 0) -> float:
        key = (i, si, j, sj)
        if key not in shifted:
            y = x.copy()
            y[i] += si * steps[i]
            if j >= 0:
                y[j] += sj * steps[j]
            shifted[key] = f(y) - f0
        return shifted[key]

    for i in range(n):
        hmat[i, i] = (fx(i, 1) + fx(i, -1)) / steps[i] ** 2
        for j in range(i):
            val = (fx(i, 1, j, 1) - fx(i, 1, j, -1) - fx(i, -1, j, 1) + fx(i, -1, j, -1)) / (
                4.0 * steps[i] * steps[j]
            )
            hmat[i, j] = hmat[j, i] = val
    return hmat
