"""HistFactory interpolation codes and a small numpy/torch array shim (pure functions).

=============  ==========================================================================
normsys        code 1: ``f = hi^a`` (a >= 0), ``lo^-a`` (a < 0) — pyhf's default;
               code 4: polynomial of order 6 for ``|a| < 1`` (matching value, first and
               second derivatives of the exponential at ``|a| = 1``), exponential beyond.
histosys       code 0: piecewise linear ``a (up - nom)`` / ``a (nom - down)`` — pyhf's default;
               code 4p: polynomial ``a (S + a A (15 + a^2 (3 a^2 - 10)))`` inside,
               ``S = (up - down) / 2``, ``A = (up + down - 2 nom) / 16``, linear beyond.
=============  ==========================================================================

All functions broadcast and accept numpy arrays or torch tensors (autograd flows through).
"""

from __future__ import annotations

import numpy as np

__all__ = ["interp_code1", "interp_code4", "interp_code0", "interp_code4p", "code4_coefficients"]


# A^{-1} of pyhf's code 4 (alpha0 = 1): coefficients a_1..a_6 from
# (d+ - 1, d- - 1, ln d+ d+, -ln d- d-, ln^2 d+ d+, ln^2 d- d-)
_A_INV = np.array(
    [
        [15 / 16, -15 / 16, -7 / 16, -7 / 16, 1 / 16, -1 / 16],
        [3 / 2, 3 / 2, -9 / 16, 9 / 16, 1 / 16, 1 / 16],
        [-5 / 8, 5 / 8, 5 / 8, 5 / 8, -1 / 8, 1 / 8],
        [-3 / 2, -3 / 2, 7 / 8, -7 / 8, -1 / 8, -1 / 8],
        [3 / 16, -3 / 16, -3 / 16, -3 / 16, 1 / 16, -1 / 16],
        [1 / 2, 1 / 2, -5 / 16, 5 / 16, 1 / 16, 1 / 16],
    ]
)


# -- backend shim ---------------------------------------------------------------------------
def _is_torch(a) -> bool:
    return type(a).__module__.startswith("torch")


class _Ops:
    """The handful of array operations the model needs, for numpy or torch arrays."""

    def __init__(self, like):
        self.torch = _is_torch(like)
        if self.torch:
            import torch

            self.t = torch
            self.dtype, self.device = like.dtype, like.device

    def arr(self, a):
        if self.torch:
            if _is_torch(a):
                return a.to(dtype=self.dtype, device=self.device)
            return self.t.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)
        return np.asarray(a, dtype=float)

    def idx(self, a):
        if self.torch:
            return self.t.as_tensor(np.asarray(a), dtype=self.t.int64, device=self.device)
        return np.asarray(a, dtype=np.int64)

    def where(self, c, a, b):
        return self.t.where(c, a, b) if self.torch else np.where(c, a, b)

    def exp(self, a):
        return self.t.exp(a) if self.torch else np.exp(a)

    def log(self, a):
        return self.t.log(a) if self.torch else np.log(a)

    def lgamma(self, a):
        if self.torch:
            return self.t.lgamma(a)
        from scipy.special import gammaln

        return gammaln(a)

    def xlogy(self, a, b):
        if self.torch:
            return self.t.xlogy(a, b)
        from scipy.special import xlogy

        return xlogy(a, b)

    def ones(self, shape):
        if self.torch:
            return self.t.ones(shape, dtype=self.dtype, device=self.device)
        return np.ones(shape)

    def zeros(self, shape):
        if self.torch:
            return self.t.zeros(shape, dtype=self.dtype, device=self.device)
        return np.zeros(shape)

    def prod_into(self, out, index, vals):
        """``out[:, index[e], ...] *= vals[:, e, ...]`` (repeated indices multiply)."""
        if self.torch:
            shape = (vals.shape[0], len(index)) + tuple(vals.shape[2:])
            ix = self.idx(index).reshape((1, -1) + (1,) * (vals.ndim - 2)).expand(shape)
            return out.scatter_reduce(1, ix, vals, reduce="prod")
        out = out.copy()
        np.multiply.at(out, (slice(None), np.asarray(index)), vals)
        return out

    def add_into(self, out, index, vals):
        if self.torch:
            shape = (vals.shape[0], len(index)) + tuple(vals.shape[2:])
            ix = self.idx(index).reshape((1, -1) + (1,) * (vals.ndim - 2)).expand(shape)
            return out.scatter_add(1, ix, vals)
        out = out.copy()
        np.add.at(out, (slice(None), np.asarray(index)), vals)
        return out


# -- interpolation codes (pure functions, both backends) --------------------------------------
def interp_code1(alpha, hi, lo):
    """Normsys code 1: ``hi^alpha`` for alpha >= 0, ``lo^-alpha`` below (factors)."""
    ops = _Ops(alpha)
    hi, lo = ops.arr(hi), ops.arr(lo)
    return ops.where(alpha >= 0, ops.exp(alpha * ops.log(hi)), ops.exp(-alpha * ops.log(lo)))


def code4_coefficients(hi, lo) -> np.ndarray:
    """Polynomial coefficients a_1..a_6 of code 4 (alpha0 = 1), shape (6,) + hi.shape."""
    hi, lo = np.asarray(hi, float), np.asarray(lo, float)
    lhi, llo = np.log(hi), np.log(lo)
    b = np.stack([hi - 1, lo - 1, lhi * hi, -llo * lo, lhi**2 * hi, llo**2 * lo])
    return np.tensordot(_A_INV, b, axes=1)


def interp_code4(alpha, hi, lo, coefficients=None):
    """Normsys code 4: 6th-order polynomial for |alpha| < 1, exponential outside (factors).

    ``hi``, ``lo`` and ``coefficients`` (from :func:`code4_coefficients`) broadcast against
    ``alpha``; per-event ratios work the same way (hi = g+(x), lo = g-(x)).
    """
    ops = _Ops(alpha)
    c = ops.arr(code4_coefficients(hi, lo) if coefficients is None else coefficients)
    hi, lo = ops.arr(hi), ops.arr(lo)
    inside = ops.ones(alpha.shape) if not ops.torch else 1.0
    poly = 0.0
    power = alpha
    for i in range(6):
        poly = poly + c[i] * power
        power = power * alpha
    poly = poly + inside
    expo = ops.where(alpha >= 0, ops.exp(alpha * ops.log(hi)), ops.exp(-alpha * ops.log(lo)))
    small = (alpha < 1) & (alpha > -1)
    return ops.where(small, poly, expo)


def interp_code0(alpha, up_delta, dn_delta):
    """Histosys code 0 (additive deltas): ``alpha*up_delta`` (alpha > 0), ``alpha*dn_delta``."""
    ops = _Ops(alpha)
    return alpha * ops.where(
        alpha > 0, ops.arr(up_delta) + 0 * alpha, ops.arr(dn_delta) + 0 * alpha
    )


def interp_code4p(alpha, up_delta, dn_delta):
    """Histosys code 4p (additive deltas ``up - nom`` and ``nom - down``)."""
    ops = _Ops(alpha)
    up, dn = ops.arr(up_delta), ops.arr(dn_delta)
    s = 0.5 * (up + dn)
    a = 0.0625 * (up - dn)
    a2 = alpha * alpha
    inside = alpha * (s + alpha * a * (15.0 + a2 * (3.0 * a2 - 10.0)))
    return ops.where(alpha > 1, alpha * up, ops.where(alpha < -1, alpha * dn, inside))
