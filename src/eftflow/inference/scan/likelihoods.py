r"""Built-in likelihood forms (GAMBIT paper, §8.3) and built-in scan functions.

All forms return :math:`\ln\mathcal{L}` and broadcast over numpy arrays. ``x`` is the observed
value with (experimental) width ``sigma``, ``mu`` the prediction with theory uncertainty
``sigma_eps`` (an auxiliary nuisance ε, Gaussian-distributed additive offset or lognormal
multiplicative factor), either *profiled* (ε maximised: frequentist auxiliary measurement) or
*marginalised* (ε integrated: a Bayesian input systematic):

* Gaussian, eq. (52): :math:`-\tfrac12 (x-\mu)^2/\sigma^2 - \ln(\sqrt{2\pi}\sigma)`
* profiled, eq. (55): :math:`-\tfrac12 (x-\mu)^2/(\sigma^2+\sigma_\epsilon^2) - \ln(2\pi\sigma\sigma_\epsilon)`
* marginalised, eq. (57): :math:`-\tfrac12 (x-\mu)^2/(\sigma^2+\sigma_\epsilon^2) - \tfrac12\ln(2\pi(\sigma^2+\sigma_\epsilon^2))`
* upper limit, eqs. (58), (60), (62) (flat for μ ≤ x); lower limit by x → −x, μ → −μ
* lognormal, eq. (64) with :math:`\sigma' = \ln(1+\sigma/x)`; theory width
  :math:`\sigma'_\epsilon = \ln(1+\sigma_\epsilon/\mu)`, eq. (66)
* profiled lognormal: the joint density (67), normalised as :math:`1/(2\pi\sigma'\sigma'_\epsilon x\epsilon)`,
  at its maximum :math:`\ln\hat\epsilon = \sigma'^2_\epsilon(\ln(x/\mu) - \sigma'^2)/(\sigma'^2+\sigma'^2_\epsilon)`
  (eq. 68), which gives
  :math:`-\ln(2\pi\sigma'\sigma'_\epsilon x) - [a^2 + 2a\sigma'^2_\epsilon - \sigma'^2\sigma'^2_\epsilon]/(2(\sigma'^2+\sigma'^2_\epsilon))`
  with :math:`a=\ln(x/\mu)` (the paper's eq. 69 lost its signs in print; this is derived from
  (67) and checked against numerical maximisation in the tests)
* marginalised lognormal, eq. (70).

When ``sigma_eps`` is zero the profiled and marginalised forms reduce to the plain form.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import special

from eftflow.errors import InputError
from eftflow.inference.scan.components import scan_function
from eftflow.inference.scan.expressions import Expression

__all__ = [
    "gaussian_loglike",
    "gaussian_profiled",
    "gaussian_marginalised",
    "gaussian_upper_limit",
    "gaussian_lower_limit",
    "lognormal_loglike",
    "lognormal_profiled",
    "lognormal_marginalised",
    "load_fisher",
]

_LN2PI = np.log(2.0 * np.pi)


def gaussian_loglike(x, mu, sigma):
    """Eq. (52)."""
    return -0.5 * ((x - mu) / sigma) ** 2 - 0.5 * _LN2PI - np.log(sigma)


def gaussian_profiled(x, mu, sigma, sigma_eps):
    """Eq. (55): Gaussian with a Gaussian additive nuisance, profiled."""
    var = sigma**2 + sigma_eps**2
    return -0.5 * (x - mu) ** 2 / var - _LN2PI - np.log(sigma) - np.log(sigma_eps)


def gaussian_marginalised(x, mu, sigma, sigma_eps):
    """Eq. (57): Gaussian with a Gaussian additive nuisance, marginalised."""
    var = sigma**2 + sigma_eps**2
    return -0.5 * (x - mu) ** 2 / var - 0.5 * (_LN2PI + np.log(var))


def _log_erfc(z):
    """ln erfc(z) without underflow: erfc(z) = 2 Φ(-√2 z)."""
    return np.log(2.0) + special.log_ndtr(-np.sqrt(2.0) * z)


def gaussian_upper_limit(x, mu, sigma, sigma_eps=0.0, profile=False):
    """Eqs. (58), (60), (62): flat for ``mu <= x``, Gaussian fall-off above."""
    x, mu, sigma, sigma_eps = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (x, mu, sigma, sigma_eps))
    )
    d = x - mu
    if np.all(sigma_eps == 0):
        return np.where(d >= 0, 0.0, -0.5 * (d / sigma) ** 2) - 0.5 * _LN2PI - np.log(sigma)
    var = sigma**2 + sigma_eps**2
    if profile:
        norm = -_LN2PI - np.log(sigma) - np.log(sigma_eps)
        return np.where(d >= 0, 0.0, -0.5 * d**2 / var) + norm
    # eq. (62), in logs: ln[A erfc(.) e^{-d²/2var} + B erfc(.)]
    t1 = (
        -0.5 * d**2 / var
        - 0.5 * np.log(var)
        + _log_erfc((sigma / sigma_eps) * d / np.sqrt(2 * var))
    )
    t2 = -np.log(sigma) + _log_erfc(-d / (np.sqrt(2) * sigma_eps))
    return np.logaddexp(t1, t2) - 1.5 * np.log(2) - 0.5 * np.log(np.pi)


def gaussian_lower_limit(x, mu, sigma, sigma_eps=0.0, profile=False):
    """Lower-limit version of :func:`gaussian_upper_limit` (x → −x, μ → −μ)."""
    return gaussian_upper_limit(-np.asarray(x), -np.asarray(mu), sigma, sigma_eps, profile)


def lognormal_loglike(x, mu, sigma_p):
    """Eq. (64); ``sigma_p`` is the width of ln x."""
    return -0.5 * (np.log(x / mu) / sigma_p) ** 2 - 0.5 * _LN2PI - np.log(sigma_p * x)


def lognormal_profiled(x, mu, sigma_p, sigma_eps_p):
    """Lognormal with a lognormal multiplicative nuisance, profiled (see module docstring)."""
    a = np.log(x / mu)
    s2, e2 = sigma_p**2, sigma_eps_p**2
    expo = -(a**2 + 2 * a * e2 - s2 * e2) / (2 * (s2 + e2))
    return expo - _LN2PI - np.log(sigma_p * sigma_eps_p * x)


def lognormal_marginalised(x, mu, sigma_p, sigma_eps_p):
    """Eq. (70): lognormal with a lognormal multiplicative nuisance, marginalised."""
    var = sigma_p**2 + sigma_eps_p**2
    return -0.5 * np.log(x / mu) ** 2 / var - 0.5 * (_LN2PI + np.log(var)) - np.log(x)


# ---------------------------------------------------------------------------------------------
# built-in scan functions

_NUM_OR_CAP = {"type": ["number", "string"]}
_GAUSS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["prediction", "observed", "sigma"],
    "properties": {
        "prediction": {"type": "string", "description": "capability giving the prediction mu"},
        "observed": {"type": "number"},
        "sigma": {"type": "number", "exclusiveMinimum": 0},
        "sigma_theory": {**_NUM_OR_CAP, "default": 0.0, "description": "absolute, or a capability"},
        "sigma_theory_rel": {"type": "number", "minimum": 0, "default": 0.0},
        "profile_systematics": {"type": "boolean", "default": False},
        "limit": {"enum": ["none", "upper", "lower"], "default": "none"},
    },
}


def _theory_deps(options) -> list[str]:
    deps = [options["prediction"]]
    if isinstance(options.get("sigma_theory"), str):
        deps.append(options["sigma_theory"])
    return deps


def _sigma_theory(inputs, options, mu):
    st = options["sigma_theory"]
    st = float(inputs[st]) if isinstance(st, str) else float(st)
    rel = options["sigma_theory_rel"] * abs(mu)
    return float(np.hypot(st, rel))


@scan_function(
    kind="likelihood", dependencies=_theory_deps, options_schema=_GAUSS_SCHEMA, name="gaussian"
)
def gaussian(inputs, options) -> float:
    """Gaussian measurement (or limit) of ``prediction``, with an optional theory error."""
    mu = float(inputs[options["prediction"]])
    x, sigma = options["observed"], options["sigma"]
    seps = _sigma_theory(inputs, options, mu)
    prof = options["profile_systematics"]
    if options["limit"] != "none":
        f = gaussian_upper_limit if options["limit"] == "upper" else gaussian_lower_limit
        return float(f(x, mu, sigma, seps, prof))
    if seps == 0:
        return float(gaussian_loglike(x, mu, sigma))
    return float((gaussian_profiled if prof else gaussian_marginalised)(x, mu, sigma, seps))


_LOGN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["prediction", "observed"],
    "properties": {
        "prediction": {"type": "string"},
        "observed": {"type": "number", "exclusiveMinimum": 0},
        "sigma": {"type": "number", "exclusiveMinimum": 0, "description": "absolute error on x"},
        "sigma_rel": {"type": "number", "exclusiveMinimum": 0, "description": "relative error"},
        "sigma_theory": {**_NUM_OR_CAP, "default": 0.0},
        "sigma_theory_rel": {"type": "number", "minimum": 0, "default": 0.0},
        "profile_systematics": {"type": "boolean", "default": False},
    },
    "oneOf": [{"required": ["sigma"]}, {"required": ["sigma_rel"]}],
}


@scan_function(
    kind="likelihood", dependencies=_theory_deps, options_schema=_LOGN_SCHEMA, name="lognormal"
)
def lognormal(inputs, options) -> float:
    """Lognormal measurement of a positive ``prediction``, optional multiplicative theory error."""
    mu = float(inputs[options["prediction"]])
    if not mu > 0:
        return float("nan")
    x = options["observed"]
    rel = options["sigma_rel"] if "sigma_rel" in options else options["sigma"] / x
    sp = np.log1p(rel)
    st = options["sigma_theory"]
    st = float(inputs[st]) if isinstance(st, str) else float(st)
    srel = np.hypot(st / mu, options["sigma_theory_rel"])
    if srel == 0:
        return float(lognormal_loglike(x, mu, sp))
    sep = np.log1p(srel)
    f = lognormal_profiled if options["profile_systematics"] else lognormal_marginalised
    return float(f(x, mu, sp, sep))


def _expr_setup(options, file, field):
    return {**options, "_expr": Expression.parse(options["expr"], file=file, field=f"{field}.expr")}


@scan_function(
    dependencies=lambda o: sorted(o["_expr"].names),
    options_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["expr"],
        "properties": {"expr": {"type": "string"}},
    },
    setup=_expr_setup,
    name="expression",
)
def expression(inputs, options) -> float:
    """An observable given by a safe arithmetic expression of parameters and capabilities."""
    return float(options["_expr"](inputs))


@scan_function(
    kind="likelihood",
    dependencies=lambda o: sorted(o["_expr"].names),
    options_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["expr"],
        "properties": {"expr": {"type": "string"}},
    },
    setup=_expr_setup,
    name="loglike_expression",
)
def loglike_expression(inputs, options) -> float:
    """A log-likelihood written directly as an expression (test problems, toy scans)."""
    return float(options["_expr"](inputs))


def load_fisher(path: str | Path) -> dict:
    """Read a Fisher information file: JSON or NPZ with ``fisher_information``,
    ``parameters`` and optionally ``center`` (the best-fit / reference point)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        else:
            data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read Fisher information ({err})", file=str(path)) from None
    if "fisher_information" not in data:
        raise InputError("missing 'fisher_information'", file=str(path), field="fisher_information")
    info = np.asarray(data["fisher_information"], dtype=float)
    if info.ndim != 2 or info.shape[0] != info.shape[1] or not np.allclose(info, info.T):
        raise InputError(
            "must be a symmetric square matrix", file=str(path), field="fisher_information"
        )
    names = [str(n) for n in np.atleast_1d(data.get("parameters", []))]
    if len(names) != info.shape[0]:
        raise InputError(
            f"needs {info.shape[0]} parameter names, got {len(names)}",
            file=str(path),
            field="parameters",
        )
    center = np.asarray(data.get("center", np.zeros(len(names))), dtype=float)
    return {"fisher_information": info, "parameters": names, "center": center}


