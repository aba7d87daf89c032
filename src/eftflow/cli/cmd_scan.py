"""``eftflow scan``: run a GAMBIT-style global scan from a scan file (also under mpiexec)."""

from __future__ import annotations

import argparse
import json
import sys

from eftflow.cli.common import positive_int

__all__ = ["register"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scan",
        aliases=["run-scan"],  # rule run_scan <-> eftflow run-scan
        help="run a global scan (models, priors, likelihood components, scanner) from a YAML file",
        description=(
            "Run a global scan described by SCANFILE (see docs/scans.md). Works in one process or "
            "under `mpiexec -n N eftflow scan ...`. Exit status 3: stopped on a signal "
            "(SIGTERM/SIGINT/SIGUSR1) after writing a checkpoint; rerun with --resume."
        ),
    )
    p.add_argument("scanfile", help="scan file (YAML)")
    p.add_argument(
        "-o", "--output", default=None, help="output directory (default: the file's 'output')"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true", help="continue an interrupted scan in the output directory"
    )
    mode.add_argument(
        "--force", action="store_true", help="overwrite an existing scan in the output directory"
    )
    mode.add_argument(
        "--resume-if-possible",
        action="store_true",
        help="continue the scan in the output directory if it holds a checkpoint of the same scan "
        "file, else start it afresh, replacing what is there (the workflow's rule run_scan uses "
        "this, so that a job killed by a time limit continues when rerun)",
    )
    p.add_argument(
        "--stop-after",
        type=positive_int,
        default=None,
        metavar="N",
        help="checkpoint and stop once at least N new points are done (at the end of the scanner's batch that reaches N: a checkpoint holds whole batches)",
    )
    p.add_argument("--no-mpi", action="store_true", help="never use MPI, even under a launcher")
    p.add_argument(
        "--plots", action="store_true", help="also write profile/posterior plots to OUTPUT/plots"
    )
    p.set_defaults(handler=_handler, output_updated_in_place=True)


def _handler(args: argparse.Namespace) -> int:
    from eftflow.inference.scan.checkpoint import EXIT_INTERRUPTED
    from eftflow.inference.scan.run import ScanInterrupted, run_scan

    def scan(resume: bool, force: bool):
        return run_scan(
            args.scanfile,
            output=args.output,
            resume=resume,
            force=force,
            stop_after=args.stop_after,
            use_mpi=False if args.no_mpi else None,
        )

    try:
        if args.resume_if_possible:
            summary = _resume_if_possible(args, scan)
        else:
            summary = scan(args.resume, args.force)
    except ScanInterrupted as err:
        print(
            f"eftflow: scan interrupted ({err}); checkpoint written, rerun with --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if summary is None:  # MPI rank > 0
        return 0
    if args.plots:
        from eftflow.plotting.scan import plot_scan

        plot_scan(summary.output)
    print(json.dumps(summary.to_dict(), default=float))
    return 0


def _resume_if_possible(args: argparse.Namespace, scan):
    """``scan(resume=True)`` when the output holds a checkpoint of the same scan file (the
    fully defaulted file it recorded, ``scan.updated.yaml``, equals this one); else a fresh scan,
    ``scan(force=True)``. Errors of the resumed scan (a lock held by a running scan, a damaged
    checkpoint) are not a reason to start over: they propagate."""
    import logging
    from pathlib import Path

    import yaml

    from eftflow.inference.scan.config import first_difference, load_scan_config

    log = logging.getLogger("eftflow.scan")
    spec = load_scan_config(args.scanfile)
    output = Path(args.output) if args.output else Path(spec.data["output"])
    if not (output / "checkpoint.json").is_file():
        return scan(False, True)
    try:
        old = yaml.safe_load((output / "scan.updated.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        old = None
    key = None if old is None else first_difference(old, spec.data)
    if old is None or key is not None:
        log.warning(
            "the checkpoint in %s is of another scan file (%s differs): starting afresh",
            output, key or "scan.updated.yaml unreadable",
        )  # fmt: skip
        return scan(False, True)
    return scan(True, False)
