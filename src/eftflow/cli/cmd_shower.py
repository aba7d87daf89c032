"""``eftflow shower-events``: Pythia 8 shower of an LHE file → particle store (+ HepMC3)."""

from __future__ import annotations

import argparse

from eftflow.cli.common import (
    add_config_argument,
    add_resources_arguments,
    non_negative_int,
    propagate_failure,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "shower-events",
        help="shower and hadronise LHE events with Pythia 8, keeping every benchmark weight",
        description=(
            "Run Pythia 8 on an LHE file (Beams:frameType = 4), carry the <rwgt> weight of every "
            "physics benchmark of the setup event by event, and write the particle-level events "
            "as a chunked zarr store (optionally also HepMC3 for Delphes). --config is the "
            "'shower' section as inline JSON, or a full config file (its 'shower' section and "
            "global 'seed' are used)."
        ),
    )
    p.add_argument("input", help="LHE file (.lhe or .lhe.gz) with one weight per benchmark")
    p.add_argument(
        "--setup", required=True, help="setup file (setup.h5): benchmark names and order"
    )
    add_config_argument(p)
    p.add_argument("-o", "--output", required=True, help="particle store to write (.zarr)")
    p.add_argument("--hepmc", default=None, help="also write HepMC3 ASCII here")
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        help="explicit Pythia seed (default: derived)",
    )
    p.add_argument(
        "--global-seed",
        type=non_negative_int,
        default=None,
        help="global seed for the derived seed",
    )
    p.add_argument("--sample", default=None, help="sample name (default: from the LHE provenance)")
    p.add_argument(
        "--job",
        type=non_negative_int,
        default=None,
        help="job index (default: from the LHE provenance)",
    )
    add_resources_arguments(p)
    p.set_defaults(handler=run)


@propagate_failure("shower_events")
def run(args) -> int:
    import logging
    from pathlib import Path

    from eftflow.cli.common import load_stage_config
    from eftflow.errors import ConfigError
    from eftflow.generate.seeds import job_seed
    from eftflow.setup import EFTSetup
    from eftflow.shower.pythia import read_lhe_header, shower_lhe

    log = logging.getLogger("eftflow.shower")
    cfg = load_stage_config(args.config) if args.config else {}
    global_seed = args.global_seed
    if "shower" in cfg or "parameters" in cfg:  # a full config
        global_seed = cfg.get("seed", 0) if global_seed is None else global_seed
        cfg = dict(cfg.get("shower") or {})
    if not isinstance(cfg, dict):
        raise ConfigError("the shower section must be a mapping", field="shower")
    setup = EFTSetup.from_file(args.setup)
    names = [b.name for b in setup.physics_benchmarks()]
    seed = args.seed if args.seed is not None else cfg.get("seed")
    if seed is not None:
        from eftflow.generate.base import check_count

        seed = check_count(seed, field="shower.seed", minimum=0)
    if global_seed is None:  # inline JSON of the section: the schema's default global seed
        from eftflow.config import load_schema

        global_seed = load_schema()["properties"]["seed"]["default"]
    if seed is None:
        prov = read_lhe_header(args.input)["provenance"]
        sample = (
            args.sample if args.sample is not None else prov.get("sample", Path(args.input).name)
        )
        job = args.job if args.job is not None else int(prov.get("job_index", 0))
        seed = job_seed(int(global_seed), str(sample), job, stage="shower")
        log.info(
            "shower seed %d = job_seed(%s, %s, %d, stage='shower')",
            seed,
            global_seed,
            sample,
            job,
        )
    cfg.pop("seed", None)
    from eftflow.config import config_hash
    from eftflow.generate.systematics import lhe_nuisance_weights

    result = shower_lhe(
        args.input, args.output, names, seed=int(seed), config=cfg, hepmc=args.hepmc,
        provenance={"config_hash": config_hash({"shower": cfg, "seed": global_seed})},
        nuisance=lhe_nuisance_weights(setup, args.input), reference=setup.reference_benchmark,
    )  # fmt: skip
    log.info(
        "wrote %s: %d events (%d read, %d dropped)",
        result.output,
        result.n_accepted,
        result.n_read,
        result.n_dropped,
    )
    return 0