def _fisher_setup(options, file, field):
    path = Path(options["file"])
    if not path.is_absolute() and file is not None and (Path(file).parent / path).exists():
        path = Path(file).parent / path
    if not path.exists():
        raise InputError(
            f"Fisher information file {options['file']} not found", file=file, field=f"{field}.file"
        )
    data = load_fisher(path)
    names = options.get("parameters") or data["parameters"]
    if len(names) != len(data["parameters"]):
        raise InputError(
            f"{len(names)} names for a {len(data['parameters'])}-parameter Fisher matrix",
            file=file,
            field=f"{field}.parameters",
        )
    try:
        center = np.asarray(options.get("center", data["center"]), dtype=float).reshape(-1)
    except (TypeError, ValueError):
        center = None
    if center is None or center.shape != (len(names),) or not np.isfinite(center).all():
        where = (file, f"{field}.center") if "center" in options else (str(path), "center")
        raise InputError(
            f"center must be {len(names)} finite numbers, one per parameter {list(names)}",
            file=where[0],
            field=where[1],
        )
    return {
        **options,
        "_names": list(names),
        "_info": data["fisher_information"],
        "_center": center,
    }


@scan_function(
    kind="likelihood",
    dependencies=lambda o: o["_names"],
    options_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "description": "JSON/NPZ written by eftflow's Fisher step"},
            "parameters": {"type": "array", "items": {"type": "string"}},
            "center": {"type": "array", "items": {"type": "number"}},
        },
    },
    setup=_fisher_setup,
    name="fisher",
)
def fisher(inputs, options) -> float:
    """Gaussian log-likelihood ``-½ (θ-θ₀)ᵀ I (θ-θ₀)`` from a Fisher information matrix."""
    d = np.array([float(inputs[n]) for n in options["_names"]]) - options["_center"]
    return float(-0.5 * d @ options["_info"] @ d)
