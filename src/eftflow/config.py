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
    "read_config_file",
    "read_text",
    "parse_document",
    "read_document",
    "check_workflow_config",
    "validate_config",
    "check_benchmark_references",
    "refuse_workflow_config",
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


def _benchmark_references(config: dict):
    """(key path, name) of every benchmark the configuration names outside ``benchmarks``."""

    def in_spec(spec, key):
        if isinstance(spec, str):
            yield key, spec
        elif isinstance(spec, dict) and spec.get("type") == "benchmark":
            yield f"{key}.name", spec.get("name")
        elif isinstance(spec, dict) and spec.get("type") == "benchmarks":
            for j, n in enumerate(spec.get("names") or []):
                yield f"{key}.names[{j}]", n

    samples = (config.get("augmentation") or {}).get("samples") or []
    for i, sample in enumerate(samples if isinstance(samples, list) else []):
        if not isinstance(sample, dict):
            continue
        method = sample.get("method")
        roles = ("theta0", "theta1") if method in ("ratio", "more_ratios") else ("theta",)
        for role in roles:
            yield from in_spec(sample.get(role), f"augmentation.samples[{i}].{role}")
        if method == "more_ratios":
            for j, spec in enumerate(sample.get("additional_thetas") or []):
                yield from in_spec(spec, f"augmentation.samples[{i}].additional_thetas[{j}]")
    demo = (config.get("model") or {}).get("demo")
    if isinstance(demo, dict) and isinstance(demo.get("reference"), str):
        yield "model.demo.reference", demo["reference"]
    gen = (config.get("generation") or {}).get("samples")
    for name, sample in (gen or {}).items() if isinstance(gen, dict) else ():
        if isinstance(sample, dict) and isinstance(sample.get("sampling_benchmark"), str):
            yield f"generation.samples.{name}.sampling_benchmark", sample["sampling_benchmark"]


def check_benchmark_references(config: dict, *, file: str | None = None) -> None:
    """Raise :class:`ConfigError` unless every benchmark a validated workflow configuration names
    outside ``benchmarks`` is declared there (or is one the setup stage adds: the morphing basis
    completion ``morphing_basis_vector_<k>``, finite-difference ``<b>_plus_<p>``).

    The workflow calls it at start-up, so that a typo, or a default naming ``sm`` in a
    configuration without it, fails at once and not in the augmentation stage hours later.
    Single-stage commands do not: they use only part of the configuration.
    """
    import re

    declared = [b.get("name") for b in config.get("benchmarks") or [] if isinstance(b, dict)]
    added = re.compile(r"morphing_basis_vector_\d+|.+_plus_.+")
    for key, name in _benchmark_references(config):
        if name in declared or (isinstance(name, str) and added.fullmatch(name)):
            continue
        raise ConfigError(
            f"unknown benchmark {name!r}; declared benchmarks: "
            f"{', '.join(map(str, declared)) or 'none'} (declare it under `benchmarks`, or set "
            f"this key: the defaults of augmentation.samples and model.demo.reference use 'sm')",
            file=file,
            field=key,
        )


#: top-level keys of a workflow configuration that no spec file (fit, limits, model, scan) has
WORKFLOW_ONLY_KEYS = frozenset(
    {"run_name", "morphing", "benchmarks", "generation", "shower", "detector", "analysis",
     "combine", "augmentation", "training", "ensemble", "evaluation"}
)  # fmt: skip


def refuse_workflow_config(data, *, file, what: str, doc: str) -> None:
    """Raise :class:`ConfigError` if ``data`` looks like a workflow configuration (two or more
    of :data:`WORKFLOW_ONLY_KEYS` at its top level) where ``what`` was expected."""
    if isinstance(data, dict) and len(WORKFLOW_ONLY_KEYS.intersection(data)) >= 2:
        raise ConfigError(
            f"this is a workflow configuration (like config/config.yaml), not {what}; "
            f"see {doc} for its format",
            file=None if file is None else str(file),
        )


def load_config(path: str | Path | None, overrides: dict | None = None) -> dict:
    """Read, validate and complete a configuration file (``None``: the embedded default).

    ``overrides`` is merged on top (nested dicts merged key by key) before validation.
    """
    path = default_config_path() if path is None else Path(path)
    data = read_config_file(path)
    if overrides:
        data = _merge(data, overrides)
    return validate_config(data, file=str(path))


def read_text(path: str | Path, *, what: str, error: type = ConfigError) -> str:
    """The UTF-8 text of ``path``; ``error`` (naming the file) if it cannot be read or holds
    binary content (an HDF5 file, a gzip or a zarr chunk given by mistake; field ``byte N``).
    ``what`` names the kind of file expected (``"a YAML configuration file"``)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise error(f"cannot read {what}: {err.strerror}", file=str(path)) from None
    except UnicodeDecodeError as err:
        raise error(
            f"binary content, not {what}", file=str(path), field=f"byte {err.start}"
        ) from None


def parse_document(text: str, path: str | Path, *, error: type = ConfigError) -> Any:
    """``text`` (of the file ``path``) parsed as YAML, or as JSON for ``*.json``; malformed
    documents raise ``error`` naming the file, with field ``line L, column C``."""
    if Path(path).suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise error(
                f"malformed JSON: {err.msg}",
                file=str(path),
                field=f"line {err.lineno}, column {err.colno}",
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"malformed YAML: {problem}", file=str(path), field=where) from None


def read_document(path: str | Path, *, what: str, error: type = ConfigError) -> Any:
    """The YAML (or, for ``*.json``, JSON) document of a text file, parsed but not yet checked:
    :func:`read_text` then :func:`parse_document`. ``error`` is the exception raised (a subclass
    of :class:`~eftflow.errors.EftflowError`)."""
    return parse_document(read_text(path, what=what, error=error), path, error=error)


def read_config_file(path: str | Path) -> dict:
    """The YAML document of a configuration file as a dict, not yet validated (an empty file is
    ``{}``); unreadable files, malformed YAML (with line and column) and documents that are not
    mappings raise :class:`ConfigError` naming the file."""
    data = read_document(path, what="a YAML configuration file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"a configuration is a mapping of keys, not a {type(data).__name__}", file=str(path)
        )
    return data


def check_workflow_config(paths: list[str | Path]) -> dict:
    """What the workflow does with ``--configfile A B …`` before running anything: the files
    merged in order (later keys win, nested mappings merged), validated and completed, and the
    benchmark names they use checked (:func:`check_benchmark_references`). Returns the complete
    configuration; errors name the file (for a merge of several, all of them) and the key."""
    if not paths:
        raise ConfigError("no configuration file given", field="configfile")
    data: dict = {}
    for p in paths:
        data = _merge(data, read_config_file(p))
    source = ", ".join(str(p) for p in paths)
    config = validate_config(data, file=source)
    check_benchmark_references(config, file=source)
    return config


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
