"""Model artifacts: a torch ``state_dict`` (``<name>.pt``) plus a JSON spec (``<name>.json``).

The spec names the method, the estimator class and its constructor arguments, the observable and
parameter names, the training summary and the versions; loading rebuilds the module from the
spec and reads the weights with ``torch.load(..., weights_only=True)`` — no pickles anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from eftflow.errors import InputError
from eftflow.store.atomic import atomic_path

__all__ = ["FORMAT", "FORMAT_VERSION", "build_model", "save_model", "load_model", "family_of"]

FORMAT = "eftflow-estimator"
FORMAT_VERSION = 1


def family_of(method: str) -> str:
    from eftflow.ml import METHODS_DENSITY, METHODS_RATIO, METHODS_SCORE

    if method in METHODS_RATIO:
        return "ratio"
    if method in METHODS_SCORE:
        return "score"
    if method in METHODS_DENSITY:
        return "density"
    from eftflow.ml import METHODS

    raise InputError(f"unknown method {method!r}; known: {', '.join(METHODS)}", field="method")


def build_model(spec: dict):
    """Instantiate the estimator described by ``spec['model']`` (class name + kwargs)."""
    from eftflow.ml import models

    classes = {
        "ScoreEstimator": models.ScoreEstimator,
        "RatioEstimator": models.RatioEstimator,
        "MorphingAwareRatioEstimator": models.MorphingAwareRatioEstimator,
        "DensityEstimator": models.DensityEstimator,
    }
    name = spec["model"]["class"]
    if name not in classes:
        raise InputError(f"unknown estimator class {name!r}", field="model.class")
    return classes[name](**spec["model"]["kwargs"])


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".pt", ".json") else p
    return stem.with_suffix(".pt"), stem.with_suffix(".json")


def save_model(path, model, spec: dict) -> tuple[Path, Path]:
    """Write ``<path>.pt`` and ``<path>.json`` atomically; returns both paths."""
    import torch

    from eftflow import __version__

    pt, js = _paths(path)
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "eftflow_version": __version__,
        "torch_version": torch.__version__,
        **spec,
    }
    with atomic_path(pt) as tmp:
        torch.save(model.state_dict(), tmp)
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(full, indent=2, default=float))
    return pt, js


def load_model(path, *, method: str | None = None, family: str | None = None):
    """Load ``(model, spec)``; check the format and, if given, the method or family.

    Raises
    ------
    InputError
        Missing files, another format or a newer format version, a model of another method.
    """
    import torch

    given = Path(path)
    if given.is_file() and given.suffix not in (".pt", ".json"):
        raise InputError(
            "not an estimator: expected a model (its .pt or .json file) or an ensemble "
            "directory (with ensemble.json)",
            file=str(given),
        )
    pt, js = _paths(path)
    for f in (pt, js):
        if not f.exists():
            raise InputError("model file is missing (a model is a .pt/.json pair)", file=str(f))
    try:
        spec = json.loads(js.read_text())
    except json.JSONDecodeError as err:
        raise InputError(
            f"malformed model spec ({err.msg})", file=str(js), field=f"line {err.lineno}"
        ) from None
    if spec.get("format") != FORMAT:
        raise InputError(
            f"not an eftflow estimator (format {spec.get('format')!r})",
            file=str(js),
            field="format",
        )
    if int(spec.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(
            f"model format version {spec['format_version']} is newer than this eftflow supports ({FORMAT_VERSION})",
            file=str(js),
            field="format_version",
        )
    if method is not None and spec.get("method") != method:
        raise InputError(
            f"model was trained with {spec.get('method')!r}, not {method!r}",
            file=str(js),
            field="method",
        )
    if family is not None and family_of(spec.get("method", "")) != family:
        raise InputError(
            f"model is a {family_of(spec['method'])} estimator ({spec['method']}), a {family} estimator is needed",
            file=str(js),
            field="method",
        )
    model = build_model(spec)
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:
        raise InputError(f"cannot load the weights ({err})", file=str(pt)) from None
    model.eval()
    return model, spec
