"""``eftflow augment-samples`` and ``eftflow compute-fisher-information``."""

from __future__ import annotations

import argparse

from eftflow.cli.common import add_cluster_argument, add_config_argument, add_resources_arguments

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "augment-samples",
        help="draw training/test sets with joint ratios and scores from a combined event store",
        description=(
            "Unweight the events of a combined store at the configured parameter points and write one "
            "zarr training set per entry of `augmentation.samples` (x, theta, theta0, theta1, y, r_xz, "
            "t_xz...) plus summary.json (effective sample sizes, distinct events, seeds) into OUTDIR."
        ),
    )
    p.add_argument("store", help="combined event store (zarr)")
    p.add_argument("--setup", required=True, help="setup file (HDF5) the store was made with")
    add_config_argument(p)
    p.add_argument("-o", "--output", required=True, help="output directory (written atomically)")
    add_resources_arguments(p)
    add_cluster_argument(p)
    p.set_defaults(handler=run_augment)

    q = sub.add_parser(
        "compute-fisher-information",
        help="truth, rate and histogram Fisher information (with covariance) from a combined store",
        description=(
            "Compute the information matrices of `fisher.analyses` at the reference θ for the configured "
            "luminosity, write them (with covariances, profiled versions, eigenvalues) as JSON and "
            "optionally plots (contours with uncertainty bands, bar plot, distribution of information)."
        ),
    )
    q.add_argument("store", help="combined event store (zarr)")
    q.add_argument("--setup", required=True, help="setup file (HDF5) the store was made with")
    add_config_argument(q)
    q.add_argument("-o", "--output", required=True, help="JSON file to write")
    q.add_argument("--plot", default=None, help="directory for the plots (omitted: no plots)")
    add_resources_arguments(q)
    add_cluster_argument(q)
    q.set_defaults(handler=run_fisher)


def _config(args, fragment):
    from eftflow.cli.common import load_stage_config
    from eftflow.sampling.config import stage_sections

    cfg = load_stage_config(args.config)
    return stage_sections(cfg, fragment, file=_config_source(args))


def _config_source(args) -> str | None:
    """How error messages name the configuration: its file, or ``--config`` for inline JSON."""
    if args.config is None:
        return None
    return "--config" if args.config.strip().startswith("{") else args.config


def _limit_blas_threads() -> None:
    """One BLAS thread per Dask worker thread (set before numpy is first used)."""
    import os

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def run_augment(args) -> int:
    _limit_blas_threads()
    import logging

    from eftflow.cli.common import load_cluster_config
    from eftflow.sampling.config import SCHEMA_FRAGMENT, run_augmentation
    from eftflow.sampling.parallel import chunk_scheduler

    cfg = _config(args, SCHEMA_FRAGMENT)
    cluster = load_cluster_config(args.cluster_config)
    with chunk_scheduler(cluster, args.threads, args.memory_mb) as scheduler:
        summary = run_augmentation(
            args.store,
            args.setup,
            cfg,
            args.output,
            n_workers=args.threads,
            scheduler=scheduler,
            memory_mb=max(256.0, args.memory_mb / 2),  # half the job's memory for event buffers
        )
    for name, s in summary.items():
        logging.getLogger("eftflow.sampling").info(
            "%s: %d samples, ESS min %.1f, %d distinct events",
            name,
            s["n_samples"],
            s["ess_min"],
            s["n_distinct_events"],
        )
    return 0


def run_fisher(args) -> int:
    _limit_blas_threads()
    from eftflow.cli.common import load_cluster_config
    from eftflow.inference.fisher.driver import SCHEMA_FRAGMENT, run_fisher
    from eftflow.sampling.parallel import chunk_scheduler

    if args.plot:
        from eftflow.cli.common import plot_directory

        plot_directory(args.plot)
    cfg = _config(args, SCHEMA_FRAGMENT)
    cluster = load_cluster_config(args.cluster_config)
    with chunk_scheduler(cluster, args.threads, args.memory_mb) as scheduler:
        run_fisher(
            args.store,
            args.setup,
            cfg,
            args.output,
            plot_dir=args.plot,
            n_workers=args.threads,
            scheduler=scheduler,
            config_file=_config_source(args),
        )
    return 0
