"""The core of :mod:`eftflow.inference.uncertainties`: :class:`GVar`, :func:`gvar` and the
covariance algebra (blocks of primary sources, forward-mode derivatives).

Import from :mod:`eftflow.inference.uncertainties`, which re-exports everything public here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from eftflow.errors import InputError
from eftflow.inference.gvar_format import fmt, format_gvar

__all__ = [
    "GVar",
    "gvar",
    "from_fit",
    "mean",
    "sdev",
    "var",
    "evalcov",
    "evalcorr",
    "partial_sdev",
    "arctan2",
    "hypot",
    "fmt",
    "format_gvar",
]


class _Block:
    """Covariance of a set of primary sources (identity-compared)."""

    __slots__ = ("cov",)

    def __init__(self, cov: np.ndarray):
        self.cov = cov

    @property
    def size(self) -> int:
        return self.cov.shape[0]


def _union(a: tuple, b: tuple) -> tuple:
    if a is b or (len(a) == len(b) and all(x is y for x, y in zip(a, b))):
        return a
    return a + tuple(x for x in b if not any(x is y for y in a))


def _remap(der: np.ndarray, blocks: tuple, target: tuple) -> np.ndarray:
    if blocks is target:
        return der
    if len(blocks) == len(target) and all(x is y for x, y in zip(blocks, target)):
        return der
    out = np.zeros(sum(b.size for b in target))
    offsets = {}
    pos = 0
    for b in target:
        offsets[id(b)] = pos
        pos += b.size
    src = 0
    for b in blocks:
        o = offsets[id(b)]
        out[o : o + b.size] = der[src : src + b.size]
        src += b.size
    return out


def _cov_times(blocks: tuple, der: np.ndarray) -> np.ndarray:
    """``C @ der`` for the block-diagonal C."""
    out = np.empty_like(der)
    pos = 0
    for b in blocks:
        out[pos : pos + b.size] = b.cov @ der[pos : pos + b.size]
        pos += b.size
    return out


class GVar:
    """A Gaussian variable: mean, derivatives with respect to primaries, and their blocks."""

    __slots__ = ("mean", "der", "blocks")
    __array_priority__ = 100

    def __init__(self, mean: float, der: np.ndarray, blocks: tuple):
        self.mean = float(mean)
        self.der = der
        self.blocks = blocks

    # -- statistics ---------------------------------------------------------------------------
    @property
    def var(self) -> float:
        return float(max(self.der @ _cov_times(self.blocks, self.der), 0.0))

    @property
    def sdev(self) -> float:
        return math.sqrt(self.var)

    def partialsdev(self, *inputs) -> float:
        """Error due to the primaries that the ``inputs`` (GVars or arrays of them) depend on."""
        return partial_sdev(self, *inputs)

    # -- helpers ------------------------------------------------------------------------------
    def _chain(self, value: float, deriv: float) -> GVar:
        return GVar(value, deriv * self.der, self.blocks)

    def _binary(self, other, value: float, d_self: float, d_other: float) -> GVar:
        blocks = _union(self.blocks, other.blocks)
        der = d_self * _remap(self.der, self.blocks, blocks) + d_other * _remap(
            other.der, other.blocks, blocks
        )
        return GVar(value, der, blocks)

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, o):
        if isinstance(o, GVar):
            return self._binary(o, self.mean + o.mean, 1.0, 1.0)
        if _is_number(o):
            return GVar(self.mean + o, self.der, self.blocks)
        if isinstance(o, np.ndarray):
            return np.add(self, o)
        return NotImplemented

    def __radd__(self, o):
        if isinstance(o, np.ndarray):
            return np.add(o, self)
        return self.__add__(o)

    def __sub__(self, o):
        if isinstance(o, GVar):
            return self._binary(o, self.mean - o.mean, 1.0, -1.0)
        if _is_number(o):
            return GVar(self.mean - o, self.der, self.blocks)
        return NotImplemented

    def __rsub__(self, o):
        if _is_number(o):
            return GVar(o - self.mean, -self.der, self.blocks)
        if isinstance(o, np.ndarray):
            return np.subtract(o, self)
        return NotImplemented

    def __mul__(self, o):
        if isinstance(o, GVar):
            return self._binary(o, self.mean * o.mean, o.mean, self.mean)
        if _is_number(o):
            return self._chain(self.mean * o, o)
        if isinstance(o, np.ndarray):
            return np.multiply(self, o)
        return NotImplemented

    def __rmul__(self, o):
        if isinstance(o, np.ndarray):
            return np.multiply(o, self)
        return self.__mul__(o)

    def __truediv__(self, o):
        if isinstance(o, GVar):
            return self._binary(o, self.mean / o.mean, 1.0 / o.mean, -self.mean / o.mean**2)
        if _is_number(o):
            return self._chain(self.mean / o, 1.0 / o)
        return NotImplemented

    def __rtruediv__(self, o):
        if _is_number(o):
            return self._chain(o / self.mean, -o / self.mean**2)
        if isinstance(o, np.ndarray):
            return np.true_divide(o, self)
        return NotImplemented

    def __pow__(self, o):
        if isinstance(o, GVar):
            if self.mean < 0:
                raise ValueError(
                    f"a GVar power of a GVar needs a base >= 0 (got {self.mean:g}): x**y is "
                    "not real for x < 0 and non-integer y"
                )
            v = self.mean**o.mean
            dlog = v * math.log(self.mean) if self.mean > 0 else 0.0
            return self._binary(o, v, o.mean * self.mean ** (o.mean - 1), dlog)
        if _is_number(o):
            return self._chain(self.mean**o, o * self.mean ** (o - 1) if o != 0 else 0.0)
        return NotImplemented

    def __rpow__(self, o):
        if _is_number(o):
            if o < 0:
                raise ValueError(
                    f"a number to a GVar power needs a base >= 0 (got {o:g}): x**y is not real "
                    "for x < 0 and non-integer y"
                )
            v = o**self.mean
            return self._chain(v, v * math.log(o) if o > 0 else 0.0)
        if isinstance(o, np.ndarray):
            return np.power(o, self)
        return NotImplemented

    def __neg__(self):
        return GVar(-self.mean, -self.der, self.blocks)

    def __pos__(self):
        return self

    def __abs__(self):
        return self if self.mean >= 0 else -self

    # comparisons act on the means (so plain-float code runs unchanged)
    def __lt__(self, o):
        return self.mean < _m(o)

    def __le__(self, o):
        return self.mean <= _m(o)

    def __gt__(self, o):
        return self.mean > _m(o)

    def __ge__(self, o):
        return self.mean >= _m(o)

    def __eq__(self, o):
        return self.mean == _m(o)

    def __ne__(self, o):
        return self.mean != _m(o)

    __hash__ = object.__hash__

    def __float__(self):
        return self.mean

    # -- elementary functions (numpy calls these methods on object arrays) --------------------
    def exp(self):
        v = math.exp(self.mean)
        return self._chain(v, v)

    def expm1(self):
        return self._chain(math.expm1(self.mean), math.exp(self.mean))

    def log(self):
        return self._chain(math.log(self.mean), 1.0 / self.mean)

    def log10(self):
        return self._chain(math.log10(self.mean), 1.0 / (self.mean * math.log(10.0)))

    def log1p(self):
        return self._chain(math.log1p(self.mean), 1.0 / (1.0 + self.mean))

    def sqrt(self):
        v = math.sqrt(self.mean)
        return self._chain(v, 0.5 / v)

    def square(self):
        return self._chain(self.mean**2, 2.0 * self.mean)

    def sin(self):
        return self._chain(math.sin(self.mean), math.cos(self.mean))

    def cos(self):
        return self._chain(math.cos(self.mean), -math.sin(self.mean))

    def tan(self):
        v = math.tan(self.mean)
        return self._chain(v, 1.0 + v * v)

    def arcsin(self):
        return self._chain(math.asin(self.mean), 1.0 / math.sqrt(1.0 - self.mean**2))

    def arccos(self):
        return self._chain(math.acos(self.mean), -1.0 / math.sqrt(1.0 - self.mean**2))

    def arctan(self):
        return self._chain(math.atan(self.mean), 1.0 / (1.0 + self.mean**2))

    def sinh(self):
        return self._chain(math.sinh(self.mean), math.cosh(self.mean))

    def cosh(self):
        return self._chain(math.cosh(self.mean), math.sinh(self.mean))

    def tanh(self):
        v = math.tanh(self.mean)
        return self._chain(v, 1.0 - v * v)

    def arctan2(self, x):
        return arctan2(self, x)

    def hypot(self, y):
        return hypot(self, y)

    def absolute(self):
        return abs(self)

    # -- numpy ufuncs -------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """numpy ufuncs with a GVar among the (top-level) inputs.

        ``np.arctan2`` and ``np.hypot`` accept a GVar in either place, next to numbers, float
        arrays and object arrays (numpy's object loops call ``first.arctan2(second)``, which a
        plain number lacks). Every other ufunc runs numpy's object-dtype loop, exactly as for an
        object array of GVars: operators (``np.power(2.0, x)`` is ``2.0 ** x``), and methods for
        the elementary functions (``np.exp(x)`` is ``x.exp()``).
        """
        args = tuple(np.asarray(a, dtype=object) if isinstance(a, GVar) else a for a in inputs)
        vec = _UFUNCS.get(ufunc) if method == "__call__" else None
        if vec is None:
            return getattr(ufunc, method)(*args, **kwargs)
        if not kwargs and all(isinstance(a, GVar) or _is_number(a) for a in inputs):
            return vec[0](*inputs)
        return vec[1](*args, **kwargs)

    # -- text ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        return format_gvar(self.mean, self.sdev)

    def __format__(self, spec: str) -> str:
        """gvar's format specifications (``f"{x:.3p}"``, ``f"{x:.2e}"``): see :func:`format_gvar`."""
        return format_gvar(self.mean, self.sdev, spec)

    def __repr__(self) -> str:
        return f"GVar({self.mean!r}, sdev={self.sdev!r})"


