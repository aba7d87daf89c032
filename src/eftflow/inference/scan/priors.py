"""Unit-hypercube transforms of the priors a scan file may declare (vectorised).

Every scanner works in the unit hypercube ``u ∈ (0, 1)^d``; the prior of each sampled parameter
is the map ``x = T(u)`` whose push-forward of the uniform distribution is that prior (the
inverse cumulative distribution). All functions take numpy arrays and broadcast their
hyperparameters, so a hyperparameter may itself be an array (hierarchical priors: the sigma of
one parameter may be another sampled parameter).

=========  ===========================  =====================================================
prior      keys                         transform
=========  ===========================  =====================================================
flat       ``range: [a, b]``            ``a + u (b - a)``
log        ``range: [a, b]``, ``a > 0``  ``exp(ln a + u (ln b - ln a))`` (flat in ln x)
gaussian   ``mean``, ``sigma``           ``mean + sigma Φ⁻¹(u)``; with ``range`` truncated
lognormal  ``mean``, ``sigma``           ``exp(mean + sigma Φ⁻¹(u))`` (mean/sigma of ln x)
=========  ===========================  =====================================================

Example
-------
>>> import numpy as np
>>> float(transform("flat", np.array(0.25), range=(-1.0, 1.0)))
-0.5
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special

__all__ = ["PRIORS", "SAMPLED_PRIORS", "transform", "flat", "log", "gaussian", "lognormal"]


def flat(u: np.ndarray, *, range: tuple) -> np.ndarray:  # noqa: A002 - the YAML key
    """Uniform on ``range``."""
    lower, upper = range
    return lower + u * (np.asarray(upper) - lower)


def log(u: np.ndarray, *, range: tuple) -> np.ndarray:  # noqa: A002
    """Uniform in ``ln x`` on ``range`` (both ends positive)."""
    lower, upper = np.log(range[0]), np.log(range[1])
    return np.exp(lower + u * (upper - lower))


def _std_normal_quantile(u, range_std=None):
    if range_std is None:
        return special.ndtri(u)
    a, b = (np.asarray(v, dtype=float) for v in range_std)
    lo, hi = special.ndtr(a), special.ndtr(b)
    lower_tail = special.ndtri(lo + u * (hi - lo))
    # a range in the upper tail: Φ(a), Φ(b) round to 1 there (all points would be +inf beyond
    # ~8σ, and precision is lost from ~5σ), so use the mirror image Φ(-x) = 1 - Φ(x)
    qa, qb = special.ndtr(-a), special.ndtr(-b)
    upper_tail = -special.ndtri(qa - u * (qa - qb))
    return np.where(a > 0, upper_tail, lower_tail)


def gaussian(u: np.ndarray, *, mean, sigma, range: tuple | None = None) -> np.ndarray:  # noqa: A002
    """Normal(mean, sigma), optionally truncated to ``range``."""
    mean, sigma = np.asarray(mean, dtype=float), np.asarray(sigma, dtype=float)
    std = None if range is None else ((range[0] - mean) / sigma, (range[1] - mean) / sigma)
    return mean + sigma * _std_normal_quantile(u, std)


def lognormal(u: np.ndarray, *, mean, sigma, range: tuple | None = None) -> np.ndarray:  # noqa: A002
    """ln x ~ Normal(mean, sigma), optionally truncated to ``range`` (in x)."""
    mean, sigma = np.asarray(mean, dtype=float), np.asarray(sigma, dtype=float)
    std = None
    if range is not None:
        std = ((np.log(range[0]) - mean) / sigma, (np.log(range[1]) - mean) / sigma)
    return np.exp(mean + sigma * _std_normal_quantile(u, std))


PRIORS: dict[str, Callable[..., np.ndarray]] = {
    "flat": flat,
    "log": log,
    "gaussian": gaussian,
    "lognormal": lognormal,
}
"""Registered sampled priors: name -> vectorised transform ``f(u, **hyperparameters)``."""

SAMPLED_PRIORS = tuple(PRIORS)


def transform(name: str, u: np.ndarray, **hyper) -> np.ndarray:
    """Map unit-cube coordinates ``u`` through prior ``name`` with the given hyperparameters."""
    with np.errstate(all="ignore"):
        return PRIORS[name](np.asarray(u, dtype=float), **hyper)
