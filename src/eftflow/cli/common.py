"""Helpers shared by the sub-command modules (kept free of heavy imports)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_config_argument", "load_stage_config", "add_resources_arguments"]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``: a YAML/JSON file path or an inline JSON object (as rules pass it)."""
    parser.add_argument(
        "--config",
        default=None,
        help="config file (YAML) or inline JSON of the stage section, as Snakemake rules pass it",
    )


def add_resources_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` and ``--memory-mb`` (what the Snakemake rule was given)."""
    parser.add_argument("--threads", type=int, default=1, help="cores this job may use")
    parser.add_argument("--memory-mb", type=int, default=2000, help="memory this job may use")


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
