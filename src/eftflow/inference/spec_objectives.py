"""The objectives of fit files (:mod:`eftflow.inference.specs`) and the readers of their fields.

``gaussian_objective`` (a mean and covariance, information or errors, optional predictions, or a
Fisher information JSON) and ``poisson_objective`` (``counting`` and ``histogram``) turn a fit
file's likelihood section into ``-2 ln L`` as a function of the free parameters; ``check_keys``,
``number``, ``array``, ``expression`` and ``counts`` read one field each and raise an
:class:`~eftflow.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

import math

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "check_keys",
    "number",
    "array",
    "expression",
    "counts",
    "poisson_deviance",
    "expressions_fn",
    "poisson_objective",
    "gaussian_objective",
    "BIG",
]

#: the objective's value where the prediction is invalid (negative or non-finite expectations)
BIG = 1e30


def check_keys(section, allowed, where: str, file) -> dict:
    """``section`` (a mapping) if all its keys are ``allowed``; else :class:`InputError` naming
    the first unknown key (at ``where``, or at the top level when empty)."""
    if not isinstance(section, dict):
        raise InputError("expected a mapping", file=file, field=where or "(top level)")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        prefix = f"{where}." if where else ""
        raise InputError(
            f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(allowed))}",
            file=file,
            field=prefix + str(unknown[0]),
        )
    return section


def number(value, field: str, file, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise InputError(f"expected a number, got {value!r}", file=file, field=field)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a number, got {value!r}", file=file, field=field) from None
    if math.isnan(out):
        raise InputError("expected a number, got NaN", file=file, field=field)
    return out


def array(value, ndim: int, field: str, file) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError("expected numbers", file=file, field=field) from None
    if arr.ndim != ndim or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(
            f"expected a non-empty {ndim}D array of finite numbers", file=file, field=field
        )
    return arr


def expression(text, names, field: str, file):
    from eftflow.physics.expression import ArithmeticExpression

    if not isinstance(text, str | int | float) or isinstance(text, bool):
        raise InputError(f"expected an expression, got {text!r}", file=file, field=field)
    return ArithmeticExpression(str(text), tuple(names), source=(file, field))


# -- objectives -----------------------------------------------------------------------------
def poisson_deviance(expected, observed):
    """``2 sum(lam - n + n ln(n/lam))`` of expected counts (callable) and observed counts."""
    n = np.asarray(observed, dtype=float)

    def objective(p):
        lam = np.asarray(expected(p), dtype=float)
        if not np.all(np.isfinite(lam)) or np.any(lam < 0) or np.any((lam == 0) & (n > 0)):
            return BIG
        with np.errstate(divide="ignore", invalid="ignore"):
            log_term = np.where(
                n > 0, n * np.log(np.where(n > 0, n, 1.0) / np.where(lam > 0, lam, 1.0)), 0.0
            )
        return float(2.0 * np.sum(lam - n + log_term))

    return objective


def expressions_fn(texts, names, where, file):
    exprs = [expression(t, names, f"{where}[{i}]", file) for i, t in enumerate(texts)]

    def fn(p):
        env = dict(zip(names, p))
        return np.array([float(e(**env)) for e in exprs])

    return fn


def counts(value, n_bins, field, file) -> np.ndarray:
    arr = array(value, 1, field, file)
    if n_bins is not None and arr.shape != (n_bins,):
        raise InputError(f"expected {n_bins} bins, got {arr.size}", file=file, field=field)
    if np.any(arr < 0):
        raise InputError("counts must be >= 0", file=file, field=field)
    return arr


def poisson_objective(kind, sec, names, file):
    if kind == "counting":
        check_keys(sec, {"observed", "expected", "signal", "background", "poi"}, kind, file)
        sec = dict(sec)
        for key in ("observed", "signal", "background"):
            if key in sec and not isinstance(sec[key], list):
                sec[key] = [sec[key]]
        if "expected" in sec and not isinstance(sec["expected"], list):
            sec["expected"] = [sec["expected"]]
    else:
        check_keys(sec, {"observed", "expected", "signal", "background", "poi"}, kind, file)
    if "observed" not in sec:
        raise InputError("missing required key", file=file, field=f"{kind}.observed")
    if "expected" in sec:
        texts = sec["expected"]
        if not isinstance(texts, list) or not texts:
            raise InputError("expected a list of expressions", file=file, field=f"{kind}.expected")
        expected = expressions_fn(texts, names, f"{kind}.expected", file)
        n_bins = len(texts)
    else:
        if "signal" not in sec:
            raise InputError(
                "give expected (expressions) or signal (+ background)",
                file=file,
                field=f"{kind}.expected",
            )
        s = counts(sec["signal"], None, f"{kind}.signal", file)
        n_bins = s.size
        b = counts(sec.get("background", [0.0] * n_bins), n_bins, f"{kind}.background", file)
        poi = str(sec.get("poi", names[0]))
        if poi not in names:
            raise InputError(
                f"unknown parameter {poi!r}; known: {', '.join(names)}",
                file=file,
                field=f"{kind}.poi",
            )
        j = names.index(poi)

        def expected(p, s=s, b=b, j=j):
            return p[j] * s + b

    observed = counts(sec["observed"], n_bins, f"{kind}.observed", file)
    return poisson_deviance(expected, observed)


def gaussian_objective(sec, names, file):
    check_keys(
        sec,
        {"mean", "covariance", "information", "errors", "prediction", "fisher"},
        "gaussian",
        file,
    )
    if "fisher" in sec:
        if any(k in sec for k in ("covariance", "information", "errors")):
            raise InputError(
                "give fisher or covariance/information/errors", file=file, field="gaussian.fisher"
            )
        from eftflow.inference.fisher_gaussian import fisher_gaussian

        mean_f, inv = fisher_gaussian(sec["fisher"] or {}, names, file)
        mean = mean_f if sec.get("mean") is None else array(sec["mean"], 1, "gaussian.mean", file)
    else:
        if "mean" not in sec:
            raise InputError("missing required key", file=file, field="gaussian.mean")
        mean = array(sec["mean"], 1, "gaussian.mean", file)
        given = [k for k in ("covariance", "information", "errors") if k in sec]
        if len(given) != 1:
            raise InputError(
                "give exactly one of covariance, information, errors",
                file=file,
                field="gaussian.covariance",
            )
        key = given[0]
        if key == "errors":
            err = array(sec[key], 1, "gaussian.errors", file)
            if np.any(err <= 0):
                raise InputError("errors must be > 0", file=file, field="gaussian.errors")
            inv = np.diag(1.0 / err**2) if err.size == mean.size else None
        else:
            m = array(sec[key], 2, f"gaussian.{key}", file)
            if m.shape[0] == m.shape[1] != mean.size:
                raise InputError(
                    f"{mean.size} values, but gaussian.{key} is {m.shape[0]}x{m.shape[0]}",
                    file=file,
                    field="gaussian.mean",
                )
            if m.shape != (mean.size, mean.size) or not np.allclose(m, m.T):
                raise InputError(
                    f"expected a symmetric {mean.size}x{mean.size} matrix",
                    file=file,
                    field=f"gaussian.{key}",
                )
            if key == "covariance":
                try:
                    np.linalg.cholesky(m)
                except np.linalg.LinAlgError:
                    raise InputError(
                        "covariance is not positive definite",
                        file=file,
                        field="gaussian.covariance",
                    ) from None
                inv = np.linalg.inv(m)
            else:
                inv = m
        if inv is None or inv.shape != (mean.size, mean.size):
            raise InputError(
                f"expected {mean.size} entries", file=file, field=f"gaussian.{given[0]}"
            )
    pred_texts = sec.get("prediction")
    if pred_texts is None:
        if mean.size != len(names):
            raise InputError(
                f"{mean.size} measured values for {len(names)} parameters: give prediction "
                "expressions",
                file=file,
                field="gaussian.prediction",
            )

        def prediction(p):
            return np.asarray(p, dtype=float)
    else:
        if not isinstance(pred_texts, list) or len(pred_texts) != mean.size:
            raise InputError(
                f"expected {mean.size} expressions", file=file, field="gaussian.prediction"
            )
        prediction = expressions_fn(pred_texts, names, "gaussian.prediction", file)

    def objective(p):
        with np.errstate(all="ignore"):  # an overflowing prediction is handled just below
            r = mean - prediction(p)
            v = float(r @ inv @ r)
        return v if math.isfinite(v) else BIG

    return objective


# -- the fit -----------------------------------------------------------------------------------