def _is_number(o) -> bool:
    return isinstance(o, int | float | np.integer | np.floating) and not isinstance(o, bool)


def _m(o):
    return o.mean if isinstance(o, GVar) else o


def _const(o, what: str) -> GVar:
    if isinstance(o, GVar):
        return o
    if _is_number(o):
        return GVar(float(o), np.zeros(0), ())
    raise TypeError(f"{what} takes GVars and numbers, got {type(o).__name__}")


def _arctan2(y, x):
    if not (isinstance(y, GVar) or isinstance(x, GVar)):
        return math.atan2(y, x)
    y, x = _const(y, "arctan2"), _const(x, "arctan2")
    r2 = y.mean**2 + x.mean**2
    if r2 == 0:
        raise ZeroDivisionError("arctan2 of GVars at (0, 0): the angle has no derivative there")
    return y._binary(x, math.atan2(y.mean, x.mean), x.mean / r2, -y.mean / r2)


def _hypot(x, y):
    if not (isinstance(x, GVar) or isinstance(y, GVar)):
        return math.hypot(x, y)
    x, y = _const(x, "hypot"), _const(y, "hypot")
    r = math.hypot(x.mean, y.mean)
    if r == 0:
        raise ZeroDivisionError("hypot of GVars at (0, 0): the length has no derivative there")
    return x._binary(y, r, x.mean / r, y.mean / r)


