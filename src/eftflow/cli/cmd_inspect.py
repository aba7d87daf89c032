"""``eftflow inspect``: what is in an output (stores, setup files, estimators, built models)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="summarise outputs: stores, setup files, LHE files, estimators, ensembles, models",
        description=(
            "Print what an output holds, without loading it: event stores (events, observables, "
            "benchmarks, partitions, events per sampling benchmark, optionally every benchmark's "
            "cross section), particle, object and training stores, setup files and MadMiner "
            "event files, LHE files (beams, PDF, weight groups: benchmarks, scale variations, PDF "
            "members), estimators, ensembles and built models, each with its provenance and, "
            "for stores, the arrays and their size on disk. See docs/layout.md."
        ),
    )
    p.add_argument(
        "paths", nargs="+", help="outputs to inspect (*.zarr, *.h5, *.json, *.lhe.gz, directories)"
    )
    p.add_argument(
        "--cross-sections",
        action="store_true",
        help="event stores: also each benchmark's cross section in pb (Σ w × MadMiner's "
        "sampling factors; one streamed pass); LHE files: Σ of every weight",
    )
    p.add_argument("--json", action="store_true", help="one JSON document (a list) on stdout")
    p.set_defaults(handler=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    import json
    import sys

    from eftflow.inspect import format_summary, inspect_path

    infos = [inspect_path(p, cross_sections=args.cross_sections) for p in args.paths]
    if args.json:
        json.dump(infos, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n\n".join(format_summary(i) for i in infos) + "\n")
    return 0
