"""``eftflow plot-distributions``: observable distributions at several θ (rule ``plot_distributions``)."""

from __future__ import annotations

import argparse

from eftflow.cli.common import non_negative_int, positive_int

__all__ = ["register"]

#: observables drawn when none are named (the first ones of the store)
MAX_DEFAULT_OBSERVABLES = 9


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot-distributions",
        help="draw observable distributions of an event store at several θ, with nuisance bands",
        description=(
            "Histogram observables of an event store at benchmarks of the setup or at given "
            "parameter points (event weights morphed to each θ), streaming over the store, with "
            "a 16-84 %% band and a few toy histograms from the nuisance parameters drawn from "
            "N(0, 1) (MadMiner's plot_distributions). One panel per observable; the figure is "
            "written atomically."
        ),
    )
    p.add_argument("store", help="event store (*.zarr), e.g. results/combine_events/events.zarr")
    p.add_argument("--setup", required=True, help="setup file the store was made with")
    p.add_argument("-o", "--output", required=True, help="figure to write (.png, .pdf, .svg)")
    p.add_argument(
        "--benchmarks",
        nargs="+",
        default=None,
        metavar="NAME",
        help="draw at these benchmarks of the setup (default without --theta: the first three "
        "physics benchmarks)",
    )
    p.add_argument(
        "--theta",
        action="append",
        default=[],
        metavar="JSON",
        help="a parameter point as a JSON list, e.g. '[0.001, 0]' (repeatable; drawn after the "
        "benchmarks)",
    )
    p.add_argument(
        "--observables",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"observables to draw (default: the store's first {MAX_DEFAULT_OBSERVABLES})",
    )
    p.add_argument("--n-bins", type=positive_int, default=40, help="bins per panel (default: 40)")
    p.add_argument(
        "--n-toys", type=positive_int, default=100, help="nuisance toys for the band (default: 100)"
    )
    p.add_argument(
        "--uncertainties",
        choices=("nuisance", "none"),
        default="nuisance",
        help="band from the store's nuisance weights, or none (default: nuisance)",
    )
    p.add_argument("--normalize", action="store_true", help="unit area per line (shapes only)")
    p.add_argument("--log", action="store_true", help="logarithmic y axis")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the toys (default: 0)")
    p.set_defaults(handler=run)


def _points(args, setup) -> tuple[list, list[str]]:
    """(θ points, labels) from --benchmarks and --theta (InputError/ConfigError naming the flag)."""
    import json

    import numpy as np

    from eftflow.errors import ConfigError

    phys = {b.name: b for b in setup.physics_benchmarks()}
    names = args.benchmarks
    if names is None and not args.theta:
        names = list(phys)[:3]
    points, labels = [], []
    for name in names or []:
        if name not in phys:
            raise ConfigError(
                f"unknown benchmark {name!r}; the setup's physics benchmarks are {', '.join(phys)}",
                field="--benchmarks",
            )
        points.append(phys[name].vector(setup.parameter_names))
        labels.append(name)
    for text in args.theta:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{text!r} is not JSON ({err.msg})", field="--theta") from None
        theta = np.asarray(value, float) if isinstance(value, list) else None
        if theta is None or theta.shape != (len(setup.parameter_names),):
            raise ConfigError(
                f"{text!r}: expected a list of {len(setup.parameter_names)} numbers "
                f"({', '.join(setup.parameter_names)})",
                field="--theta",
            )
        if not np.all(np.isfinite(theta)):
            raise ConfigError(f"{text!r} has a non-finite value", field="--theta")
        points.append(theta)
        labels.append("θ = " + np.array2string(theta, precision=4, separator=", "))
    return points, labels


def run(args) -> int:
    import logging

    from eftflow.plotting.distributions import plot_distributions
    from eftflow.setup import EFTSetup
    from eftflow.store.events import EventStore

    store = EventStore(args.store)
    setup = EFTSetup.from_file(args.setup)
    points, labels = _points(args, setup)
    observables = args.observables or store.observable_names[:MAX_DEFAULT_OBSERVABLES]
    out = plot_distributions(
        store,
        setup,
        points,
        args.output,
        observables=observables,
        line_labels=labels,
        n_bins=args.n_bins,
        uncertainties=args.uncertainties,
        n_toys=args.n_toys,
        normalize=args.normalize,
        log=args.log,
        seed=args.seed,
    )
    logging.getLogger("eftflow.plot").info(
        "wrote %s: %d observables at %d points", out, len(observables), len(points)
    )
    return 0