# scalar function and its element-wise (broadcasting, object-array) version
_UFUNCS = {
    np.arctan2: (_arctan2, np.frompyfunc(_arctan2, 2, 1)),
    np.hypot: (_hypot, np.frompyfunc(_hypot, 2, 1)),
}


def _elementwise(which, a, b):
    vec = _UFUNCS[which][1]
    a, b = (np.asarray(v, dtype=object) if isinstance(v, GVar) else v for v in (a, b))
    return vec(a, b)


def arctan2(y, x):
    """Angle of ``(x, y)`` in ``[-pi, pi]`` for GVars, numbers and arrays of them in any mix.

    ``np.arctan2`` does the same when a GVar itself is an argument; this function also takes
    ``(float array, object array of GVars)``, which numpy hands to the first element's
    ``arctan2`` method (absent from a float). The mean is ``math.atan2`` of the means, so
    ``y = -0.0`` with ``x < 0`` gives ``-pi`` as for floats (gvar gives ``+pi``); the derivatives
    are ``x / r**2`` and ``-y / r**2``. Element pairs of two numbers give a float.
    """
    return _elementwise(np.arctan2, y, x)


def hypot(x, y):
    """``sqrt(x**2 + y**2)`` for GVars, numbers and arrays of them in any mix (as :func:`arctan2`)."""
    return _elementwise(np.hypot, x, y)


