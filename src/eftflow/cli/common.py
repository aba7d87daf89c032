"""Helpers shared by the sub-command modules (kept free of heavy imports)."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os

__all__ = [
    "add_config_argument",
    "load_stage_config",
    "add_resources_arguments",
    "add_cluster_argument",
    "load_cluster_config",
    "propagate_failure",
    "plot_file",
    "plot_directory",
    "FIGURE_SUFFIXES",
    "CLUSTER_ENV",
    "positive_int",
    "non_negative_int",
    "fraction_below_one",
    "check_output_paths",
]

#: suffixes that make a ``--plot`` value a figure file (the formats matplotlib writes)
FIGURE_SUFFIXES = (
    ".png", ".pdf", ".svg", ".svgz", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".pgf",
)  # fmt: skip


def plot_file(value: str, default_name: str):
    """Where a command that draws one figure writes it: ``value`` when it names a figure file
    (a suffix of :data:`FIGURE_SUFFIXES`), else ``value/default_name`` (a directory, as for the
    commands that draw several)."""
    from pathlib import Path

    path = Path(value)
    return path if path.suffix.lower() in FIGURE_SUFFIXES else path / default_name


def plot_directory(value: str, flag: str = "--plot") -> str:
    """``value`` of a command that draws several figures, checked to be a directory name (a
    figure file name is refused before any work is done)."""
    from pathlib import Path

    from eftflow.errors import ConfigError

    if Path(value).suffix.lower() in FIGURE_SUFFIXES:
        raise ConfigError(
            f"{value!r} is a figure file name, but this command draws several figures: give a "
            "directory",
            field=flag,
        )
    return value


#: Environment variable holding the ``cluster`` config section as JSON (set by the workflow).
CLUSTER_ENV = "EFTFLOW_CLUSTER_CONFIG"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``: a YAML/JSON file path or an inline JSON object (as rules pass it)."""
    parser.add_argument(
        "--config",
        default=None,
        help="config file (YAML) or inline JSON of the stage section, as Snakemake rules pass it",
    )


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= {minimum}, got {text!r}"
        ) from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (cores, MB, events per chunk)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, job and member indices, retry counts)."""
    return _int_at_least(text, 0)


def fraction_below_one(text: str) -> float:
    """argparse type: a number in [0, 1) (tolerated fractions)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


#: argument names (``args.<name>``) that are paths a command writes
OUTPUT_ARGS = ("output", "plot", "plot_dir", "hepmc")
#: argument names that are paths (or lists of paths) a command reads
INPUT_ARGS = (
    "input", "inputs", "setup", "store", "config", "cluster_config", "trainset", "model", "spec",
    "fisher", "ensemble", "results", "scanfile",
)  # fmt: skip


def check_output_paths(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output path that is one of the command's inputs (or a
    directory holding one, which replacing the output would delete) or another of its outputs.

    Commands whose output directory is updated in place (``scan``) set
    ``output_updated_in_place=True`` in their defaults: for them only an equal path is refused.
    """
    from pathlib import Path

    from eftflow.errors import ConfigError

    def resolved(value) -> Path | None:
        if not isinstance(value, str | os.PathLike) or not str(value).strip():
            return None
        if str(value).lstrip().startswith("{"):  # inline JSON
            return None
        return Path(value).expanduser().resolve()

    inputs = []
    for name in INPUT_ARGS:
        values = getattr(args, name, None)
        for value in values if isinstance(values, list | tuple) else [values]:
            path = resolved(value)
            if path is not None and path.exists():
                inputs.append((name, value, path))
    in_place = getattr(args, "output_updated_in_place", False)
    seen = []
    for name in OUTPUT_ARGS:
        value = getattr(args, name, None)
        out = resolved(value)
        if out is None:
            continue
        flag = "--" + name.replace("_", "-")
        for other, _, other_path in seen:
            if out == other_path:
                raise ConfigError(
                    f"is given both as {flag} and as --{other.replace('_', '-')}: "
                    "give each output its own path",
                    file=str(value),
                    field=flag,
                )
        for in_name, in_value, in_path in inputs:
            inside = not in_place and out in in_path.parents
            if out == in_path or inside:
                label = repr(in_name.replace("_", "-"))
                what = (
                    f"is the input {label}"
                    if out == in_path
                    else f"is a directory holding the input {label} ({in_value})"
                )
                raise ConfigError(
                    f"the output path {what}: writing the output would destroy it; choose "
                    "another output path",
                    file=str(value),
                    field=flag,
                )
        seen.append((name, value, out))


def add_resources_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` and ``--memory-mb`` (what the Snakemake rule was given)."""
    parser.add_argument("--threads", type=positive_int, default=1, help="cores this job may use")
    parser.add_argument(
        "--memory-mb", type=positive_int, default=2000, help="memory this job may use"
    )


