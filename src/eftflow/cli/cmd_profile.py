"""``eftflow install-profile``: install a shipped Snakemake profile so `--profile <name>` finds it."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install-profile",
        help="copy a Snakemake profile (slurm, default) to ~/.config/snakemake/<name>",
        description=(
            "Copy one of eftflow's Snakemake profiles to $XDG_CONFIG_HOME/snakemake/<name> "
            "(~/.config/snakemake/<name>), where `snakemake --profile <name>` finds it from any "
            "directory. Edit the copy for your cluster (partition, account)."
        ),
    )
    p.add_argument(
        "name",
        nargs="?",
        default="slurm",
        choices=["slurm", "default"],
        help="profile (default: slurm)",
    )
    p.add_argument("--dest", default=None, help="profile directory to write instead of the default")
    p.add_argument("--force", action="store_true", help="replace a profile already installed there")
    p.set_defaults(handler=run)


def run(args) -> int:
    import logging

    from eftflow.cluster.profiles import install_profile

    path = install_profile(args.name, args.dest, force=args.force)
    logging.getLogger("eftflow.cli").info("installed profile %s in %s", args.name, path)
    print(
        f"installed Snakemake profile {args.name!r} in {path}; use: snakemake --profile {path if args.dest else args.name}"
    )
    return 0
