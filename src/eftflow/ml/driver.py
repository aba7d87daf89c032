"""The ``training``, ``ensemble`` and ``evaluation`` config sections and the stage drivers.

:data:`SCHEMA_FRAGMENT` belongs under ``properties:`` of ``workflow/schemas/config.schema.yaml``;
until it is merged there :func:`eftflow.sampling.config.stage_sections` validates the sections
with it. :func:`run_train`, :func:`run_train_ensemble` and :func:`run_evaluate` are what
``eftflow train-estimator``, ``train-ensemble`` and ``evaluate-estimator`` run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = [
    "SCHEMA_FRAGMENT",
    "run_train",
    "run_train_ensemble",
    "run_evaluate",
    "training_config",
    "check_setup",
]

log = logging.getLogger(__name__)

SCHEMA_FRAGMENT = """
training:
  type: object
  additionalProperties: false
  default: {}
  description: Training of one neural estimator (eftflow.ml, MadMiner's ml module).
  properties:
    method:
      enum: [carl, rolr, rascal, alice, alices, cascal, sally, sallino, nde, scandal]
      default: sally
      description: Estimator method (loss), MadMiner's names.
    training_set:
      type: string
      default: train_local
      description: Name of the augmented training set (<augment_samples>/<name>.zarr).
    hidden:
      type: array
      items: {type: integer, minimum: 1}
      default: [100, 100]
      description: Hidden layer widths (MLP; for nde/scandal the flow's hidden layers).
    activation:
      enum: [tanh, relu, silu, sigmoid, elu, softplus]
      default: tanh
      description: Activation function.
    n_epochs: {type: integer, minimum: 1, default: 50, description: Maximum number of epochs.}
    batch_size: {type: integer, minimum: 1, default: 128, description: Mini-batch size.}
    learning_rate: {type: number, exclusiveMinimum: 0, default: 0.001, description: Initial learning rate (Adam).}
    final_learning_rate: {type: number, exclusiveMinimum: 0, default: 0.0001, description: Learning rate of the last epoch (exponential decay).}
    validation_split: {type: number, minimum: 0, maximum: 0.9, default: 0.25, description: Fraction of rows (the last ones) held out for validation.}
    early_stopping: {type: boolean, default: true, description: Keep a copy of the best-validation weights and stop after `patience` epochs without improvement.}
    patience: {type: integer, minimum: 1, default: 10, description: Epochs without improvement before stopping.}
    clip_grad_norm: {type: [number, "null"], default: 10.0, description: Gradient-norm clipping (null = none).}
    alpha: {type: number, minimum: 0, default: 1.0, description: Weight of the score term (rascal, alices, cascal, scandal).}
    seed: {type: integer, minimum: 0, default: 0, description: Seed of weights and batch order (members derive theirs from it).}
    device: {type: string, default: auto, description: "torch device: auto (CUDA when present), cpu, cuda, cuda:1, ..."}
    doubly: {type: boolean, default: false, description: Doubly parameterised ratio estimator log r(x|θ0, θ1) (needs theta1 in the set).}
    morphing_aware: {type: boolean, default: false, description: Morphing-aware ratio estimator (components from the setup's morphing).}
    components: {type: [array, "null"], default: null, description: "Morphing components (powers per parameter); null: from the setup file when morphing_aware."}
    flow_transforms: {type: integer, minimum: 1, default: 3, description: Number of spline transforms (nde, scandal).}
    buffer_rows: {type: integer, minimum: 1, default: 262144, description: Rows held in the shuffle buffer (memory bound of streaming).}
    threads: {type: [integer, "null"], minimum: 1, default: 1, description: "torch intra-op threads per training (small nets are fastest on 1; null: torch default)."}
ensemble:
  type: object
  additionalProperties: false
  default: {}
  description: Ensembles of estimators trained in parallel on Dask workers.
  properties:
    n_members: {type: integer, minimum: 1, default: 5, description: Number of members (each its own seed).}
    mode: {enum: [score, information, modified_score], default: score, description: How the ensemble's Fisher information is formed.}
    vote: {enum: [uniform, expectation], default: uniform, description: Member weights in combined predictions.}
    threads_per_member: {type: integer, minimum: 1, default: 1, description: torch threads of each member.}
    batched: {type: boolean, default: false, description: Train all members together in one process as one batched module (score and plain ratio methods).}
evaluation:
  type: object
  additionalProperties: false
  default: {}
  description: Evaluation of trained estimators on an event store.
  properties:
    luminosity: {type: number, exclusiveMinimum: 0, default: 300000.0, description: Integrated luminosity in pb^-1.}
    theta: {type: [array, "null"], items: {type: number}, default: null, description: Reference (true) θ; null = all parameters 0.}
    partition: {enum: [train, validation, test, all], default: test, description: Events used.}
    nuisance: {enum: [keep, project, profile], default: profile, description: "Score estimators with nuisance outputs: keep them, drop them, or profile them (Schur complement, unit constraints)."}
    grid:
      type: [array, "null"]
      default: null
      items: {type: array, items: {type: number}, minItems: 3, maxItems: 3}
      description: "θ grid for log r maps: [[low, high, n], ...] per parameter; null: ±0.001, 11 points each."
    max_events: {type: [integer, "null"], minimum: 1, default: null, description: At most this many events of the partition (null = all).}
"""

TRAINING_KEYS_NOT_IN_CONFIG = ("training_set",)


def training_config(section: dict, *, setup_file=None, training_set=None):
    """:class:`~eftflow.ml.train.TrainingConfig` from the ``training`` section.

    A morphing-aware estimator without ``components`` takes them from ``setup_file``. When
    ``setup_file`` and ``training_set`` are both given, the setup is first checked to be the one
    the set was sampled with (:func:`check_setup`), whatever the estimator: a wrong ``--setup``
    is refused rather than ignored.
    """
    from eftflow.ml.train import training_config_from_dict

    d = {k: v for k, v in section.items() if k not in TRAINING_KEYS_NOT_IN_CONFIG}
    if setup_file is not None and training_set is not None:
        check_setup(training_set, setup_file)
    if d.get("morphing_aware") and d.get("components") is None:
        if setup_file is None:
            raise InputError(
                "morphing_aware needs training.components or a setup file (--setup)",
                field="training.components",
            )
        from eftflow.setup import EFTSetup

        d["components"] = np.asarray(EFTSetup.from_file(setup_file).morpher.components).tolist()
    return training_config_from_dict(d)


def check_setup(training_set, setup_file) -> None:
    """Refuse a setup file that is not the one ``training_set`` was sampled with.

    Compares the setup's parameter names (in order) with the set's ``parameter_names``
    attribute and, when the set records one, the setup's fingerprint
    (:func:`eftflow.store.combine.setup_fingerprint`) with its ``setup_hash``. Sets without
    these attributes (built by hand) are not checked.

    Raises
    ------
    InputError
        Naming the setup file, with both parameter lists (or both hashes).
    """
    from eftflow.ml.data import TrainingSet
    from eftflow.setup import EFTSetup

    ts = training_set if isinstance(training_set, TrainingSet) else TrainingSet(training_set)
    setup = EFTSetup.from_file(setup_file)
    mine = [str(n) for n in setup.parameter_names]
    theirs = ts.attrs.get("parameter_names")
    if isinstance(theirs, list) and [str(n) for n in theirs] != mine:
        raise InputError(
            f"the setup has the parameters ({', '.join(mine)}), the training set {ts.path} was "
            f"sampled with ({', '.join(map(str, theirs))}): the setup belongs to another run",
            file=str(setup_file),
            field="parameters",
        )
    stored = ts.attrs.get("setup_hash")
    if stored is not None:
        from eftflow.store.combine import setup_fingerprint

        fp = setup_fingerprint(setup_file)
        if fp != stored:
            raise InputError(
                f"the setup's fingerprint {fp[:12]}... differs from the setup_hash "
                f"{str(stored)[:12]}... of the training set {ts.path}: the setup belongs to "
                "another run",
                file=str(setup_file),
                field="setup_hash",
            )


def run_train(
    trainset,
    cfg: dict,
    output,
    *,
    member: int | None = None,
    setup_file=None,
    threads: int | None = None,
) -> dict:
    """Train one estimator (or ensemble member ``member``) into ``output``.

    ``threads`` (the job's cores) caps torch's threads: ``training.threads`` chooses within it
    (``null``: all of them)."""
    import dataclasses

    from eftflow.ml.ensemble import train_member
    from eftflow.ml.train import train_estimator

    tc = training_config(cfg["training"], setup_file=setup_file, training_set=trainset)
    if threads is not None:
        tc = dataclasses.replace(tc, threads=min(tc.threads or threads, threads))
    if member is None:
        res = train_estimator(trainset, tc, output)
        return {k: v for k, v in res.items() if k not in ("model", "spec")}
    out = Path(output)
    res = train_member(str(trainset), tc, member, str(out.parent), tc.threads or 1)
    produced = out.parent / f"member_{member}"
    if produced.with_suffix("") != out.with_suffix(""):
        for suffix in (".pt", ".json"):
            produced.with_suffix(suffix).replace(out.with_suffix(suffix))
    res["path"] = out.with_suffix("").name if out.suffix in (".pt", ".json") else out.name
    return res


def run_train_ensemble(
    trainset, cfg: dict, outdir, *, threads: int = 1, memory_mb=None, setup_file=None
) -> list:
    """Train ``ensemble.n_members`` members on a Dask cluster (``cluster`` section)."""
    from eftflow.cluster import dask_client
    from eftflow.ml.data import TrainingSet
    from eftflow.ml.ensemble import train_ensemble
    from eftflow.store.atomic import atomic_path

    tc = training_config(cfg["training"], setup_file=setup_file, training_set=trainset)
    # a set of the wrong kind is refused here, once, before the workers start (not in each)
    TrainingSet(trainset).require(tc.method, doubly=tc.doubly)
    ens = cfg["ensemble"]
    with atomic_path(outdir) as tmp:
        with dask_client(cfg.get("cluster"), threads=threads, memory_mb=memory_mb) as client:
            res = train_ensemble(
                trainset,
                tc,
                ens["n_members"],
                tmp,
                client=client,
                threads_per_member=ens["threads_per_member"],
            )
    return res


def _grid(ev: dict, n_p: int):
    from eftflow.inference.exclusion import make_grid

    axes = ev.get("grid") or [[-0.001, 0.001, 11]] * n_p
    if len(axes) != n_p:
        raise InputError(
            f"the grid has {len(axes)} axes, the model has {n_p} parameters",
            field="evaluation.grid",
        )
    for i, axis in enumerate(axes):
        ok = isinstance(axis, list | tuple) and len(axis) == 3
        if ok:
            lo, hi, n = axis
            ok = (
                all(isinstance(v, int | float) and np.isfinite(v) for v in (lo, hi))
                and isinstance(n, int | float)
                and not isinstance(n, bool)
                and float(n).is_integer()
                and n >= 1
            )
        if not ok:
            raise ConfigError(
                f"each axis is [low, high, n_points] with finite bounds and an integer "
                f"n_points >= 1, got {axis!r}",
                field=f"evaluation.grid[{i}]",
            )
    return make_grid([np.linspace(a, b, int(n)) for a, b, n in axes])


def run_evaluate(model_path, store, setup_file, cfg: dict, output, *, plot_dir=None) -> dict:
    """Evaluate a model or ensemble on an event store; write JSON (and a log r̂ map, plots)."""
    from eftflow.inference.fisher import FisherInformation
    from eftflow.ml.ensemble import Ensemble
    from eftflow.ml.evaluate import handle_nuisance, predict_log_p
    from eftflow.ml.maps import likelihood_ratio_map, save_map
    from eftflow.sampling.weights import WeightModel, load_chunk
    from eftflow.store.atomic import atomic_path

    ev, ensc = cfg["evaluation"], cfg["ensemble"]
    lum = float(ev["luminosity"])
    ens = Ensemble.load(model_path)
    fi = FisherInformation(store, setup_file, partition=ev["partition"], setup_file=setup_file)
    n_p = fi.n_parameters
    theta = np.zeros(n_p) if ev["theta"] is None else np.asarray(ev["theta"], float)
    if theta.shape != (n_p,):
        raise InputError(
            f"theta has {theta.size} components, the setup has {n_p} parameters",
            field="evaluation.theta",
        )
    wm = WeightModel(store, setup_file, partition=ev["partition"], include_nuisance=False)
    ens.check_observables(wm.store.observable_names, file=str(store))
    m_ref = wm.theta_matrix(theta[None, :])
    out = {"method": ens.method, "n_members": len(ens), "seeds": ens.seeds, "theta": theta.tolist()}
    truth = fi.truth_information(theta, lum, include_nuisance_parameters=False)
    rate = fi.rate_information(theta, lum, include_nuisance_parameters=False)
    out["truth"], out["rate"] = truth.to_dict(), rate.to_dict()
    chunks, got = [], 0
    for i0, i1 in wm.chunk_ranges():
        if ev["max_events"] is not None and got >= ev["max_events"]:
            break
        if ev["max_events"] is not None:
            i1 = min(i1, i0 + ev["max_events"] - got)
        chunks.append((i0, i1))
        got += i1 - i0
    # weights estimate the partition's cross section only over all its events: a truncated
    # sample (max_events) is scaled up so that Σ w still estimates σ (the store is shuffled)
    scale = (wm.stop - wm.start) / got if got else 1.0
    if ensc["vote"] == "expectation" and ens.family == "score":
        ch = load_chunk(wm.ctx, *chunks[0], None, with_x=True)
        ens.vote_expectation_weights(ch.x)
    if ens.family == "score":
        parts = []
        for i0, i1 in chunks:
            ch = load_chunk(wm.ctx, i0, i1, None, with_x=True)
            parts.append(ens.fisher_parts(ch.x, scale * ch.weights(m_ref)[:, 0], lum))
        info, cov = ens.combine_fisher(parts, mode=ensc["mode"])
        k = info.shape[0]
        cov = cov.reshape((k,) * 4)
        rate_k, truth_k = rate, truth
        if k > n_p:  # scores also for ν: the rate and truth terms need their ν components too
            if k != n_p + fi.n_nuisance_parameters:
                raise InputError(
                    f"the model predicts {k} score components; the setup and store have {n_p} "
                    f"parameters and {fi.n_nuisance_parameters} nuisance parameters "
                    f"({', '.join(fi.parameter_names)})",
                    file=str(model_path),
                    field="evaluation.nuisance",
                )
            rate_k = fi.rate_information(theta, lum)
            truth_k = fi.truth_information(theta, lum)
        # ν is profiled (or projected) in the sum detector + rate: a normalisation nuisance
        # removes the rate's information on θ, which adding the θ-only rate term would keep
        mode = ev["nuisance"]
        det_info, det_cov = handle_nuisance(info, n_p, mode, covariance=cov)
        tot_info, tot_cov = handle_nuisance(info + rate_k.information, n_p, mode,
                                            covariance=cov + rate_k.covariance)  # fmt: skip
        truth_info = handle_nuisance(truth_k.information, n_p, mode)
        names = fi.parameter_names[: det_info.shape[0]]
        from eftflow.inference.fisher import FisherResult

        det = FisherResult(det_info, det_cov, names, "detector", theta.tolist(), lum,
                           {"mode": ensc["mode"], "n_events": got, "nuisance": mode})  # fmt: skip
        total = FisherResult(tot_info, tot_cov, names, "detector+rate", theta.tolist(), lum,
                             {"nuisance": mode})  # fmt: skip
        out["detector"], out["detector_plus_rate"] = det.to_dict(), total.to_dict()
        out["ratio_to_truth"] = (np.diag(total.information) / np.diag(truth_info)).tolist()
    else:
        grid, shape = _grid(ev, n_p)
        m_grid = wm.theta_matrix(grid)
        sums = np.zeros(len(grid))
        xsec = np.zeros(len(grid))
        wsum = 0.0
        for i0, i1 in chunks:
            ch = load_chunk(wm.ctx, i0, i1, None, with_x=True)
            w = scale * ch.weights(m_ref)[:, 0]
            xsec += scale * ch.weights(m_grid).sum(axis=0)
            if ens.family == "ratio":
                lr = ens.predict_log_r(ch.x, grid, theta[None, :])[0]
            else:
                lr = np.mean([predict_log_p(m, ch.x, grid) for m in ens.members], axis=0)
            sums += lr @ w
            wsum += w.sum()
        ref = wsum  # σ(θ_ref) from the same events as σ(θ) on the grid (a truncated sample too)
        res = likelihood_ratio_map(grid, (sums / wsum)[:, None], luminosity=lum,
                                   n_events=lum * wsum, xsec=xsec, xsec_reference=ref, shape=shape)  # fmt: skip
        npz, js = save_map(Path(output).with_suffix("").as_posix() + "_map", res)
        out["map"] = {"npz": str(npz), "json": str(js), "best_theta": res["best_theta"].tolist()}
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(out, indent=1, default=float))
    if plot_dir is not None:
        from eftflow.plotting.ml import plot_evaluation

        plot_evaluation(out, ens, plot_dir)
    return out
