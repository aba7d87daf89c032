"""``eftflow check-config``: validate workflow configuration files before a run."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate workflow config files as `snakemake --configfile` would use them",
        description=(
            "Read the files in order (later keys win, nested mappings merged, as Snakemake "
            "merges several --configfile), validate them against the schema with its defaults, "
            "and check every benchmark name they use. Errors name the file, the key or the YAML "
            "line and column; Snakemake's own message for malformed YAML names neither. Prints "
            "a summary, or the complete configuration with --show. See docs/configuration.md."
        ),
    )
    p.add_argument("configfiles", nargs="+", help="configuration files (YAML)")
    p.add_argument(
        "--show", action="store_true", help="print the complete configuration (defaults filled)"
    )
    p.set_defaults(handler=run_check_config)


def run_check_config(args: argparse.Namespace) -> int:
    import sys

    import yaml

    from eftflow.config import check_workflow_config, results_root

    config = check_workflow_config(args.configfiles)
    if args.show:
        sys.stdout.write(yaml.safe_dump(config, sort_keys=False))
        return 0
    names = ", ".join(args.configfiles)
    benchmarks = [b["name"] for b in config.get("benchmarks") or []]
    parameters = [p["name"] for p in config.get("parameters") or []]
    backend = (config.get("generation") or {}).get("backend")
    sys.stdout.write(
        f"{names}: valid\n"
        f"  results: {results_root(config)}\n"
        f"  parameters: {', '.join(parameters) or 'none'}\n"
        f"  benchmarks: {', '.join(benchmarks) or 'none'}\n"
        f"  generator: {backend}\n"
    )
    return 0
