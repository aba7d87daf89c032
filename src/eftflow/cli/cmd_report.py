"""``eftflow make-report``: the HTML report of a run (rule ``make_report``)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-report",
        help="write the HTML report of a run: key numbers, plots, time/memory, provenance",
        description=(
            "Read the results of a run (setup, per-job event stores, combined store, training "
            "samples, Fisher information, ...) and the rules' benchmark files, and write one "
            "self-contained HTML file (plots embedded). Computes nothing new; a section whose "
            "inputs are missing is skipped with a note. Stages add sections by registering them "
            "(eftflow.report.report_section)."
        ),
    )
    p.add_argument("--results", required=True, help="the run's results directory")
    p.add_argument("--benchmarks", default=None, help="directory of the rules' benchmark TSV files")
    p.add_argument(
        "--config",
        default=None,
        help="the run's config (a file, or inline JSON as the rule passes it); shown in the report",
    )
    p.add_argument("-o", "--output", required=True, help="HTML file to write")
    p.add_argument(
        "--module",
        action="append",
        default=[],
        help="extra module registering report sections (repeatable)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a section fails (not when one is skipped for missing inputs)",
    )
    p.set_defaults(handler=run)


def run(args) -> int:
    import logging

    from eftflow.report import build_report

    config = None
    if args.config:
        from eftflow.cli.common import load_stage_config

        config = load_stage_config(args.config)
    info = build_report(
        args.results,
        args.output,
        benchmarks=args.benchmarks,
        config=config,
        modules=args.module,
    )
    log = logging.getLogger("eftflow.report")
    for name, why in info["skipped"].items():
        log.info("section %r skipped: %s", name, why)
    if info["failed"] and args.strict:
        log.error("%d section(s) failed: %s", len(info["failed"]), info["failed"])
        return 1
    return 0