def load_stage_config(value: str | None, *, flag: str = "--config") -> dict:
    """Read ``--config``: inline JSON (starts with ``{``) or a path to a full config file.

    ``flag`` names the option in the messages about malformed inline JSON.
    """
    if value is None:
        from eftflow.config import load_config

        return load_config(None)
    text = value.strip()
    if text.startswith("{"):
        from eftflow.errors import ConfigError

        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"inline JSON is malformed: {err.msg}", file=flag, field=f"column {err.colno}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("inline JSON must be an object", file=flag)
        return data
    if text.startswith("[") and not os.path.exists(value):
        from eftflow.errors import ConfigError

        raise ConfigError(
            "inline JSON must be an object ({...}), not a list, or a config file path", file=flag
        )
    from eftflow.config import load_config

    return load_config(value)


def validated_section(config: dict, name: str, *, file: str | None = None) -> tuple[dict, int]:
    """(section ``name``, global seed) from a full config or inline JSON of the section itself
    (plus an optional ``seed``), validated against the config schema with its defaults filled:
    inline JSON gets the same checks (unknown keys, types, ranges) and defaults (the seed's too)
    as a config file."""
    from eftflow.config import load_schema, validate_config

    full = load_schema()
    schema = full["properties"]
    if name in config:
        section = config[name] if config[name] is not None else {}
    else:
        section = {k: v for k, v in config.items() if k != "seed"}
    sub = {name: section}
    if "seed" in config:
        sub["seed"] = config["seed"]
    validate_config(
        sub,
        file=file if file is not None else "--config",
        schema={
            "type": "object",
            "properties": {name: schema[name], "seed": schema["seed"]},
            "$defs": full.get("$defs", {}),
        },
    )
    return sub[name], int(sub["seed"])


def add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--cluster-config``: where the command's Dask steps run (the ``cluster`` section)."""
    parser.add_argument(
        "--cluster-config",
        default=None,
        help=(
            "the `cluster` config section (inline JSON or a config file) choosing where Dask runs: "
            f"local, slurm-runner or slurm-cluster; default: ${CLUSTER_ENV} (the workflow sets it "
            "from the config, outside the rules' params, so switching modes reruns nothing), "
            "else local"
        ),
    )


def load_cluster_config(value: str | None) -> dict | None:
    """The ``cluster`` section from ``--cluster-config`` or ``$EFTFLOW_CLUSTER_CONFIG`` (or None).

    A full config (a file, or JSON with a ``cluster`` key) gives its ``cluster`` section.
    """
    value = value if value is not None else os.environ.get(CLUSTER_ENV) or None
    if value is None:
        return None
    data = load_stage_config(value, flag="--cluster-config")
    if "cluster" in data and isinstance(data["cluster"], dict):
        data = data["cluster"]
    return data


def propagate_failure(stage: str, *, input_attr: str = "input", output_attr: str = "output"):
    """Decorate a per-job command handler so a failure marker at its input passes through.

    When ``args.<input_attr>`` is a failure marker (see :mod:`eftflow.store.failed`: a generator
    job that failed for good under ``generation.max_failed_fraction``), the handler is not run: a
    marker naming ``stage`` is written at ``args.<output_attr>`` and the command exits 0.
    """

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(args) -> int:
            from eftflow.store.failed import read_failure_marker, write_failure_marker

            record = read_failure_marker(getattr(args, input_attr))
            if record is None:
                return handler(args)
            output = getattr(args, output_attr)
            write_failure_marker(
                output, reason=record.get("reason", ""), stage=stage, upstream=record
            )
            logging.getLogger("eftflow.cli").warning(
                "%s: input %s is a failure marker (%s job %s/%s: %s); wrote a marker at %s",
                stage,
                getattr(args, input_attr),
                record.get("failed_stage"),
                record.get("sample"),
                record.get("job"),
                record.get("reason"),
                output,
            )
            return 0

        return wrapper

    return decorate
