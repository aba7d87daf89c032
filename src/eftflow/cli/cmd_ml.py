"""``eftflow train-estimator``, ``train-ensemble``, ``train-nuisance-shapes`` and ``evaluate-estimator``."""

from __future__ import annotations

import argparse

from eftflow.cli.common import add_config_argument, add_resources_arguments, non_negative_int

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-estimator",
        help="train one neural estimator (or one ensemble member) on a zarr training set",
        description=(
            "Train the estimator of the `training` config section on TRAINSET, streaming batches "
            "from the zarr set, and write MODEL.pt (state_dict) + MODEL.json (spec, history)."
        ),
    )
    p.add_argument("trainset", help="zarr training set (from augment-samples)")
    add_config_argument(p)
    p.add_argument("-o", "--output", required=True, help="model path (writes .pt and .json)")
    p.add_argument(
        "--member",
        type=non_negative_int,
        default=None,
        help="train ensemble member K (seed derived from K)",
    )
    p.add_argument("--setup", default=None, help="setup file (morphing-aware estimators)")
    add_resources_arguments(p)
    p.set_defaults(handler=run_train)

    q = sub.add_parser(
        "train-ensemble",
        aliases=["train-ratio-ensemble"],  # rule train_ratio_ensemble (the model's ratio)
        help="train an ensemble of estimators in parallel on Dask workers",
        description=(
            "Train `ensemble.n_members` members of the `training` estimator on a Dask cluster "
            "(`cluster` section: local, slurm-runner or slurm-cluster) into DIR (written atomically): "
            "member_<k>.pt/.json and ensemble.json."
        ),
    )
    q.add_argument("trainset", help="zarr training set")
    add_config_argument(q)
    q.add_argument("-o", "--output", required=True, help="output directory")
    q.add_argument("--setup", default=None, help="setup file (morphing-aware estimators)")
    q.add_argument(
        "--batched",
        action="store_true",
        default=None,
        help="train all members together in this process as one batched module "
        "(config `ensemble.batched`; score and plain ratio methods)",
    )
    add_resources_arguments(q)
    q.set_defaults(handler=run_train_ensemble)

    n = sub.add_parser(
        "train-nuisance-shapes",
        help="train up/down ratio networks g±(x) of the shape nuisance parameters of a store",
        description=(
            "For every nuisance parameter of a scale or pdf systematic the store has weights "
            "for (or those of --nuisances), train x-only ratio networks g±(x) = p(x|ν=±1) / "
            "p(x|ν=0) at the setup's reference benchmark on samples augmented from the store's "
            "nuisance weights, and check them on a partition they did not see. Writes DIR "
            "atomically: <nu>/up, <nu>/down (ensembles), their training sets, summary.json and, "
            "with --plot-observables, shapes.png. Options: config model.demo.nuisance_shapes."
        ),
    )
    n.add_argument("store", help="combined event store (zarr)")
    n.add_argument("--setup", required=True, help="setup file (HDF5)")
    n.add_argument("-o", "--output", required=True, help="output directory")
    add_config_argument(n)
    n.add_argument(
        "--nuisances", nargs="+", default=None, metavar="NAME",
        help="train only these nuisance parameters (default: every shape nuisance of the store)",
    )  # fmt: skip
    n.add_argument(
        "--plot-observables", nargs="+", default=None, metavar="NAME",
        help="draw learned vs true variations of these observables (shapes.png)",
    )  # fmt: skip
    add_resources_arguments(n)
    n.set_defaults(handler=run_train_shapes)

    e = sub.add_parser(
        "evaluate-estimator",
        help="detector-level Fisher information (score) or log r maps (ratio, density)",
        description=(
            "Evaluate a model or ensemble directory on the events of STORE: for score estimators "
            "the detector-level Fisher information (+ rate term) next to the truth-level one; for "
            "ratio and density estimators the expected -2 Δ log L on the `evaluation.grid` "
            "(OUT_map.npz / OUT_map.json)."
        ),
    )
    e.add_argument("model", help="model (.pt/.json) or ensemble directory")
    e.add_argument("--store", required=True, help="combined event store (zarr)")
    e.add_argument("--setup", required=True, help="setup file (HDF5)")
    add_config_argument(e)
    e.add_argument("-o", "--output", required=True, help="JSON file to write")
    e.add_argument("--plot", default=None, help="directory for plots (omitted: none)")
    add_resources_arguments(e)
    e.set_defaults(handler=run_evaluate)


