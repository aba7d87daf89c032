"""Nuisance morphing: per-event weight factors as functions of nuisance parameters ν.

For each nuisance parameter i with weights at ν_i = +1 (``w⁺``), optionally ν_i = −1 (``w⁻``),
and the nominal weight ``w⁰`` of the same event, MadMiner's ``NuisanceMorpher`` uses the
exponential-quadratic interpolation

    w(ν) = w⁰ · exp(Σ_i a_i ν_i + b_i ν_i²)

two-sided:  a_i = ½ log(w⁺/w⁻),  b_i = ½ log(w⁺ w⁻ / w⁰²)   (exact at ν_i = ±1)
one-sided:  a_i = log(w⁺/w⁰),     b_i = 0                    (exact at ν_i = +1)

The factor is positive for every ν, which keeps morphed weights physical. As in MadMiner, a and
b are clipped to [−10, 10] (:data:`COEFFICIENT_CLIP`; only a variation by a factor above
e¹⁰ ≈ 2·10⁴ is affected). All functions are vectorised over events (axis 0).

Example
-------
>>> import numpy as np
>>> w0, wp, wm = np.array([1.0]), np.array([1.1]), np.array([0.95])
>>> a, b = nuisance_coefficients(w0, [wp], [wm])
>>> float(nuisance_factors([1.0], a, b)[0]) # doctest: +ELLIPSIS
1.1...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "nuisance_coefficients",
    "nuisance_factors",
    "nuisance_factor_gradients",
    "COEFFICIENT_CLIP",
]

#: |a|, |b| are clipped to this, as MadMiner's ``NuisanceMorpher`` does
COEFFICIENT_CLIP = 10.0


def _ratio_log(num, den, what: str) -> np.ndarray:
    num = np.asarray(num, float)
    den = np.asarray(den, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(num / den)
    bad = ~np.isfinite(out)
    if np.any(bad & (den != 0) | bad & (num != 0)):
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"nuisance weights must be positive where the nominal weight is: event {i} has "
            f"{what} = {num.flat[i]!r} / {den.flat[i]!r}",
            field="nuisance_weights",
        )
    out[bad] = 0.0  # both zero: no information, factor 1
    return out


def nuisance_coefficients(
    nominal, positive: Sequence, negative: Sequence | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The a and b coefficients, each of shape (n_nuisance, n_events).

    Parameters
    ----------
    nominal
        w⁰, shape (n_events,).
    positive
        One array per nuisance parameter: the weights at ν_i = +1.
    negative
        One array (or ``None`` for one-sided) per nuisance parameter: weights at ν_i = −1.
    """
    nominal = np.asarray(nominal, float)
    n = len(positive)
    negative = [None] * n if negative is None else list(negative)
    if len(negative) != n:
        raise InputError(f"{n} positive but {len(negative)} negative nuisance variations")
    a = np.empty((n, nominal.shape[0]))
    b = np.zeros((n, nominal.shape[0]))
    for i, (wp, wm) in enumerate(zip(positive, negative)):
        if wm is None:
            a[i] = _ratio_log(wp, nominal, "w+/w0")
        else:
            a[i] = 0.5 * _ratio_log(wp, wm, "w+/w-")
            b[i] = 0.5 * (_ratio_log(wp, nominal, "w+/w0") + _ratio_log(wm, nominal, "w-/w0"))
    np.clip(a, -COEFFICIENT_CLIP, COEFFICIENT_CLIP, out=a)
    np.clip(b, -COEFFICIENT_CLIP, COEFFICIENT_CLIP, out=b)
    return a, b


def nuisance_factors(nu, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """exp(Σ_i a_i ν_i + b_i ν_i²) per event; ``nu`` has shape (n_nuisance,)."""
    nu = np.asarray(nu, float).reshape(-1, 1)
    return np.exp(np.sum(a * nu + b * nu * nu, axis=0))


def nuisance_factor_gradients(nu, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """∂ factor / ∂ν_i per event: shape (n_nuisance, n_events)."""
    nu_col = np.asarray(nu, float).reshape(-1, 1)
    return nuisance_factors(nu, a, b)[None, :] * (a + 2.0 * b * nu_col)