# ---------------------------------------------------------------------------------------------
# construction
# ---------------------------------------------------------------------------------------------


def gvar(mean, uncertainty):
    """New primary Gaussian variable(s), independent of every GVar made before.

    ``gvar(x, s)``: a scalar with standard deviation ``s``. ``gvar(means, sdevs)`` with 1D
    ``sdevs``: independent components. ``gvar(means, cov)`` with a 2D covariance: correlated
    components (an object array of GVars).
    """
    mu = np.asarray(mean, dtype=float)
    unc = np.asarray(uncertainty, dtype=float)
    if mu.ndim == 0:
        if unc.ndim != 0 or not math.isfinite(float(unc)) or unc < 0:
            raise InputError(f"sdev must be a finite number >= 0, got {uncertainty}", field="sdev")
        block = _Block(np.array([[float(unc) ** 2]]))
        return GVar(float(mu), np.ones(1), (block,))
    flat = mu.ravel()
    n = flat.size
    if unc.shape == mu.shape:
        if np.any(~np.isfinite(unc)) or np.any(unc < 0):
            raise InputError("sdevs must be finite and >= 0", field="sdev")
        cov = np.diag(unc.ravel() ** 2)
    elif unc.shape == (n, n):
        cov = 0.5 * (unc + unc.T)
        if np.any(~np.isfinite(cov)) or np.linalg.eigvalsh(cov).min() < -1e-10 * max(
            1.0, np.abs(cov).max()
        ):
            raise InputError(
                "covariance must be finite, symmetric, positive semi-definite", field="cov"
            )
    else:
        raise InputError(
            f"uncertainty shape {unc.shape} matches neither the means {mu.shape} nor ({n}, {n})",
            field="cov",
        )
    block = _Block(cov)
    eye = np.eye(n)
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = GVar(flat[i], eye[i].copy(), (block,))
    return out.reshape(mu.shape)


def from_fit(result) -> dict[str, GVar]:
    """Correlated GVars ``{name: value +- error}`` of a fit's free parameters.

    ``result``: a :class:`~eftflow.inference.fit.FitResult`, or ``(values, covariance, names)``.
    Fixed parameters come back as exact numbers (zero error).
    """
    if hasattr(result, "optimize") and hasattr(result, "covariance"):
        if result.covariance is None:
            raise InputError("the fit result has no covariance: run Fit.covariance()")
        best = result.optimize.parameters
        names = list(result.covariance.names)
        values = [best[n] for n in names]
        cov = np.asarray(result.covariance.matrix, dtype=float)
        fixed = {n: v for n, v in best.items() if n not in names}
    else:
        values, cov, names = result
        names = list(names)
        cov = np.asarray(cov, dtype=float)
        fixed = {}
    g = gvar(np.asarray(values, dtype=float), cov)
    out = dict(zip(names, g.tolist()))
    out.update({n: gvar(v, 0.0) for n, v in fixed.items()})
    return out


