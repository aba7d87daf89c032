"""``eftflow setup``: parameters, benchmarks and morphing → setup.h5 (+ basis plot)."""

from __future__ import annotations

import argparse

from eftflow.cli.common import add_config_argument

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "setup",
        help="declare parameters/benchmarks, find the morphing basis, write setup.h5",
        description=(
            "Build the analysis setup from the config (parameters, benchmarks, morphing, "
            "systematics), write it in MadMiner's HDF5 layout and optionally plot the morphing basis."
        ),
    )
    add_config_argument(p)
    p.add_argument("-o", "--output", required=True, help="setup file to write (HDF5)")
    p.add_argument(
        "--plot",
        default=None,
        help="also draw the morphing basis: a figure file (.png, .pdf, ...) or a directory "
        "(morphing_basis.png in it)",
    )
    p.set_defaults(handler=run)


def run(args) -> int:
    import logging

    from eftflow.cli.common import load_stage_config
    from eftflow.config import config_hash, validate_config
    from eftflow.setup import EFTSetup
    from eftflow.store.events import make_provenance

    log = logging.getLogger("eftflow.setup")
    cfg = load_stage_config(args.config)
    source = args.config if args.config and not args.config.strip().startswith("{") else "--config"
    cfg = validate_config(cfg, file=source)
    setup = EFTSetup.from_config(cfg, file=source)
    setup.save(
        args.output, provenance=make_provenance(config_hash=config_hash(cfg), seed=cfg["seed"])
    )
    log.info("wrote %s: %s", args.output, setup)
    if args.plot:
        from eftflow.cli.common import plot_file
        from eftflow.plotting.morphing import plot_morphing_basis

        path = plot_file(args.plot, "morphing_basis.png")
        plot_morphing_basis(setup, path)
        log.info("wrote %s", path)
    return 0
