"""The ``eftflow`` command line: a thin layer over the Python API.

One sub-command per Snakemake rule (rule ``analyse_events`` <-> ``eftflow analyse-events``).
Sub-commands live in the modules ``eftflow.cli.cmd_*``; each defines ``register(subparsers)``
and imports the heavy parts of eftflow only inside its handler, so ``eftflow --help`` is fast.

Errors derived from :class:`eftflow.errors.EftflowError` are printed as one line
(``eftflow: error: <file>: <field>: <message>``) and give exit status 2; anything else is a
bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import signal
import sys
import threading

__all__ = ["main", "build_parser"]

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


#: command modules in the order of the workflow (``--help`` lists them so); others follow by name
ORDER = (
    "cmd_setup",
    "cmd_generate",
    "cmd_shower",
    "cmd_analysis",
    "cmd_combine",
    "cmd_plot",
    "cmd_sampling",
    "cmd_ml",
    "cmd_fit",
    "cmd_model",
    "cmd_scan",
    "cmd_report",
    "cmd_profile",
    "cmd_inspect",
    "cmd_config",
)


def _command_modules():
    import eftflow.cli as pkg

    names = [i.name for i in pkgutil.iter_modules(pkg.__path__) if i.name.startswith("cmd_")]
    rank = {name: k for k, name in enumerate(ORDER)}
    for name in sorted(names, key=lambda n: (rank.get(n, len(ORDER)), n)):
        yield importlib.import_module(f"eftflow.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered sub-command."""
    from eftflow import __version__

    parser = argparse.ArgumentParser(
        prog="eftflow",
        description=(
            "Simulation-based inference for EFT measurements at colliders. Each sub-command from "
            "setup to make-report is one stage of the workflow (and one Snakemake rule); they are listed "
            "in workflow order. install-profile, inspect and check-config are tools around them."
        ),
        epilog=(
            "`eftflow <command> --help` gives a command's options; docs/index.md has a page per "
            "stage with a worked example."
        ),
    )
    parser.add_argument("--version", action="version", version=f"eftflow {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=None,
        help="log level for messages on stderr (default WARNING, or as set by -v)",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for module in _command_modules():
        module.register(sub)
    for command in sub.choices.values():
        _show_defaults(command)
    return parser


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append ``(default: X)`` to the help of each option with a default its help does not
    already state (flags and options without a default are left as they are)."""
    for action in parser._actions:
        default = action.default
        if (
            not action.option_strings
            or not action.help
            or action.help == argparse.SUPPRESS
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or (isinstance(default, list | tuple) and not default)
            or action.nargs == 0
            or "default" in action.help
            or "%(default)" in action.help
        ):
            continue
        action.help += " (default: %(default)s)"


def _setup_logging(args: argparse.Namespace) -> None:
    if args.log_level is not None:
        level = getattr(logging, args.log_level)
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``eftflow`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args)
    from eftflow.cli.common import check_output_paths
    from eftflow.errors import EftflowError

    try:
        check_output_paths(args)
        with _terminate_as_exception():
            result = args.handler(args)
    except EftflowError as err:
        logging.getLogger("eftflow").debug("details", exc_info=True)
        source = _config_source(err, args)
        print(f"eftflow: error: {source + ': ' if source else ''}{err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path that cannot be written or read: one line, not a traceback
        logging.getLogger("eftflow").debug("details", exc_info=True)
        where = f"{err.filename}: " if err.filename else ""
        print(f"eftflow: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eftflow: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("eftflow: terminated (SIGTERM); partial outputs removed", file=sys.stderr)
        return 143
    return int(result or 0)


def _config_source(err, args: argparse.Namespace) -> str | None:
    """Where the config key an error names without a file came from: the ``--config`` file
    (``--config`` for inline JSON; ``--cluster-config`` for the ``cluster`` section), or None
    when the error names its file, or no config key, or the command read no config."""
    import re

    if err.file is not None or not err.field:
        return None
    head = re.split(r"[.\[]", err.field, maxsplit=1)[0]
    if head == "cluster":
        from eftflow.cli.common import CLUSTER_ENV

        value, flag = getattr(args, "cluster_config", None), "--cluster-config"
        if value is None and os.environ.get(CLUSTER_ENV):
            return f"${CLUSTER_ENV}"
    else:
        value, flag = getattr(args, "config", None), "--config"
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        from eftflow.config import load_schema

        sections = set(load_schema()["properties"])
    except Exception:  # noqa: BLE001 - only a nicer message is at stake
        return None
    if head not in sections:
        return None
    return flag if value.lstrip().startswith("{") else value


class Terminated(BaseException):
    """SIGTERM (what SLURM and Snakemake send to stop a job), raised in the main thread so that
    the atomic writers remove their temporary outputs as on any other interruption."""


@contextlib.contextmanager
def _terminate_as_exception():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
