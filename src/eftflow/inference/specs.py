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

import logging
import math

from eftflow.errors import BackendError, EftflowError, InputError

from .spec_objectives import (
    check_keys,
    expression,
    gaussian_objective,
    number,
    poisson_objective,
)

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
    from eftflow.config import read_document, refuse_workflow_config

    path = str(path)
    data = read_document(path, what=f"a YAML/JSON text file: expected {what}", error=InputError)
    if not isinstance(data, dict):
        raise InputError("the description must be a mapping", file=path)
    refuse_workflow_config(data, file=path, what=what, doc=doc)
    return data


# -- small validated getters ------------------------------------------------------------------
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
                    number(v.get("value", 0.0), f"{where}.value", file),
                    scale=number(v.get("scale"), f"{where}.scale", file, allow_none=True),
                    lower=number(v.get("lower"), f"{where}.lower", file, allow_none=True),
                    upper=number(v.get("upper"), f"{where}.upper", file, allow_none=True),
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
            lo = hi = number(c["equal"], f"{where}.equal", file)
        else:
            lo = number(c.get("lower"), f"{where}.lower", file, allow_none=True)
            hi = number(c.get("upper"), f"{where}.upper", file, allow_none=True)
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
            coef = {k: number(v, f"{where}.coefficients.{k}", file) for k, v in coef.items()}
            out.append(LinearConstraint(coef, lower=lo, upper=hi, name=name))
        elif kind == "nonlinear":
            if "expression" not in c:
                raise InputError("missing required key", file=file, field=f"{where}.expression")
            expr = expression(c["expression"], names, f"{where}.expression", file)

            def fun(p, expr=expr):
                return float(expr(**dict(zip(names, p))))

            out.append(NonlinearConstraint(fun, lower=lo, upper=hi, name=name))
        else:
            raise InputError(
                f"type must be linear or nonlinear, got {kind!r}", file=file, field=f"{where}.type"
            )
    return out


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
        objective = gaussian_objective(spec[kind], names, file)
    else:
        objective = poisson_objective(kind, spec[kind], names, file)
    constraints = _constraints(spec, names, file)
    backend = spec.get("backend")
    if backend not in (None, "minuit", "scipy"):
        raise InputError(
            f"backend must be minuit or scipy, got {backend!r}", file=file, field="backend"
        )
    tol = number(spec.get("tol"), "tol", file, allow_none=True)
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
    sigma = number(spec.get("sigma"), "sigma", file, allow_none=True)
    cl = number(spec.get("cl"), "cl", file, allow_none=True)
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
