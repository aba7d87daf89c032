"""Fits described in a YAML/JSON file: the library behind ``eftflow fit SPEC``.

A fit file names the likelihood (``kind``), the parameters, constraints and what to compute::

    kind: gaussian                 # gaussian | counting | histogram  (objective: -2 ln L)
    parameters:
      a: {value: 0.0, lower: -5, upper: 5, scale: 0.1}
      b: 0.0                       # shorthand: a starting value
      c: {value: 1.0, fixed: true}
    constraints:
      - {name: sum, type: linear, coefficients: {a: 1, b: 1}, lower: 1, upper: 1}
      - {name: disc, type: nonlinear, expression: "a**2 + b**2", upper: 4}
    backend: null                  # minuit | scipy (null: minuit, scipy with constraints)
    minos: true                    # true (every free parameter), false, or a list of names
    sigma: 1                       # MINOS/profile level: sigma (or cl: 0.68)
    profiles: [a]                  # optional MINOS profiles (others re-optimised)
    contours: [[a, b]]             # optional MINOS contours (2-parameter region, 1 sigma)
    gaussian:                      # -2 ln L = r^T C^-1 r,  r = mean - prediction(theta)
      mean: [1.0, 2.0]
      covariance: [[1, 0], [0, 4]] # or information: [[...]] (C^-1), or errors: [...]
      prediction: [a, b]           # optional safe expressions in the parameter names

The other likelihoods::

    kind: counting                 # n ~ Poisson(expected(theta))
    counting: {observed: 12, expected: "5*mu + 10"}

    kind: histogram                # n_i ~ Poisson(expected_i(theta))
    histogram:
      observed: [62, 24, 7]
      expected: ["50*mu + 10", "20*mu + 5", "5*mu + 1"]
      # or: signal: [50, 20, 5], background: [10, 5, 1], poi: mu

    kind: gaussian                 # the Gaussian approximation of a Fisher information JSON
    gaussian:
      fisher: {file: fisher_information.json, analysis: truth, profiled: true}
      mean: null                   # default: the file's reference theta

Expressions (``prediction``, ``expected``, nonlinear constraints) are parsed by
:class:`eftflow.physics.expression.ArithmeticExpression` (numbers, parameter names, ``+ - * / **``,
whitelisted functions); nothing is passed to ``eval``. Poisson objectives use the saturated form
``2 sum(lambda - n + n ln(n / lambda))`` (a chi-squared-like deviance; same minimum and errors as
``-2 ln L``).

Example
-------
>>> spec = {"kind": "gaussian", "parameters": {"a": 0.0, "b": 0.0},
...         "gaussian": {"mean": [1.0, 2.0], "errors": [1.0, 2.0]},
...         "constraints": [{"type": "linear", "coefficients": {"a": 1, "b": 1}, "upper": 1}]}
>>> out, _ = run_fit_spec(spec)
>>> [round(out["best_fit"][k], 4) for k in ("a", "b")]
[0.6, 0.4]
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from eftflow.errors import BackendError, EftflowError, InputError

__all__ = ["read_spec", "check_keys", "build_fit", "run_fit_spec", "FIT_KINDS"]

log = logging.getLogger(__name__)

FIT_KINDS = ("gaussian", "counting", "histogram")
_TOP_KEYS = {
    "kind",
    "parameters",
    "constraints",
    "backend",
    "tol",
    "minos",
    "sigma",
    "cl",
    "profiles",
    "profile_points",
    "contours",
    "contour_points",
    *FIT_KINDS,
}
_BIG = 1e30
_OBJECTIVE_LABEL = {
    "gaussian": "-2lnL",
    "counting": "-2lnL (saturated Poisson deviance -2 ln(L / L_saturated))",
    "histogram": "-2lnL (saturated Poisson deviance -2 ln(L / L_saturated))",
}


def read_spec(path, *, what: str = "a fit description", doc: str = "docs/statistics.md") -> dict:
    """Read a YAML or JSON mapping (``.json`` is parsed as JSON, anything else as YAML).

    A workflow configuration given by mistake is named as such (``what``: the kind of file
    expected; ``doc``: where it is described).
    """
    import yaml

    from eftflow.config import refuse_workflow_config

    path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise InputError(f"cannot read the file: {err.strerror}", file=path) from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise InputError(f"not valid YAML/JSON: {err}", file=path) from None
    if not isinstance(data, dict):
        raise InputError("the description must be a mapping", file=path)
    refuse_workflow_config(data, file=path, what=what, doc=doc)
    return data


# -- small validated getters ------------------------------------------------------------------
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


def _number(value, field: str, file, *, allow_none: bool = False):
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


def _array(value, ndim: int, field: str, file) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError("expected numbers", file=file, field=field) from None
    if arr.ndim != ndim or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(
            f"expected a non-empty {ndim}D array of finite numbers", file=file, field=field
        )
    return arr


def _expression(text, names, field: str, file):
    from eftflow.physics.expression import ArithmeticExpression

    if not isinstance(text, str | int | float) or isinstance(text, bool):
        raise InputError(f"expected an expression, got {text!r}", file=file, field=field)
    return ArithmeticExpression(str(text), tuple(names), source=(file, field))


# -- parameters and constraints ---------------------------------------------------------------
def _parameters(spec, file):
    from eftflow.inference.fit import Parameter, Parameters

    raw = spec.get("parameters")
    if raw is None:
        raise InputError("missing required key", file=file, field="parameters")
    if isinstance(raw, dict):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or "name" not in item:
                raise InputError(
                    "list entries need a name", file=file, field=f"parameters[{i}].name"
                )
            items.append((str(item["name"]), {k: v for k, v in item.items() if k != "name"}))
    else:
        raise InputError("expected a mapping name -> settings", file=file, field="parameters")
    pars = []
    for name, v in items:
        where = f"parameters.{name}"
        if not isinstance(v, dict):
            v = {"value": v}
        check_keys(v, {"value", "lower", "upper", "scale", "fixed"}, where, file)
        try:
            pars.append(
                Parameter(
                    name,
                    _number(v.get("value", 0.0), f"{where}.value", file),
                    scale=_number(v.get("scale"), f"{where}.scale", file, allow_none=True),
                    lower=_number(v.get("lower"), f"{where}.lower", file, allow_none=True),
                    upper=_number(v.get("upper"), f"{where}.upper", file, allow_none=True),
                    fixed=bool(v.get("fixed", False)),
                )
            )
        except InputError as err:
            if err.file is not None:
                raise
            raise InputError(err.message, file=file, field=err.field or where) from None
    try:
        return Parameters(pars)
    except InputError as err:
        raise InputError(err.message, file=file, field=err.field or "parameters") from None


def _constraints(spec, names, file):
    from eftflow.inference.fit import LinearConstraint, NonlinearConstraint

    raw = spec.get("constraints") or []
    if not isinstance(raw, list):
        raise InputError("expected a list of constraints", file=file, field="constraints")
    out = []
    allowed = {"name", "type", "coefficients", "expression", "lower", "upper", "equal"}
    for i, c in enumerate(raw):
        where = f"constraints[{i}]"
        check_keys(c, allowed, where, file)
        name = str(c.get("name", f"constraint_{i}"))
        kind = c.get("type", "nonlinear" if "expression" in c else "linear")
        if "equal" in c:
            if "lower" in c or "upper" in c:
                raise InputError("give equal or lower/upper", file=file, field=f"{where}.equal")
            lo = hi = _number(c["equal"], f"{where}.equal", file)
        else:
            lo = _number(c.get("lower"), f"{where}.lower", file, allow_none=True)
            hi = _number(c.get("upper"), f"{where}.upper", file, allow_none=True)
            if lo is None and hi is None:
                raise InputError(
                    "a constraint needs lower, upper or equal", file=file, field=f"{where}.lower"
                )
            if lo is not None and hi is not None and lo > hi:
                raise InputError(
                    f"the constraint's range [{lo}, {hi}] is empty (infeasible)",
                    file=file,
                    field=f"{where}.lower",
                )
        lo = -math.inf if lo is None else lo
        hi = math.inf if hi is None else hi
        if kind == "linear":
            coef = c.get("coefficients")
            if not isinstance(coef, dict) or not coef:
                raise InputError(
                    "expected a mapping parameter -> coefficient",
                    file=file,
                    field=f"{where}.coefficients",
                )
            for k in coef:
                if k not in names:
                    raise InputError(
                        f"unknown parameter {k!r}; known: {', '.join(names)}",
                        file=file,
                        field=f"{where}.coefficients.{k}",
                    )
            coef = {k: _number(v, f"{where}.coefficients.{k}", file) for k, v in coef.items()}
            out.append(LinearConstraint(coef, lower=lo, upper=hi, name=name))
        elif kind == "nonlinear":
            if "expression" not in c:
                raise InputError("missing required key", file=file, field=f"{where}.expression")
            expr = _expression(c["expression"], names, f"{where}.expression", file)

            def fun(p, expr=expr):
                return float(expr(**dict(zip(names, p))))

            out.append(NonlinearConstraint(fun, lower=lo, upper=hi, name=name))
        else:
            raise InputError(
                f"type must be linear or nonlinear, got {kind!r}", file=file, field=f"{where}.type"
            )
    return out


# -- objectives -----------------------------------------------------------------------------
def _poisson_deviance(expected, observed):
    """``2 sum(lam - n + n ln(n/lam))`` of expected counts (callable) and observed counts."""
    n = np.asarray(observed, dtype=float)

    def objective(p):
        lam = np.asarray(expected(p), dtype=float)
        if not np.all(np.isfinite(lam)) or np.any(lam < 0) or np.any((lam == 0) & (n > 0)):
            return _BIG
        with np.errstate(divide="ignore", invalid="ignore"):
            log_term = np.where(
                n > 0, n * np.log(np.where(n > 0, n, 1.0) / np.where(lam > 0, lam, 1.0)), 0.0
            )
        return float(2.0 * np.sum(lam - n + log_term))

    return objective


def _expressions_fn(texts, names, where, file):
    exprs = [_expression(t, names, f"{where}[{i}]", file) for i, t in enumerate(texts)]

    def fn(p):
        env = dict(zip(names, p))
        return np.array([float(e(**env)) for e in exprs])

    return fn


def _counts(value, n_bins, field, file) -> np.ndarray:
    arr = _array(value, 1, field, file)
    if n_bins is not None and arr.shape != (n_bins,):
        raise InputError(f"expected {n_bins} bins, got {arr.size}", file=file, field=field)
    if np.any(arr < 0):
        raise InputError("counts must be >= 0", file=file, field=field)
    return arr


def _poisson_objective(kind, sec, names, file):
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
        expected = _expressions_fn(texts, names, f"{kind}.expected", file)
        n_bins = len(texts)
    else:
        if "signal" not in sec:
            raise InputError(
                "give expected (expressions) or signal (+ background)",
                file=file,
                field=f"{kind}.expected",
            )
        s = _counts(sec["signal"], None, f"{kind}.signal", file)
        n_bins = s.size
        b = _counts(sec.get("background", [0.0] * n_bins), n_bins, f"{kind}.background", file)
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

    observed = _counts(sec["observed"], n_bins, f"{kind}.observed", file)
    return _poisson_deviance(expected, observed)


def _gaussian_objective(sec, names, file):
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
        mean = mean_f if sec.get("mean") is None else _array(sec["mean"], 1, "gaussian.mean", file)
    else:
        if "mean" not in sec:
            raise InputError("missing required key", file=file, field="gaussian.mean")
        mean = _array(sec["mean"], 1, "gaussian.mean", file)
        given = [k for k in ("covariance", "information", "errors") if k in sec]
        if len(given) != 1:
            raise InputError(
                "give exactly one of covariance, information, errors",
                file=file,
                field="gaussian.covariance",
            )
        key = given[0]
        if key == "errors":
            err = _array(sec[key], 1, "gaussian.errors", file)
            if np.any(err <= 0):
                raise InputError("errors must be > 0", file=file, field="gaussian.errors")
            inv = np.diag(1.0 / err**2) if err.size == mean.size else None
        else:
            m = _array(sec[key], 2, f"gaussian.{key}", file)
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
        prediction = _expressions_fn(pred_texts, names, "gaussian.prediction", file)

    def objective(p):
        with np.errstate(all="ignore"):  # an overflowing prediction is handled just below
            r = mean - prediction(p)
            v = float(r @ inv @ r)
        return v if math.isfinite(v) else _BIG

    return objective


# -- the fit -----------------------------------------------------------------------------------
def build_fit(spec: dict, *, file=None):
    """The :class:`~eftflow.inference.fit.Fit` (objective ``-2 ln L``) a fit description defines."""
    from eftflow.inference.fit import Fit

    check_keys(spec, _TOP_KEYS, "", file)
    kind = spec.get("kind")
    if kind not in FIT_KINDS:
        raise InputError(
            f"kind must be one of {', '.join(FIT_KINDS)}, got {kind!r}", file=file, field="kind"
        )
    if kind not in spec:
        raise InputError("missing required key", file=file, field=kind)
    pars = _parameters(spec, file)
    names = pars.names
    if kind == "gaussian":
        objective = _gaussian_objective(spec[kind], names, file)
    else:
        objective = _poisson_objective(kind, spec[kind], names, file)
    constraints = _constraints(spec, names, file)
    backend = spec.get("backend")
    if backend not in (None, "minuit", "scipy"):
        raise InputError(
            f"backend must be minuit or scipy, got {backend!r}", file=file, field="backend"
        )
    tol = _number(spec.get("tol"), "tol", file, allow_none=True)
    try:
        return Fit(objective, pars, kind="-2lnL", constraints=constraints, backend=backend, tol=tol)
    except InputError as err:
        raise InputError(err.message, file=file, field=err.field) from None


def _names_option(spec, key, free, file) -> list:
    value = spec.get(key, key == "minos")
    if value is True:
        return list(free)
    if value in (False, None):
        return []
    if not isinstance(value, list):
        raise InputError("expected true, false or a list of names", file=file, field=key)
    for i, n in enumerate(value):
        if n not in free:
            raise InputError(
                f"{n!r} is not a free parameter ({', '.join(free)})", file=file, field=f"{key}[{i}]"
            )
    return [str(n) for n in value]


def run_fit_spec(spec: dict, *, file=None) -> tuple[dict, dict]:
    """Run the fit of a description: ``(JSON-able result, result objects for plots)``.

    The result has the best fit, the minimum, the Hesse (numeric under constraints) covariance,
    MINOS intervals, and the requested profiles and contours.
    """
    fit = build_fit(spec, file=file)
    free = fit.parameters.free_names
    minos = _names_option(spec, "minos", free, file)
    profiles = _names_option(spec, "profiles", free, file)
    contours = spec.get("contours") or []
    if not isinstance(contours, list) or any(
        not isinstance(c, list) or len(c) != 2 or c[0] == c[1] or any(n not in free for n in c)
        for c in contours
    ):
        raise InputError(
            f"expected a list of pairs of different free parameters ({', '.join(free)})",
            file=file,
            field="contours",
        )
    sigma = _number(spec.get("sigma"), "sigma", file, allow_none=True)
    cl = _number(spec.get("cl"), "cl", file, allow_none=True)
    if sigma is not None and cl is not None:
        raise InputError("give sigma or cl, not both", file=file, field="cl")
    if cl is not None and not 0 < cl < 1:
        raise InputError(f"cl must be in (0, 1), got {cl}", file=file, field="cl")
    if sigma is not None and not sigma > 0:
        raise InputError(f"sigma must be > 0, got {sigma}", file=file, field="sigma")
    try:
        opt = fit.optimize()
        if not opt.success:
            raise BackendError(
                f"the fit did not converge ({opt.message}); nothing written: check the "
                "starting values, scales and bounds",
                field="parameters",
            )
        cov = fit.covariance()
        if not cov.success:
            raise BackendError(
                "the covariance at the minimum is not positive definite (a parameter the "
                "likelihood does not depend on, or a flat direction); nothing written",
                field="parameters",
            )
        conf = {n: fit.confidence(n, sigma=sigma, cl=cl) for n in minos}
        bad = [n for n, c in conf.items() if not c.success]
        if bad:
            raise BackendError(
                f"the MINOS interval of {', '.join(bad)} is not valid (no crossing of UP, or "
                "the profile found a lower minimum); nothing written",
                field=f"minos.{bad[0]}",
            )
        npts = int(spec.get("profile_points", 21))
        bounds = 2.0 * math.sqrt(fit.up(sigma=sigma, cl=cl, n_params=1))
        profs = [fit.minos_profile(n, bounds=bounds, nvalues=npts) for n in profiles]
        conts = [
            fit.minos_contour(
                x, y, numpoints=int(spec.get("contour_points", 20)), sigma=sigma, cl=cl
            )
            for x, y in contours
        ]
    except EftflowError as err:
        if err.file is not None:
            raise
        raise type(err)(err.message, file=file, field=err.field) from None
    up = fit.up(sigma=sigma, cl=cl)
    out = {
        "kind": spec["kind"],
        "objective": _OBJECTIVE_LABEL[spec["kind"]],
        "errordef": fit.errordef,
        "parameters": fit.parameters.names,
        "best_fit": opt.parameters,
        "minimum": opt.fval,
        "success": bool(opt.success and cov.success and all(c.success for c in conts)),
        "errors_level": "1 sigma (covariance = 2 errordef H^-1)",
        "minos_level": {"sigma": sigma, "cl": cl, "up": up},
        "backend": opt.backend,
        "active_constraints": opt.active_constraints,
        "errors": cov.errors,
        "covariance": cov.to_dict(),
        "minos": {n: c.to_dict() for n, c in conf.items()},
        "profiles": [p.to_dict() for p in profs],
        "contours": [c.to_dict() for c in conts],
    }
    return out, {
        "profiles": profs,
        "contours": conts,
        "up": up,
        "level": _level_text(sigma, cl, 1),
        "contour_level": _level_text(sigma, cl, 2),
    }


def _level_text(sigma, cl, n_params: int) -> str:
    """Words for the confidence level of a region of ``n_params`` parameters."""
    from eftflow.inference.fit import coverage_of_sigma

    if cl is None:
        cl = coverage_of_sigma(1.0 if sigma is None else sigma)
        what = f"{1.0 if sigma is None else sigma:g} sigma ({100 * cl:.4g}%)"
    else:
        what = f"{100 * cl:.4g}% CL"
    return what + (f", {n_params}-parameter" if n_params > 1 else "")
