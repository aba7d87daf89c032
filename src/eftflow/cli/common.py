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


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (cores, MB, events per chunk)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_resources_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` and ``--memory-mb`` (what the Snakemake rule was given)."""
    parser.add_argument("--threads", type=positive_int, default=1, help="cores this job may use")
    parser.add_argument(
        "--memory-mb", type=positive_int, default=2000, help="memory this job may use"
    )


def load_stage_config(value: str | None) -> dict:
    """Read ``--config``: inline JSON (starts with ``{``) or a path to a full config file."""
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
                f"inline JSON is malformed: {err.msg}", field=f"column {err.colno}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("inline JSON must be an object", field="--config")
        return data
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
    data = load_stage_config(value)
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
