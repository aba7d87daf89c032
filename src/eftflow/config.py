"""Configuration: YAML files validated against the JSON schema, defaults filled in.

The schema (``workflow/schemas/config.schema.yaml``, shipped as ``eftflow/data``) gives every key
a description and a default and forbids unknown keys. Snakemake validates the same file with
``snakemake.utils.validate`` (see ``workflow/rules/common.smk``); the CLI uses
:func:`load_config`. Errors name the file, the key path and what was expected::

    config.yaml: morphing.n_trials: expected integer, got 'many'

Example
-------
>>> cfg = load_config(None)            # the embedded default
>>> cfg["morphing"]["max_overall_power"]
2
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from eftflow.errors import ConfigError

__all__ = [
    "load_config",
    "validate_config",
    "load_schema",
    "config_hash",
    "default_config_path",
    "format_key_path",
    "results_root",
]


def default_config_path() -> Path:
    """The embedded default configuration (``config/config.yaml``)."""
    return Path(str(resources.files("eftflow") / "data" / "config.yaml"))


@lru_cache(maxsize=4)
def _load_schema_cached(name: str) -> str:
    return (resources.files("eftflow") / "data" / name).read_text()


def load_schema(name: str = "config.schema.yaml") -> dict:
    """The JSON schema (as a dict) shipped with the package."""
    return yaml.safe_load(_load_schema_cached(name))


def format_key_path(path) -> str:
    """``['a', 0, 'b']`` → ``a[0].b``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(error) -> str:
    v = error.validator
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = (
            sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        )
        names = ", ".join(repr(e) for e in extra)
        return f"unknown key {names}; allowed keys: {', '.join(allowed)}"
    if v == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}, got {error.instance!r}"
    if v == "required":
        return error.message.replace("is a required property", "is required but missing")
    if v == "enum":
        return (
            f"expected one of {', '.join(map(repr, error.validator_value))}, got {error.instance!r}"
        )
    return f"{error.message}"


def _defaults_validator():
    from jsonschema import Draft202012Validator, validators

    base = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})


def validate_config(config: dict, *, file: str | None = None, schema: dict | None = None) -> dict:
    """Validate ``config`` in place (filling defaults) and return it.

    Raises
    ------
    ConfigError
        On the first (most relevant) violation, naming ``file`` and the key path.
    """
    from jsonschema.exceptions import best_match

    schema = load_schema() if schema is None else schema
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"the configuration must be a mapping, got {type(config).__name__}", file=file
        )
    validator = _defaults_validator()(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        err = best_match(errors)
        raise ConfigError(_describe(err), file=file, field=format_key_path(err.absolute_path))
    _check_semantics(config, file)
    return config


def _check_semantics(config: dict, file: str | None) -> None:
    """Checks JSON schema cannot express: unique names, benchmarks naming known parameters."""
    for section in ("parameters", "benchmarks", "systematics"):
        names = [item.get("name") for item in config.get(section, []) if isinstance(item, dict)]
        seen = set()
        for i, n in enumerate(names):
            if n in seen:
                raise ConfigError(f"duplicate name {n!r}", file=file, field=f"{section}[{i}].name")
            seen.add(n)
    params = {p["name"] for p in config.get("parameters", [])}
    for i, b in enumerate(config.get("benchmarks", [])):
        for key in b.get("values", {}):
            if key not in params:
                raise ConfigError(
                    f"unknown parameter {key!r}; declared parameters: {', '.join(sorted(params))}",
                    file=file,
                    field=f"benchmarks[{i}].values.{key}",
                )
    for i, p in enumerate(config.get("parameters", [])):
        lo, hi = p.get("parameter_range", (0, 1))
        if not lo < hi:
            raise ConfigError(
                f"expected low < high, got [{lo}, {hi}]",
                file=file,
                field=f"parameters[{i}].parameter_range",
            )
        transform = p.get("param_card_transform")
        if transform is not None:
            from eftflow.physics.expression import check_arithmetic

            check_arithmetic(
                transform, ("theta",), file=file, field=f"parameters[{i}].param_card_transform"
            )


def load_config(path: str | Path | None, overrides: dict | None = None) -> dict:
    """Read, validate and complete a configuration file (``None``: the embedded default).

    ``overrides`` is merged on top (nested dicts merged key by key) before validation.
    """
    path = default_config_path() if path is None else Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read configuration: {err.strerror}", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"malformed YAML: {problem}", file=str(path), field=where) from None
    if data is None:
        data = {}
    if overrides:
        data = _merge(data, overrides)
    return validate_config(data, file=str(path))


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for k, v in extra.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return extra


def config_hash(config: dict) -> str:
    """A stable short hash of a (validated) configuration, recorded in provenance."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def results_root(config: dict) -> str:
    """``results`` or ``results/<run_name>``."""
    name = config.get("run_name") or ""
    return f"results/{name}" if name else "results"