def _config(args, *, strip_batched: bool = False):
    from eftflow.cli.common import load_stage_config
    from eftflow.ml.driver import SCHEMA_FRAGMENT
    from eftflow.sampling.config import stage_sections

    cfg = load_stage_config(args.config)
    source = args.config if args.config and not args.config.strip().startswith("{") else "--config"
    batched = False
    if strip_batched and isinstance(cfg.get("ensemble"), dict) and "batched" in cfg["ensemble"]:
        cfg = dict(cfg)
        cfg["ensemble"] = dict(cfg["ensemble"])
        batched = cfg["ensemble"].pop("batched")
        if not isinstance(batched, bool):
            from eftflow.errors import ConfigError

            raise ConfigError(
                f"must be true or false, got {batched!r}", file=source, field="ensemble.batched"
            )
    out = stage_sections(cfg, SCHEMA_FRAGMENT, file=source)
    return (out, batched) if strip_batched else out


def run_train(args) -> int:
    import logging

    from eftflow.ml.driver import run_train

    res = run_train(args.trainset, _config(args), args.output, member=args.member,
                    setup_file=args.setup, threads=args.threads)  # fmt: skip
    logging.getLogger("eftflow.ml").info(
        "trained: best epoch %s, %.0f samples/s",
        res.get("best_epoch"),
        res.get("samples_per_second") or 0,
    )
    return 0


def run_train_ensemble(args) -> int:
    from eftflow.ml.driver import run_train_ensemble

    cfg, batched = _config(args, strip_batched=True)
    if args.batched or batched:
        from eftflow.ml.batched import train_ensemble_batched
        from eftflow.ml.driver import training_config
        from eftflow.store.atomic import atomic_path

        tc = training_config(cfg["training"], setup_file=args.setup, training_set=args.trainset)
        with atomic_path(args.output) as tmp:
            train_ensemble_batched(args.trainset, tc, cfg["ensemble"]["n_members"], tmp,
                                   threads=args.threads or 1)  # fmt: skip
        return 0
    run_train_ensemble(args.trainset, cfg, args.output, threads=args.threads,
                       memory_mb=args.memory_mb, setup_file=args.setup)  # fmt: skip
    return 0


def run_train_shapes(args) -> int:
    from eftflow.cli.cmd_model import demo_options
    from eftflow.cli.common import load_stage_config
    from eftflow.inference.model.shapes import train_nuisance_shapes

    opts = demo_options(args.config).get("nuisance_shapes") or {}
    seed = int(load_stage_config(args.config).get("seed", 0) or 0)
    train_nuisance_shapes(
        args.store,
        args.setup,
        args.output,
        options={k: v for k, v in opts.items() if k != "enabled"},
        seed=seed,
        threads=args.threads,
        memory_mb=min(float(args.memory_mb) / 4, 1000.0),
        plot_observables=args.plot_observables,
        nuisances=args.nuisances,
    )
    return 0


def run_evaluate(args) -> int:
    from eftflow.cli.common import plot_directory
    from eftflow.ml.driver import run_evaluate
    from eftflow.ml.train import torch_threads

    if args.plot:
        plot_directory(args.plot)
    with torch_threads(args.threads):  # the job's cores for the members' predictions
        run_evaluate(args.model, args.store, args.setup, _config(args), args.output,
                     plot_dir=args.plot)  # fmt: skip
    return 0
