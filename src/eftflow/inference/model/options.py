"""The ``inference`` section of a model spec: defaults, and the checks against the built model
(parameter names, toys and Neyman grids inside the parameters' bounds); errors name the spec file
and the field. Used by :mod:`eftflow.inference.model.spec` (which re-exports it) and the CLI.
"""

from __future__ import annotations

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = ["inference_options", "INFERENCE_DEFAULTS"]

INFERENCE_DEFAULTS = {
    "profiles": [],
    "contours": [],
    "impacts": True,
    "cls": False,
    "closure_eps": 0.01,
    "nvalues": 11,
    "contour_points": 20,
    "toys": None,
    "neyman": None,
}
_TOYS_KEYS = {"n_toys", "seed", "truth", "batch"}
_NEYMAN_KEYS = {"poi", "grid", "n_toys", "cl", "seed", "batch"}


def _in_bounds(model, values: dict, file, field: str) -> None:
    for name, v in values.items():
        if name not in model.names:
            raise InputError(
                f"unknown parameter {name!r}; known: {', '.join(model.names)}",
                file=file,
                field=f"{field}.{name}",
            )
        i = model.index(name)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{v!r} is not a number", file=file, field=f"{field}.{name}"
            ) from None
        if not model.lower[i] <= v <= model.upper[i]:
            raise InputError(
                f"{name} = {v:.6g} is outside its bounds [{model.lower[i]:.6g}, "
                f"{model.upper[i]:.6g}]",
                file=file,
                field=f"{field}.{name}",
            )


def _number(
    mapping: dict, key: str, cast, ok, expect: str, file, where: str = "inference", default=None
):
    """``mapping[key]`` (or ``default``) as ``cast``, checked by ``ok``; errors name the field."""
    value = mapping.get(key, default)
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        number = cast(value)
        if cast is int and number != float(value):
            raise ValueError
        if not ok(number):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"{key} must be a number {expect}, got {value!r}", file=file, field=f"{where}.{key}"
        ) from None
    return number


def inference_options(spec: dict, model) -> dict:
    """The ``inference`` section merged with :data:`INFERENCE_DEFAULTS` and checked against the
    model (parameter names, toys and Neyman grids inside the parameters' bounds), plus the
    ``asimov`` point; errors name the spec file and the field."""
    file = spec.get("_file")
    raw = spec.get("inference") or {}
    if not isinstance(raw, dict):
        raise ConfigError("inference must be a mapping", file=file, field="inference")
    unknown = sorted(set(raw) - set(INFERENCE_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; known: {', '.join(sorted(INFERENCE_DEFAULTS))}",
            file=file,
            field=f"inference.{unknown[0]}",
        )
    inf = {**INFERENCE_DEFAULTS, **raw}
    if not isinstance(spec.get("asimov") or {}, dict):
        raise ConfigError("asimov must be a mapping {parameter: value}", file=file, field="asimov")
    _in_bounds(model, spec.get("asimov") or {}, file, "asimov")
    fixed = {p.name for p in model.parameters if p.fixed}
    for name in model.poi:
        if name in fixed:
            raise InputError(
                f"the parameter of interest {name!r} is fixed: infer would have no interval to "
                "give (free it, or fix it and name another poi)",
                file=file,
                field="poi",
            )
    inf["closure_eps"] = _number(inf, "closure_eps", float, lambda v: v > 0, "> 0", file)
    inf["nvalues"] = _number(inf, "nvalues", int, lambda v: v >= 2, ">= 2", file)
    inf["contour_points"] = _number(inf, "contour_points", int, lambda v: v >= 4, ">= 4", file)

    def free(name, what: str, field: str) -> None:
        """``name`` is a parameter of the model and not fixed (it has a ``what``)."""
        if name not in model.names:
            raise InputError(f"unknown parameter {name!r}", file=file, field=field)
        if name in fixed:
            raise InputError(
                f"parameter {name!r} is fixed: it has no {what}", file=file, field=field
            )

    for k, name in enumerate(inf["profiles"] or []):
        free(name, "profile", f"inference.profiles[{k}]")
    for k, pair in enumerate(inf["contours"] or []):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ConfigError(
                "a contour is a pair [x, y]", file=file, field=f"inference.contours[{k}]"
            )
        for name in pair:
            free(name, "contour", f"inference.contours[{k}]")
    if inf["toys"] is not None:
        t = inf["toys"]
        if not isinstance(t, dict) or set(t) - _TOYS_KEYS:
            raise ConfigError(
                f"toys takes {', '.join(sorted(_TOYS_KEYS))}", file=file, field="inference.toys"
            )
        t = dict(t)
        where = "inference.toys"
        t["n_toys"] = _number(t, "n_toys", int, lambda v: v >= 2, ">= 2", file, where, 200)
        t["seed"] = _number(t, "seed", int, lambda v: v >= 0, ">= 0", file, where, 1)
        t["batch"] = _number(t, "batch", int, lambda v: v >= 1, ">= 1", file, where, 500)
        if t.get("truth") is not None and not isinstance(t["truth"], dict):
            raise ConfigError(
                "truth must be a mapping {parameter: value}", file=file, field=f"{where}.truth"
            )
        inf["toys"] = t
        _in_bounds(model, t.get("truth") or spec.get("asimov") or {}, file, "inference.toys.truth")
    if inf["neyman"] is not None:
        ny = inf["neyman"]
        if not isinstance(ny, dict) or set(ny) - _NEYMAN_KEYS or "grid" not in ny:
            raise ConfigError(
                f"neyman takes grid and {', '.join(sorted(_NEYMAN_KEYS - {'grid'}))}",
                file=file,
                field="inference.neyman",
            )
        poi = ny.get("poi", model.poi[0])
        free(poi, "interval", "inference.neyman.poi")
        g = ny["grid"]
        try:
            if isinstance(g, dict):
                grid = np.linspace(float(g["min"]), float(g["max"]), int(g["n"]))
            else:
                grid = np.asarray(g, float).reshape(-1)
            if grid.size < 2 or not np.all(np.isfinite(grid)):
                raise ValueError
        except (TypeError, ValueError, KeyError):
            raise ConfigError(
                "grid is {min, max, n} or a list of at least two values",
                file=file,
                field="inference.neyman.grid",
            ) from None
        for v in (grid.min(), grid.max()):
            _in_bounds(model, {poi: v}, file, "inference.neyman.grid")
        where = "inference.neyman"
        ny = dict(ny)
        ny["n_toys"] = _number(ny, "n_toys", int, lambda v: v >= 10, ">= 10", file, where, 100)
        ny["cl"] = _number(ny, "cl", float, lambda v: 0 < v < 1, "in (0, 1)", file, where, 0.68)
        ny["seed"] = _number(ny, "seed", int, lambda v: v >= 0, ">= 0", file, where, 2)
        ny["batch"] = _number(ny, "batch", int, lambda v: v >= 1, ">= 1", file, where, 2000)
        inf["neyman"] = {**ny, "poi": poi, "grid": grid.tolist()}
    return inf