# ---------------------------------------------------------------------------------------------
# statistics of collections
# ---------------------------------------------------------------------------------------------


def _flatten(xs) -> list:
    if isinstance(xs, GVar):
        return [xs]
    if isinstance(xs, Mapping):
        return [g for v in xs.values() for g in _flatten(v)]
    if isinstance(xs, np.ndarray):
        return [g for g in xs.ravel().tolist()]
    if isinstance(xs, Iterable):
        return [g for v in xs for g in _flatten(v)]
    if _is_number(xs):
        return [GVar(float(xs), np.zeros(0), ())]
    raise InputError(f"expected GVars, got {type(xs).__name__}")


def _stack(gs: Sequence) -> tuple[np.ndarray, tuple]:
    gs = [g if isinstance(g, GVar) else GVar(float(g), np.zeros(0), ()) for g in gs]
    blocks: tuple = ()
    for g in gs:
        blocks = _union(blocks, g.blocks)
    if not gs:
        return np.zeros((0, 0)), blocks
    d = np.array([_remap(g.der, g.blocks, blocks) for g in gs]).reshape(len(gs), -1)
    return d, blocks


def _apply(xs, f):
    if isinstance(xs, GVar):
        return f(xs)
    if isinstance(xs, Mapping):
        return {k: _apply(v, f) for k, v in xs.items()}
    if _is_number(xs):
        return f(GVar(float(xs), np.zeros(0), ()))
    arr = np.asarray(xs, dtype=object)
    return np.vectorize(lambda g: _apply(g, f), otypes=[float])(arr)


def mean(xs):
    """Means (same structure)."""
    return _apply(xs, lambda g: g.mean)


def sdev(xs):
    """Standard deviations (same structure)."""
    return _apply(xs, lambda g: g.sdev)


def var(xs):
    """Variances (same structure)."""
    return _apply(xs, lambda g: g.var)


def evalcov(xs) -> np.ndarray:
    """Covariance matrix of the GVars in ``xs`` (flattened; dicts in insertion order)."""
    d, blocks = _stack(_flatten(xs))
    cd = np.array([_cov_times(blocks, row) for row in d]).reshape(d.shape)
    return d @ cd.T


def evalcorr(xs) -> np.ndarray:
    """Correlation matrix (0 where a standard deviation is 0, 1 on the diagonal)."""
    c = evalcov(xs)
    s = np.sqrt(np.clip(np.diag(c), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = c / np.outer(s, s)
    r[~np.isfinite(r)] = 0.0
    np.fill_diagonal(r, 1.0)
    return r


def partial_sdev(f: GVar, *inputs) -> float:
    """Error of ``f`` due to the primary sources behind ``inputs`` (gvar's ``partialsdev``).

    As in gvar, the sources are the primaries the ``inputs`` depend on *and every primary
    correlated with one of them* (a nonzero covariance element): the variance of correlated
    primaries cannot be split between them. So for ``b = gvar(means, cov)`` with correlated
    components, the error due to ``b[0]`` includes what comes from the ``b[1]`` correlated with
    it, and ``partial_sdev(f, b[0]) == partial_sdev(f, b)`` when all of ``b`` is correlated.
    """
    ins = [g for x in inputs for g in _flatten(x)]
    d_in, b_in = _stack(ins)
    blocks = _union(f.blocks, b_in)
    df = _remap(f.der, f.blocks, blocks)
    mask = np.zeros(len(df), dtype=bool)
    if ins:
        direct = np.any(np.array([_remap(r, b_in, blocks) for r in d_in]) != 0, axis=0)
        # extend to the primaries correlated with those (gvar: rows of the covariance)
        pos = 0
        for b in blocks:
            sel = direct[pos : pos + b.size]
            if sel.any():
                mask[pos : pos + b.size] = np.any(b.cov[sel] != 0, axis=0) | sel
            pos += b.size
    dm = np.where(mask, df, 0.0)
    return math.sqrt(max(float(dm @ _cov_times(blocks, dm)), 0.0))
