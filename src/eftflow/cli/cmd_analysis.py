"""``eftflow simulate-detector`` and ``eftflow analyse-events``: particles → objects → observables."""

from __future__ import annotations

import argparse

from eftflow.cli.common import (
    add_cluster_argument,
    add_config_argument,
    add_resources_arguments,
    propagate_failure,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate-detector",
        help="detector simulation: particle store or LHE file -> object store (reconstructed objects)",
        description=(
            "Run the detector backend of the config's `detector` section (builtin card, parton-level "
            "smearing or Delphes) over a particle store (*.zarr from the shower) or an LHE file, and "
            "write an object store of reconstructed electrons, muons, leptons, photons, jets and MET "
            "with every benchmark weight."
        ),
    )
    p.add_argument("input", help="particle store (*.zarr) or LHE file (*.lhe, *.lhe.gz)")
    p.add_argument(
        "--setup", required=True, help="setup file (checks that every benchmark has weights)"
    )
    add_config_argument(p)
    p.add_argument("-o", "--output", required=True, help="object store to write (*.zarr)")
    p.add_argument(
        "--sampling-benchmark",
        default=None,
        help="benchmark the events were sampled at (default: from "
        "the input's provenance, else background)",
    )
    add_resources_arguments(p)
    add_cluster_argument(p)
    p.set_defaults(handler=run_simulate_detector)

    q = sub.add_parser(
        "analyse-events",
        help="observables, cuts and efficiencies: object store -> event store",
        description=(
            "Evaluate the config's `analysis` section (observables, cuts, efficiencies written as safe "
            "expressions) over an object store in chunks with Dask and write the event store "
            "(observables, weights per benchmark, sampling benchmark)."
        ),
    )
    q.add_argument("input", help="object store written by simulate-detector")
    q.add_argument(
        "--setup", required=True, help="setup file (selects physics and nuisance weights)"
    )
    add_config_argument(q)
    q.add_argument("-o", "--output", required=True, help="event store to write (*.zarr)")
    add_resources_arguments(q)
    add_cluster_argument(q)
    q.set_defaults(handler=run_analyse_events)


def _config(args) -> tuple[dict, str | None]:
    from eftflow.cli.common import load_stage_config

    cfg = load_stage_config(args.config)
    source = args.config if args.config and not args.config.strip().startswith("{") else "--config"
    return cfg, source


def _sampling_index(name, benchmark_names, provenance) -> int:
    from eftflow.errors import ConfigError

    name = name or (provenance or {}).get("sampling_benchmark")
    if name is None:
        return -1
    if isinstance(name, int):
        return name
    if name not in benchmark_names:
        raise ConfigError(
            f"sampling benchmark {name!r} is not one of {', '.join(benchmark_names)}",
            field="--sampling-benchmark",
        )
    return benchmark_names.index(name)


@propagate_failure("simulate_detector")
def run_simulate_detector(args) -> int:
    import logging
    from pathlib import Path

    from eftflow.cli.common import load_cluster_config
    from eftflow.config import config_hash
    from eftflow.detector.base import DetectorJob, get_detector
    from eftflow.detector.sources import open_source
    from eftflow.errors import InputError
    from eftflow.generate.seeds import job_seed
    from eftflow.setup import EFTSetup

    log = logging.getLogger("eftflow.detector")
    cfg, source = _config(args)
    section = dict(cfg.get("detector") or {})
    backend = section.get("backend", "builtin")
    detector = get_detector(backend, section, file=source)
    setup = EFTSetup.from_file(args.setup)
    nuisance = None
    lhe = (".lhe", ".lhe.gz", ".lhef", ".lhef.gz")
    if Path(args.input).is_file() and args.input.lower().endswith(lhe):
        # an LHE file: its scale/PDF variations become nuisance columns
        from eftflow.generate.systematics import lhe_nuisance_weights

        nuisance = lhe_nuisance_weights(setup, args.input)
    src = open_source(args.input, nuisance=nuisance, reference=setup.reference_benchmark)
    missing = [b.name for b in setup.physics_benchmarks() if b.name not in src.benchmark_names]
    if missing:
        raise InputError(
            f"no weights for benchmark(s) {', '.join(missing)} of the setup; the input has "
            f"{', '.join(src.benchmark_names)}",
            file=args.input,
            field="benchmark_names",
        )
    src.sampling_benchmark = _sampling_index(
        args.sampling_benchmark, src.benchmark_names, src.provenance
    )
    sample_key = (
        f"{Path(args.input).parent.name}/{Path(args.input).name}"  # unique per sample and job
    )
    seed = job_seed(int(cfg.get("seed", 0)), sample_key, 0, stage="detector")
    job = DetectorJob(
        src,
        Path(args.output),
        seed,
        chunk_size=int(section.get("chunk_size", 10_000)),
        threads=args.threads,
        memory_mb=args.memory_mb,
        provenance={"config_hash": config_hash({"detector": section, "seed": cfg.get("seed")})},
        cluster=load_cluster_config(args.cluster_config),
    )
    result = detector.simulate(job)
    log.info("wrote %s: %d events", result.output, result.n_events)
    return 0


@propagate_failure("analyse_events")
def run_analyse_events(args) -> int:
    import logging

    from eftflow.analysis.analyse import analyse_events
    from eftflow.cli.common import load_cluster_config
    from eftflow.config import config_hash
    from eftflow.setup import EFTSetup

    log = logging.getLogger("eftflow.analysis")
    cfg, source = _config(args)
    section = cfg.get("analysis")
    if section is None:
        section = {"default_observables": True}
    setup = EFTSetup.from_file(args.setup)
    result = analyse_events(
        args.input,
        args.output,
        section,
        setup=setup,
        threads=args.threads,
        memory_mb=args.memory_mb,
        cluster=load_cluster_config(args.cluster_config),
        config_file=source,
        provenance={"config_hash": config_hash({"analysis": section})},
    )
    log.info("wrote %s: %d of %d events pass", args.output, result["n_out"], result["n_in"])
    return 0
