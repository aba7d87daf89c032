"""Read and check a scan file (YAML) against ``eftflow/data/scan.schema.yaml``.

Errors name the file, the key path (``models.EFT.parameters.cW.range``) and what was expected,
as :class:`~eftflow.errors.ConfigError`. Schema defaults are filled in, so the returned
:class:`ScanSpec` is the *fully defaulted* scan: that is what is written next to the output and
compared on ``--resume``.

Example
-------
>>> spec = load_scan_config({"models": {"M": {"parameters": {"x": {"prior": "flat",
...     "range": [0, 1]}}}}, "components": {"lx": {"function": "gaussian", "options":
...     {"prediction": "x", "observed": 0.5, "sigma": 0.1}}}})
>>> spec.data["scanner"]["name"], spec.data["seed"]
('random', 0)
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from eftflow.errors import ConfigError, EftflowError

__all__ = [
    "ScanSpec",
    "load_scan_config",
    "scan_schema",
    "validate_against",
    "fill_defaults",
    "flatten",
    "first_difference",
]

# keys that may change between a run and its resume without changing the result
COSMETIC_KEYS = ("output", "printer.buffer")


@cache
def scan_schema() -> dict:
    """The JSON schema of a scan file (package data ``eftflow/data/scan.schema.yaml``)."""
    text = resources.files("eftflow").joinpath("data/scan.schema.yaml").read_text()
    return yaml.safe_load(text)


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top>"


def _describe(err) -> tuple[str, str]:
    """Turn a jsonschema error into (field, message)."""
    path = list(err.absolute_path)
    inst = err.instance
    schema = err.schema
    if err.validator == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(k for k in inst if k not in schema.get("properties", {}))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return _path([*path, extra[0]]), f"unknown key{hint}"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return _path([*path, missing]), "missing required key"
    if err.validator == "enum":
        return _path(path), f"expected one of {err.validator_value}, got {inst!r}"
    if err.validator == "type":
        return _path(path), f"expected {err.validator_value}, got {inst!r}"
    if err.validator == "pattern":
        return _path(path), f"{inst!r} is not a valid name (expected {err.validator_value})"
    if err.validator == "propertyNames":
        return _path(path), f"invalid name: {err.message}"
    return _path(path), f"expected {err.validator} {err.validator_value!r}: {err.message}"


def validate_against(
    data: Any, schema: Mapping, *, file: str | None, prefix: str = "", error=ConfigError
) -> None:
    """Validate ``data`` with ``schema``; raise ``error`` naming file, key path and expectation."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    best = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if best is not None:
        field, message = _describe(best)
        if prefix:
            field = prefix if field == "<top>" else f"{prefix}.{field}"
        raise error(message, file=file, field=field)


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    while "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def fill_defaults(data: Any, schema: Mapping, root: Mapping | None = None) -> Any:
    """Return a copy of ``data`` with the schema's ``default`` values filled in (recursively)."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(data, dict):
        return data
    out = dict(data)
    props = schema.get("properties", {})
    for key, sub in props.items():
        sub = _resolve(sub, root)
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = fill_defaults(out[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in out:
            if key not in props:
                out[key] = fill_defaults(out[key], extra, root)
    return out


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to ``{"a.b.c": leaf}`` (lists are leaves)."""
    if isinstance(data, Mapping) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def first_difference(old: Mapping, new: Mapping, ignore=COSMETIC_KEYS) -> str | None:
    """The first flattened key whose value differs between two scan specs (or None)."""
    a, b = flatten(old), flatten(new)
    for key in sorted(set(a) | set(b)):
        if any(key == k or key.startswith(k + ".") for k in ignore):
            continue
        if json.dumps(a.get(key), sort_keys=True) != json.dumps(b.get(key), sort_keys=True):
            return key
    return None


@dataclass
class ScanSpec:
    """A checked, fully defaulted scan file.

    Attributes
    ----------
    data
        The defaulted content (plain dicts/lists/scalars, JSON-serialisable).
    file
        The file it came from (None for a dict given in Python).
    text
        The original YAML text (stored in the output's metadata).
    """

    data: dict
    file: str | None
    text: str

    @property
    def digest(self) -> str:
        """SHA-256 of the defaulted spec without its cosmetic keys."""
        flat = {
            k: v
            for k, v in flatten(self.data).items()
            if not any(k == c or k.startswith(c + ".") for c in COSMETIC_KEYS)
        }
        return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()


def _read(source: str | Path | Mapping) -> tuple[dict, str | None, str]:
    if isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
        return data, None, yaml.safe_dump(data, sort_keys=False)
    path = Path(source)
    from eftflow.config import parse_document, read_text

    text = read_text(path, what="a YAML scan file")
    data = parse_document(text, path)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of scan sections at the top", file=str(path))
    return data, str(path), text


def _check_json(data: Any, file: str | None) -> None:
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"scan file holds a value that is not plain data ({err})", file=file
        ) from None


def load_scan_config(source: str | Path | Mapping) -> ScanSpec:
    """Read, validate and default a scan file.

    Parameters
    ----------
    source
        Path to a YAML file, or the same content as a mapping.

    Returns
    -------
    ScanSpec

    Raises
    ------
    ConfigError
        Bad YAML, unknown keys, wrong types, a prior outside its range, bad expressions
        (as :class:`~eftflow.errors.ExpressionError`), unknown scanner or bad scanner options.
    """
    from eftflow.config import refuse_workflow_config

    data, file, text = _read(source)
    refuse_workflow_config(data, file=file, what="a scan spec", doc="docs/scans.md")
    validate_against(data, scan_schema(), file=file)
    data = fill_defaults(data, scan_schema())
    _check_json(data, file)
    spec = ScanSpec(data=data, file=file, text=text)
    # semantic checks: parameter model (priors, expressions, cycles) and scanner options
    from eftflow.inference.scan.model import ParameterModel
    from eftflow.inference.scan.scanners import get_scanner

    params = ParameterModel.from_spec(spec)
    if params.ndim == 0:
        raise ConfigError(
            "no sampled parameter: every parameter is fixed or derived, there is nothing to scan "
            "(give at least one a prior: flat, log, gaussian or lognormal)",
            file=file,
            field="models",
        )
    scanner_cls = get_scanner(data["scanner"]["name"], file=file)
    opts = data["scanner"]["options"]
    try:
        data["scanner"]["options"] = scanner_cls.check_options(opts, file=file)
    except EftflowError:
        raise
    check_dims = getattr(scanner_cls, "check_dimensions", None)
    if check_dims is not None:
        check_dims(data["scanner"]["options"], params.ndim, file=file)
    return spec
