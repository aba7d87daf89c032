"""Parameter-point specifications: which θ (and ν) to sample from or evaluate at.

The same vocabulary as MadMiner's ``madminer.sampling`` helpers, as small immutable objects:

=============================================  ==============================================
eftflow                                         MadMiner
=============================================  ==============================================
``benchmark("sm")``                             ``benchmark("sm")``
``benchmarks(["sm", "w"])``                     ``benchmarks([...])``
``morphing_point([0.1, 0.0])``                  ``morphing_point([...])``
``morphing_points([[0, 0], [0.1, 0]])``         ``morphing_points([...])``
``random_morphing_points(100, [("flat", -1,     ``random_morphing_points(100, [...])`` (but seeded
1), ("gaussian", 0, 0.5)])``                    here, never global random state)
``grid([(-1, 1, 11), (-1, 1, 11)])``            (none: build the list by hand)
``nominal_nuisance_parameters()``               ``nominal_nuisance_parameters()``
``iid_nuisance_parameters("gaussian", 0, 1)``   ``iid_nuisance_parameters(...)``
``nuisance_point([0.5])``                       ``("morphing_point", [...])`` as ``nu``
=============================================  ==============================================

:func:`resolve_thetas` turns a θ spec into an array (n_points, n_parameters) for a given setup;
:func:`resolve_nus` turns a ν spec into (n_points, n_nuisance). Random specs draw from an explicit
:class:`numpy.random.Generator`. :func:`spec_from_config` reads the config form
(``{type: benchmark, name: sm}``, ``{type: random, n: 100, priors: [[flat, -1, 1], ...]}`` ...).

Example
-------
>>> from eftflow.setup import EFTSetup
>>> s = EFTSetup()
>>> s.add_parameter("eft", 1, "a", parameter_range=(-1, 1))
>>> s.add_benchmark({"a": 0.0}, "sm")
>>> s.set_morphing(max_overall_power=2, seed=1)
>>> resolve_thetas(benchmark("sm"), s).tolist()
[[0.0]]
>>> resolve_thetas(grid([(-1, 1, 3)]), s).ravel().tolist()
[-1.0, 0.0, 1.0]
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = [
    "ThetaSpec",
    "NuSpec",
    "benchmark",
    "benchmarks",
    "morphing_point",
    "morphing_points",
    "random_morphing_points",
    "grid",
    "nominal_nuisance_parameters",
    "iid_nuisance_parameters",
    "nuisance_point",
    "resolve_thetas",
    "resolve_nus",
    "spec_from_config",
    "nu_spec_from_config",
    "check_theta_dimension",
    "warn_outside_parameter_range",
]

log = logging.getLogger(__name__)

PRIOR_SHAPES = ("flat", "gaussian")


@dataclass(frozen=True)
class ThetaSpec:
    """A θ specification: ``kind`` plus its value (see the module docstring)."""

    kind: str
    value: object = None
    n: int | None = None
    priors: tuple = field(default_factory=tuple)

    @property
    def is_random(self) -> bool:
        return self.kind == "random_morphing_points"

    def describe(self) -> str:
        if self.kind == "benchmark":
            return f"benchmark {self.value}"
        if self.kind == "benchmarks":
            return f"benchmarks {', '.join(self.value)}"
        if self.kind == "random_morphing_points":
            return f"{self.n} random points, priors {list(self.priors)}"
        return f"{self.kind} {np.asarray(self.value).tolist()}"


@dataclass(frozen=True)
class NuSpec:
    """A ν specification: ``nominal`` (ν = 0), ``iid`` (random, one prior for all), ``point(s)``."""

    kind: str = "nominal"
    value: object = None

    def describe(self) -> str:
        return self.kind if self.value is None else f"{self.kind} {self.value}"


def benchmark(name: str) -> ThetaSpec:
    """One named benchmark."""
    return ThetaSpec("benchmark", str(name))


def benchmarks(names: Sequence[str]) -> ThetaSpec:
    """Several named benchmarks (samples are split evenly among them)."""
    names = [str(n) for n in names]
    if not names:
        raise ConfigError("benchmarks(): the list of names is empty", field="theta.names")
    return ThetaSpec("benchmarks", tuple(names))


def morphing_point(theta) -> ThetaSpec:
    """One parameter point (morphing), shape (n_parameters,)."""
    return ThetaSpec("morphing_point", tuple(np.asarray(theta, float).ravel().tolist()))


def morphing_points(thetas) -> ThetaSpec:
    """Several parameter points, shape (n_points, n_parameters)."""
    arr = np.atleast_2d(np.asarray(thetas, float))
    if arr.shape[0] == 0:
        raise ConfigError("morphing_points(): no points given", field="theta.values")
    return ThetaSpec("morphing_points", tuple(map(tuple, arr.tolist())))


def _check_priors(priors, where: str) -> tuple:
    out = []
    for i, prior in enumerate(priors):
        try:
            shape, p0, p1 = prior
            p0, p1 = float(p0), float(p1)
        except (TypeError, ValueError):
            raise ConfigError(
                f"a prior is (shape, param0, param1), got {prior!r}", field=f"{where}[{i}]"
            ) from None
        if shape not in PRIOR_SHAPES:
            raise ConfigError(
                f"unknown prior shape {shape!r}; expected one of {', '.join(PRIOR_SHAPES)}",
                field=f"{where}[{i}][0]",
            )
        if shape == "flat" and not p0 < p1:
            raise ConfigError(f"flat prior needs low < high, got {p0}, {p1}", field=f"{where}[{i}]")
        if shape == "gaussian" and not p1 > 0:
            raise ConfigError(
                f"gaussian prior needs a positive width, got {p1}", field=f"{where}[{i}]"
            )
        out.append((str(shape), p0, p1))
    return tuple(out)


def random_morphing_points(n_thetas: int, priors: Sequence) -> ThetaSpec:
    """``n_thetas`` random points; ``priors`` has one ``(shape, a, b)`` per parameter.

    ``("flat", low, high)`` or ``("gaussian", mean, std)``; drawn in :func:`resolve_thetas` from
    the generator passed there (seeded, reproducible).
    """
    if int(n_thetas) < 1:
        raise ConfigError(f"need at least one random point, got {n_thetas}", field="theta.n")
    return ThetaSpec(
        "random_morphing_points", None, int(n_thetas), _check_priors(priors, "theta.priors")
    )


def grid(axes: Sequence) -> ThetaSpec:
    """A regular grid: one ``(low, high, n_points)`` per parameter (first parameter slowest)."""
    values = []
    for i, ax in enumerate(axes):
        try:
            lo, hi, n = ax
            n = int(n)
        except (TypeError, ValueError):
            raise ConfigError(
                f"a grid axis is (low, high, n), got {ax!r}", field=f"theta.axes[{i}]"
            ) from None
        if n < 1:
            raise ConfigError(f"a grid axis needs n >= 1, got {n}", field=f"theta.axes[{i}]")
        values.append(np.linspace(float(lo), float(hi), n))
    points = np.array(list(itertools.product(*values)), float)
    return ThetaSpec("morphing_points", tuple(map(tuple, points.tolist())))


def nominal_nuisance_parameters() -> NuSpec:
    """All nuisance parameters at their nominal value 0."""
    return NuSpec("nominal")


def iid_nuisance_parameters(
    shape: str = "gaussian", param0: float = 0.0, param1: float = 1.0
) -> NuSpec:
    """Every nuisance parameter drawn independently from the same prior, one draw per θ point."""
    return NuSpec("iid", _check_priors([(shape, param0, param1)], "nu.prior")[0])


def nuisance_point(nu) -> NuSpec:
    """Fixed nuisance-parameter values (n_nuisance,)."""
    return NuSpec("point", tuple(np.asarray(nu, float).ravel().tolist()))


def _draw(priors, n: int, rng: np.random.Generator) -> np.ndarray:
    cols = []
    for shape, p0, p1 in priors:
        if shape == "flat":
            cols.append(p0 + (p1 - p0) * rng.random(n))
        else:
            cols.append(rng.normal(p0, p1, n))
    return np.stack(cols, axis=1)


def resolve_thetas(
    spec: ThetaSpec,
    setup,
    rng: np.random.Generator | None = None,
    *,
    field: str = "theta",
    warn_outside_range: bool = True,
) -> np.ndarray:
    """The points of ``spec`` as an array (n_points, n_parameters) for ``setup``.

    Raises
    ------
    ConfigError
        Unknown benchmark name (the message lists the known ones), wrong dimension, non-finite
        values, or a random spec without a generator.
    """
    names = setup.parameter_names
    n_p = len(names)
    if not isinstance(spec, ThetaSpec):
        raise ConfigError(f"expected a θ specification, got {type(spec).__name__}", field=field)
    if spec.kind in ("benchmark", "benchmarks"):
        wanted = [spec.value] if spec.kind == "benchmark" else list(spec.value)
        known = {b.name: b for b in setup.benchmarks.values() if not b.is_nuisance}
        rows = []
        for i, name in enumerate(wanted):
            if name not in known:
                raise ConfigError(
                    f"unknown benchmark {name!r}; known benchmarks: {', '.join(known)}",
                    field=f"{field}.name" if spec.kind == "benchmark" else f"{field}.names[{i}]",
                )
            rows.append(known[name].vector(names))
        out = np.array(rows, float).reshape(-1, n_p)
    elif spec.kind in ("morphing_point", "morphing_points"):
        out = np.atleast_2d(np.asarray(spec.value, float))
        if out.shape[1] != n_p:
            raise ConfigError(
                f"θ has {out.shape[1]} components but the setup has {n_p} parameters ({', '.join(names)})",
                field=f"{field}.values",
            )
    elif spec.kind == "random_morphing_points":
        if len(spec.priors) != n_p:
            raise ConfigError(
                f"{len(spec.priors)} priors given but the setup has {n_p} parameters ({', '.join(names)})",
                field=f"{field}.priors",
            )
        if rng is None:
            raise ConfigError("random θ points need a seeded generator", field=field)
        out = _draw(spec.priors, spec.n, rng)
    else:
        raise ConfigError(f"unknown θ specification {spec.kind!r}", field=f"{field}.type")
    if not np.all(np.isfinite(out)):
        raise ConfigError("θ values must be finite", field=f"{field}.values")
    if warn_outside_range:
        warn_outside_parameter_range(
            out, setup, field=field, benchmark=spec.kind in ("benchmark", "benchmarks")
        )
    return out


def warn_outside_parameter_range(
    thetas: np.ndarray, setup, *, field: str = "theta", benchmark: bool = False
) -> int:
    """Log a warning when points lie outside a parameter's declared ``parameter_range``.

    The message names the field, the parameter, the first offending value, the range and how
    many points are outside. Returns the number of points outside (0: no warning).
    """
    thetas = np.atleast_2d(np.asarray(thetas, float))
    params = list(setup.parameters.values())
    ranges = np.array([p.parameter_range for p in params], float).reshape(-1, 2)
    outside = (thetas < ranges[:, 0]) | (thetas > ranges[:, 1])
    n_out = int(np.any(outside, axis=1).sum())
    if n_out:
        i, j = (int(v) for v in np.argwhere(outside)[0])
        log.warning(
            "%s%s: %s = %.6g lies outside its declared range [%.6g, %.6g] (parameter_range); "
            "%d of %d point(s) are outside the range: %s",
            field,
            " (benchmark)" if benchmark else "",
            params[j].name,
            thetas[i, j],
            ranges[j, 0],
            ranges[j, 1],
            n_out,
            thetas.shape[0],
            "results there are outside the declared validity of the setup"
            if benchmark
            else "morphing extrapolates there (larger weights, larger statistical errors)",
        )
    return n_out


def resolve_nus(
    spec: NuSpec | None,
    n_points: int,
    n_nuisance: int,
    rng: np.random.Generator | None = None,
    *,
    field: str = "nu",
) -> np.ndarray:
    """ν values (n_points, n_nuisance); nominal = zeros. No nuisance parameters → (n_points, 0)."""
    spec = NuSpec("nominal") if spec is None else spec
    if n_nuisance == 0 or spec.kind == "nominal":
        return np.zeros((n_points, n_nuisance))
    if spec.kind == "iid":
        if rng is None:
            raise ConfigError("random ν need a seeded generator", field=field)
        return _draw([spec.value] * n_nuisance, n_points, rng)
    if spec.kind == "point":
        nu = np.asarray(spec.value, float)
        if nu.size != n_nuisance:
            raise ConfigError(
                f"ν has {nu.size} components but the setup has {n_nuisance} nuisance parameters",
                field=f"{field}.values",
            )
        return np.broadcast_to(nu, (n_points, n_nuisance)).copy()
    raise ConfigError(f"unknown ν specification {spec.kind!r}", field=f"{field}.type")


def spec_from_config(cfg, *, field: str = "theta") -> ThetaSpec:
    """A θ spec from its config form.

    Forms: a benchmark name (string), ``{type: benchmark, name}``, ``{type: benchmarks, names}``,
    ``{type: point, values: [..]}``, ``{type: points, values: [[..], ..]}``,
    ``{type: random, n, priors: [[flat|gaussian, a, b], ..]}``, ``{type: grid, axes: [[lo, hi, n], ..]}``.
    """
    if isinstance(cfg, ThetaSpec):
        return cfg
    if isinstance(cfg, str):
        return benchmark(cfg)
    cfg = _from_madminer_tuple(cfg, _MADMINER_THETA)
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(
            f"expected a benchmark name, a mapping with 'type' or a θ specification from "
            f"eftflow.sampling (benchmark, morphing_point, random_morphing_points, …), got {cfg!r}",
            field=field,
        )
    kind = cfg["type"]
    try:
        if kind == "benchmark":
            return benchmark(cfg["name"])
        if kind == "benchmarks":
            return benchmarks(cfg["names"])
        if kind in ("point", "morphing_point"):
            return morphing_point(cfg["values"])
        if kind in ("points", "morphing_points"):
            return morphing_points(cfg["values"])
        if kind in ("random", "random_morphing_points"):
            return random_morphing_points(cfg["n"], cfg["priors"])
        if kind == "grid":
            return grid(cfg["axes"])
    except KeyError as err:
        raise ConfigError(
            f"θ specification of type {kind!r} needs key {err.args[0]!r}", field=field
        ) from None
    except ConfigError as err:
        raise ConfigError(
            err.message, field=f"{field}.{err.field.split('.', 1)[-1]}" if err.field else field
        ) from None
    raise ConfigError(
        f"unknown θ specification type {kind!r}; expected benchmark, benchmarks, point, points, random or grid",
        field=f"{field}.type",
    )


#: MadMiner's ``madminer.sampling`` specifications, ``(kind, argument)`` tuples, as config mappings
_MADMINER_THETA = {
    "benchmark": lambda a: {"type": "benchmark", "name": a},
    "benchmarks": lambda a: {"type": "benchmarks", "names": list(a)},
    "morphing_point": lambda a: {"type": "point", "values": np.asarray(a, float).tolist()},
    "morphing_points": lambda a: {"type": "points", "values": np.asarray(a, float).tolist()},
    "random_morphing_points": lambda a: {"type": "random", "n": a[0], "priors": list(a[1])},
}
_MADMINER_NU = {
    "nominal": lambda a: {"type": "nominal"},
    "iid": lambda a: {"type": "iid", "prior": list(a)},
}


def _from_madminer_tuple(cfg, kinds: dict):
    """A MadMiner ``(kind, argument)`` specification (e.g. ``madminer.sampling.benchmark("sm")``
    is ``("benchmark", "sm")``) as the equivalent config mapping; anything else unchanged."""
    if isinstance(cfg, tuple) and len(cfg) == 2 and cfg[0] in kinds:
        try:
            return kinds[cfg[0]](cfg[1])
        except (TypeError, ValueError, IndexError):
            return cfg
    return cfg


def nu_spec_from_config(cfg, *, field: str = "nu") -> NuSpec:
    """A ν spec from its config form: ``nominal``, ``{type: iid, prior: [gaussian, 0, 1]}``, ``{type: point, values}``."""
    if cfg is None or cfg == "nominal":
        return NuSpec("nominal")
    if isinstance(cfg, NuSpec):
        return cfg
    cfg = _from_madminer_tuple(cfg, _MADMINER_NU)
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(f"expected 'nominal' or a mapping with 'type', got {cfg!r}", field=field)
    kind = cfg["type"]
    if kind == "nominal":
        return NuSpec("nominal")
    if kind == "iid":
        prior = cfg.get("prior", ["gaussian", 0.0, 1.0])
        return iid_nuisance_parameters(*prior)
    if kind == "point":
        if "values" not in cfg:
            raise ConfigError("ν point needs 'values'", field=field)
        return nuisance_point(cfg["values"])
    raise ConfigError(
        f"unknown ν specification type {kind!r}; expected nominal, iid or point",
        field=f"{field}.type",
    )


def check_theta_dimension(theta, n_parameters: int, *, field: str = "theta") -> np.ndarray:
    """θ as (n, n_parameters); raises :class:`InputError` on a wrong dimension."""
    arr = np.atleast_2d(np.asarray(theta, float))
    if arr.ndim != 2 or arr.shape[1] != n_parameters:
        raise InputError(
            f"θ must have {n_parameters} components, got shape {np.shape(theta)}", field=field
        )
    if not np.all(np.isfinite(arr)):
        raise InputError("θ must be finite", field=field)
    return arr
