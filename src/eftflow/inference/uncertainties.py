"""Correlated Gaussian error propagation with error budgets (in the spirit of gvar, no dependency).

Design (no global state): every :class:`GVar` carries its mean, its gradient ``der`` with respect
to *primary* independent sources and a tuple of the primary *blocks* it depends on. A block is
created by :func:`gvar` (one scalar, or a correlated vector with its covariance) and owns the
covariance of its primaries; blocks created separately are independent. Operations on GVars of
different blocks merge the block tuples, so

    z = z.mean + sum_p (p - p.mean) * dz/dp,      cov(z1, z2) = d1^T C d2

with ``C`` block-diagonal over the blocks. Derivatives come from forward-mode automatic
differentiation of the arithmetic and the numpy functions (``np.exp``, ``np.log``,
``np.sqrt``, ``np.sin``, ...), or from central differences in :func:`propagate` for arbitrary
functions of float arrays.

Example
-------
>>> m = gvar(125.7, 0.4)
>>> p = gvar(50.0, 0.15)
>>> E = (p ** 2 + m ** 2) ** 0.5
>>> print(E)
135.28(38)
>>> print(fmt_errorbudget({"E": E, "E/m": E / m}, {"m": m, "p": p}))
Partial % Errors:
                    E       E/m
         m:      0.27      0.04
         p:      0.04      0.04
-------------------------------
     total:      0.28      0.06
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from eftflow.errors import InputError

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
    "error_budget",
    "fmt",
    "fmt_values",
    "fmt_errorbudget",
    "propagate",
    "sample",
    "bootstrap_iter",
    "dumps",
    "loads",
    "dump",
    "load",
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
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, o):
        if isinstance(o, GVar):
            return self._binary(o, self.mean - o.mean, 1.0, -1.0)
        if _is_number(o):
            return GVar(self.mean - o, self.der, self.blocks)
        return NotImplemented

    def __rsub__(self, o):
        if _is_number(o):
            return GVar(o - self.mean, -self.der, self.blocks)
        return NotImplemented

    def __mul__(self, o):
        if isinstance(o, GVar):
            return self._binary(o, self.mean * o.mean, o.mean, self.mean)
        if _is_number(o):
            return self._chain(self.mean * o, o)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, o):
        if isinstance(o, GVar):
            return self._binary(o, self.mean / o.mean, 1.0 / o.mean, -self.mean / o.mean**2)
        if _is_number(o):
            return self._chain(self.mean / o, 1.0 / o)
        return NotImplemented

    def __rtruediv__(self, o):
        if _is_number(o):
            return self._chain(o / self.mean, -o / self.mean**2)
        return NotImplemented

    def __pow__(self, o):
        if isinstance(o, GVar):
            v = self.mean**o.mean
            return self._binary(o, v, o.mean * self.mean ** (o.mean - 1), v * math.log(self.mean))
        if _is_number(o):
            return self._chain(self.mean**o, o * self.mean ** (o - 1) if o != 0 else 0.0)
        return NotImplemented

    def __rpow__(self, o):
        if _is_number(o):
            v = o**self.mean
            return self._chain(v, v * math.log(o) if o > 0 else 0.0)
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
        y = self
        if not isinstance(x, GVar):
            x = GVar(float(x), np.zeros(0), ())
        r2 = y.mean**2 + x.mean**2
        return y._binary(x, math.atan2(y.mean, x.mean), x.mean / r2, -y.mean / r2)

    def absolute(self):
        return abs(self)

    # -- text ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        return fmt(self)

    def __repr__(self) -> str:
        return f"GVar({self.mean!r}, sdev={self.sdev!r})"


def _is_number(o) -> bool:
    return isinstance(o, int | float | np.integer | np.floating) and not isinstance(o, bool)


def _m(o):
    return o.mean if isinstance(o, GVar) else o


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
    """Error of ``f`` due to the primary sources behind ``inputs`` (gvar's ``partialsdev``)."""
    ins = [g for x in inputs for g in _flatten(x)]
    d_in, b_in = _stack(ins)
    blocks = _union(f.blocks, b_in)
    df = _remap(f.der, f.blocks, blocks)
    mask = np.zeros(len(df), dtype=bool)
    if ins:
        mask = np.any(np.array([_remap(r, b_in, blocks) for r in d_in]) != 0, axis=0)
    dm = np.where(mask, df, 0.0)
    return math.sqrt(max(float(dm @ _cov_times(blocks, dm)), 0.0))


def error_budget(outputs: Mapping, inputs: Mapping, *, percent: bool = False) -> dict:
    """``{output: {input group: partial error, ..., "total": sdev}}``.

    ``percent`` gives errors in % of ``|mean|`` (as gvar's ``fmt_errorbudget``). For groups
    built on independent primaries and a linear output the partial errors add in quadrature to
    the total.
    """
    out = {}
    for oname, o in outputs.items():
        if not isinstance(o, GVar):
            raise InputError(f"output {oname!r} is not a GVar", field=f"outputs.{oname}")
        scale = 100.0 / abs(o.mean) if percent and o.mean != 0 else 1.0
        row = {iname: scale * partial_sdev(o, i) for iname, i in inputs.items()}
        row["total"] = scale * o.sdev
        out[oname] = row
    return out


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------


def fmt(x: GVar, ndigits: int = 2) -> str:
    """``value(err)`` with ``ndigits`` significant digits in the error: ``135.28(38)``."""
    m, s = x.mean, x.sdev
    if s == 0 or not math.isfinite(s):
        return f"{m:g}({'0' if s == 0 else s})"
    d = ndigits - 1 - math.floor(math.log10(s))
    if d > 12 + max(0, math.floor(math.log10(abs(m)))) if m else d > 12:
        return f"{m:g} ± {s:.{ndigits}g}"  # error far below the printed precision
    if d > 0:
        err = f"{s:.{d}f}" if s >= 1 else f"{round(s * 10**d):d}"
        return f"{m:.{d}f}({err})"
    return f"{round(m, d):.0f}({round(s, d):.0f})"


def fmt_values(outputs: Mapping, ndigits: int = 2) -> str:
    """One ``name: value(err)`` line per output."""
    width = max((len(str(k)) for k in outputs), default=0)
    return "\n".join(f"{str(k):>{width + 4}}: {fmt(v, ndigits)}" for k, v in outputs.items())


def fmt_errorbudget(
    outputs: Mapping,
    inputs: Mapping,
    *,
    percent: bool = True,
    ndecimal: int = 2,
    colwidth: int = 10,
) -> str:
    """Error-budget table: a column per output, a row per input group, then the total."""
    budget = error_budget(outputs, inputs, percent=percent)
    names = list(outputs)
    w0 = max([len(str(k)) for k in inputs] + [5]) + 5
    lines = ["Partial % Errors:" if percent else "Partial Errors:"]
    lines.append(" " * (w0 + 1) + "".join(f"{str(n):>{colwidth}}" for n in names))
    for iname in inputs:
        vals = "".join(f"{budget[n][iname]:>{colwidth}.{ndecimal}f}" for n in names)
        lines.append(f"{str(iname) + ':':>{w0 + 1}}{vals}")
    lines.append("-" * (w0 + 1 + colwidth * len(names)))
    vals = "".join(f"{budget[n]['total']:>{colwidth}.{ndecimal}f}" for n in names)
    lines.append(f"{'total:':>{w0 + 1}}{vals}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# arbitrary functions, sampling, persistence
# ---------------------------------------------------------------------------------------------


def propagate(f: Callable[[np.ndarray], np.ndarray], xs, *, rel_step: float = 1e-4):
    """Linear propagation through any function of a float array, Jacobian by central differences.

    Returns GVars of the same shape as ``f(mean(xs))``, correlated with ``xs``.
    """
    from .fit.numdiff import jacobian

    gs = _flatten(xs)
    x0 = np.array([g.mean for g in gs])
    sd = np.array([g.sdev for g in gs])
    steps = np.where(sd > 0, rel_step * sd, rel_step * np.maximum(np.abs(x0), 1.0))
    shape = np.shape(f(x0.reshape(np.shape(mean(xs)) if not isinstance(xs, Mapping) else -1)))

    def flat_f(x):
        arg = x.reshape(np.shape(mean(xs))) if not isinstance(xs, Mapping) else x
        return np.asarray(f(arg), dtype=float).ravel()

    y0 = flat_f(x0)
    jac = jacobian(flat_f, x0, steps).reshape(len(y0), len(x0))
    d, blocks = _stack(gs)
    out = np.empty(len(y0), dtype=object)
    for i in range(len(y0)):
        out[i] = GVar(y0[i], jac[i] @ d, blocks)
    return out[0] if shape == () else out.reshape(shape)


def sample(xs, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` correlated Gaussian draws of the flattened ``xs``: array ``(n, len)``."""
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng must be a numpy.random.Generator", field="rng")
    gs = _flatten(xs)
    mu = np.array([g.mean for g in gs])
    cov = evalcov(gs)
    w, v = np.linalg.eigh(cov)
    a = v * np.sqrt(np.clip(w, 0, None))
    return mu + rng.standard_normal((int(n), len(mu))) @ a.T


def bootstrap_iter(xs, n: int, rng: np.random.Generator):
    """Yield ``n`` copies of ``xs`` (flattened) whose means are drawn from its distribution,
    with the same covariance (new independent GVars) - for checking propagation by Monte Carlo."""
    gs = _flatten(xs)
    cov = evalcov(gs)
    for draw in sample(gs, n, rng):
        yield gvar(draw, cov)


def dumps(xs: Mapping[str, GVar] | Sequence[GVar]) -> str:
    """JSON text with means and the full covariance (correlations kept among the dumped ones)."""
    if isinstance(xs, Mapping):
        names = [str(k) for k in xs]
        gs = [xs[k] for k in xs]
    else:
        names = None
        gs = _flatten(xs)
    return json.dumps(
        {
            "format": "eftflow-gvar-1",
            "names": names,
            "mean": [g.mean for g in gs],
            "cov": evalcov(gs).tolist(),
        }
    )


def loads(text: str):
    """Inverse of :func:`dumps`: a dict (if names were dumped) or an array of GVars."""
    try:
        data = json.loads(text)
        mu, cov, names = data["mean"], data["cov"], data.get("names")
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"not an eftflow GVar dump: {err}", field="json") from None
    g = gvar(np.asarray(mu, dtype=float), np.asarray(cov, dtype=float))
    return dict(zip(names, g.tolist())) if names is not None else g


def dump(xs, path: str | os.PathLike) -> None:
    """Write :func:`dumps` to ``path`` atomically."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(dumps(xs))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike):
    """Read a file written by :func:`dump`."""
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", file=str(path)) from None
    try:
        return loads(text)
    except InputError as err:
        raise InputError(err.message, file=str(path), field=err.field) from None
