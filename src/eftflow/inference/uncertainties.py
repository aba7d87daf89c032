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
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from eftflow.errors import InputError
from eftflow.inference.gvar_core import (
    GVar,
    _flatten,
    _stack,
    arctan2,
    evalcorr,
    evalcov,
    fmt,
    format_gvar,
    from_fit,
    gvar,
    hypot,
    mean,
    partial_sdev,
    sdev,
    var,
)

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
    "correlate",
    "fmt",
    "format_gvar",
    "arctan2",
    "hypot",
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


def error_budget(outputs: Mapping, inputs: Mapping, *, percent: bool = False) -> dict:
    """``{output: {input group: partial error, ..., "total": sdev}}``.

    ``percent`` gives errors in % of ``|mean|`` (as gvar's ``fmt_errorbudget``); for an output
    whose mean is 0 they are ``inf`` (0 where the error is 0), never absolute errors under a
    percent heading. For groups built on independent primaries and a linear output the partial
    errors add in quadrature to the total.
    """
    out = {}
    for oname, o in outputs.items():
        if not isinstance(o, GVar):
            raise InputError(f"output {oname!r} is not a GVar", field=f"outputs.{oname}")
        row = {iname: partial_sdev(o, i) for iname, i in inputs.items()}
        row["total"] = o.sdev
        if percent:
            if o.mean != 0:
                row = {k: 100.0 * v / abs(o.mean) for k, v in row.items()}
            else:
                row = {k: (np.inf if v > 0 else 0.0) for k, v in row.items()}
        out[oname] = row
    return out


def correlate(xs, corr):
    """New GVars with the means and standard deviations of ``xs`` and correlation matrix ``corr``.

    As gvar's ``correlate``: ``xs`` (array, list or dict of GVars; flattened, dicts in insertion
    order) are typically uncorrelated results quoted with a separately known correlation
    matrix. The result has the structure of ``xs``; its covariance is
    ``sdev_i corr_ij sdev_j``. The returned GVars are new primaries, independent of every
    earlier GVar (the correlations of ``xs`` with anything else are not kept).
    """
    gs = _flatten(xs)
    n = len(gs)
    c = np.asarray(corr, dtype=float)
    if c.shape != (n, n):
        raise InputError(f"corr has shape {c.shape}, expected ({n}, {n})", field="corr")
    if (
        not np.all(np.isfinite(c))
        or not np.allclose(c, c.T, rtol=0, atol=1e-12)
        or not np.allclose(np.diag(c), 1.0, rtol=0, atol=1e-12)
        or np.any(np.abs(c) > 1 + 1e-12)
    ):
        raise InputError(
            "corr must be a symmetric matrix with unit diagonal and entries in [-1, 1]",
            field="corr",
        )
    s = np.array([g.sdev for g in gs])
    g = gvar(np.array([x.mean for x in gs]), s[:, None] * c * s[None, :])
    if isinstance(xs, GVar):
        return g[0]
    if isinstance(xs, Mapping):
        out, pos = {}, 0
        for k, v in xs.items():
            size = len(_flatten(v))
            out[k] = g[pos] if isinstance(v, GVar) else g[pos : pos + size].reshape(np.shape(v))
            pos += size
        return out
    return g.reshape(np.shape(np.asarray(xs, dtype=object)))


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------


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


_MIN_REL_STEP = 2.0**-26  # ~1.5e-8, sqrt of the float64 epsilon


def propagate(f: Callable[[np.ndarray], np.ndarray], xs, *, rel_step: float = 1e-4):
    """Linear propagation through any function of a float array, Jacobian by central differences.

    The step for each input is ``rel_step`` times its standard deviation, but never below
    ``1.5e-8 |mean|`` (a smaller step is lost in the rounding of the mean; inputs with a relative
    error under ~1e-4 get that floor). Returns GVars of the same shape as ``f(mean(xs))``,
    correlated with ``xs``.
    """
    from .fit.numdiff import jacobian

    gs = _flatten(xs)
    x0 = np.array([g.mean for g in gs])
    sd = np.array([g.sdev for g in gs])
    # a step far below the rounding of x0 (sdev/|x0| < ~1e-8) would return a garbage derivative:
    # never step below ~sqrt(machine epsilon) * |x0|
    floor = _MIN_REL_STEP * np.abs(x0)
    steps = np.where(
        sd > 0, np.maximum(rel_step * sd, floor), rel_step * np.maximum(np.abs(x0), 1.0)
    )
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
