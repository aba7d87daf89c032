"""Training loop: streamed batches, validation split, early stopping, LR schedule, clipping, seeds.

:func:`train_estimator` trains one estimator on a zarr training set and writes the artifact
(``state_dict`` + JSON spec with the loss history). Early stopping keeps a *copy* of the best
weights and restores it at the end (MadMiner 0.9.6 keeps a reference to the live weights and
so saves the last epoch instead of the best).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.ml.artifacts import family_of, save_model
from eftflow.ml.data import TrainingSet

__all__ = [
    "TrainingConfig",
    "train_estimator",
    "compute_outputs",
    "pick_device",
    "torch_threads",
    "training_config_from_dict",
]

log = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """Everything that defines one training run (stored in the model spec)."""

    method: str
    hidden: tuple[int, ...] = (100, 100)
    activation: str = "tanh"
    n_epochs: int = 50
    batch_size: int = 128
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-4
    validation_split: float = 0.25
    early_stopping: bool = True
    patience: int = 10
    clip_grad_norm: float | None = 10.0
    alpha: float = 1.0
    seed: int = 0
    device: str = "auto"
    doubly: bool = False
    morphing_aware: bool = False
    components: list | None = None
    flow_transforms: int = 3
    buffer_rows: int = 262_144
    threads: int | None = 1
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        family_of(self.method)
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.n_epochs < 1 or self.batch_size < 1:
            raise InputError("n_epochs and batch_size must be positive", field="training")
        if self.morphing_aware and self.components is None:
            raise InputError(
                "a morphing-aware estimator needs the morphing components", field="components"
            )


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Limit torch's intra-op threads to ``n`` inside the block (restored afterwards).

    Small MLPs train fastest on one thread: with more, every tiny op pays OpenMP synchronisation,
    which on a loaded node makes training 10–100× slower. Parallelise over ensemble members
    instead. ``None`` leaves torch's setting alone.
    """
    import torch

    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def pick_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _model_spec(cfg: TrainingConfig, n_obs: int, n_p: int) -> dict:
    fam = family_of(cfg.method)
    if fam == "score":
        return {
            "class": "ScoreEstimator",
            "kwargs": {
                "n_observables": n_obs,
                "n_parameters": n_p,
                "hidden": list(cfg.hidden),
                "activation": cfg.activation,
            },
        }
    if fam == "density":
        return {
            "class": "DensityEstimator",
            "kwargs": {
                "n_observables": n_obs,
                "n_parameters": n_p,
                "hidden": list(cfg.hidden),
                "transforms": cfg.flow_transforms,
            },
        }
    if cfg.morphing_aware:
        return {
            "class": "MorphingAwareRatioEstimator",
            "kwargs": {
                "n_observables": n_obs,
                "components": [list(map(int, c)) for c in cfg.components],
                "hidden": list(cfg.hidden),
                "activation": cfg.activation,
            },
        }
    return {
        "class": "RatioEstimator",
        "kwargs": {
            "n_observables": n_obs,
            "n_parameters": n_p,
            "hidden": list(cfg.hidden),
            "activation": cfg.activation,
            "doubly": cfg.doubly,
        },
    }


def balance_proposal(attrs: dict, spec_model: dict, *, source=None) -> dict | None:
    """The correction for an estimator trained on a balanced set (its ``balance`` attribute,
    :mod:`eftflow.sampling.balance`), else None: :class:`~eftflow.ml.models.ProposalCorrection`
    arguments for a ratio estimator, ``{"offset": ∇ log Z(θ)}`` for a score estimator,
    :class:`~eftflow.ml.models.DensityCorrection` arguments (``density``) for a density
    estimator.

    A single-parameterised estimator needs one fixed θ1 in the set; the check runs before
    training.
    """
    rec = attrs.get("balance")
    if not rec:
        return None

    def need(key: str, why: str) -> None:
        if rec.get(key) is None:
            raise InputError(why, file=source, field=f"attrs.balance.{key}")

    need("sigma_components", "the set was balanced but records no morphing components: cannot correct for it")  # fmt: skip
    if spec_model["class"] == "ScoreEstimator":
        from eftflow.sampling.balance import grad_log_z

        need("theta", "the set was balanced at several θ: a score estimator needs one")
        n_out = int(spec_model["kwargs"]["n_parameters"])
        offset = grad_log_z(rec, [rec["theta"]])[0]
        if len(offset) != n_out:  # e.g. nuisance scores, which balancing refuses anyway
            raise InputError(
                f"the set was balanced in {len(offset)} parameters, the estimator has {n_out} "
                "outputs",
                file=source,
                field="attrs.balance",
            )
        return {"offset": offset.tolist()}
    if spec_model["class"] == "DensityEstimator":
        need("observable_index", "the set was balanced but records no observable index: cannot correct for it")  # fmt: skip
        return {
            "density": True,
            "components": rec["components"],
            "sigma_components": rec["sigma_components"],
            "factors": rec["factors"],
            "edges": rec["edges"],
            "index": int(rec["observable_index"]),
            "observable": rec.get("observable"),
        }
    if spec_model["class"] not in ("RatioEstimator", "MorphingAwareRatioEstimator"):
        raise InputError(
            f"the set was balanced: a {spec_model['class']} cannot correct for it",
            file=source,
            field="attrs.balance",
        )
    doubly = spec_model["class"] != "RatioEstimator" or spec_model["kwargs"].get("doubly")
    if not doubly:
        need("theta1", "the set was balanced with several θ1: a single-parameterised estimator cannot correct for it (use a doubly parameterised one)")  # fmt: skip
    return {
        "components": rec["components"],
        "sigma_components": rec["sigma_components"],
        "factors": rec["factors"],
        "theta1": rec.get("theta1"),
        "observable": rec.get("observable"),
        "edges": rec.get("edges"),
    }


def attach_proposal(models, spec_model: dict, proposal: dict | None) -> dict:
    """After training: give the trained ``models`` the correction of a balanced set and return
    the spec with it (training itself fits the balanced ratio, without the correction)."""
    if proposal is None:
        return spec_model
    if "offset" in proposal:  # a score estimator: ∇ log Z(θ) added to its output
        for m in models:
            m.set_offset(proposal["offset"])
        return {**spec_model, "kwargs": {**spec_model["kwargs"], "offset": proposal["offset"]}}
    if proposal.get("density"):  # a density estimator: log Z(θ) − log c(x) added
        from eftflow.ml.models import DensityCorrection

        proposal = {k: v for k, v in proposal.items() if k != "density"}
        for m in models:
            m.proposal = DensityCorrection(**proposal)
        return {**spec_model, "kwargs": {**spec_model["kwargs"], "proposal": proposal}}
    from eftflow.ml.models import ProposalCorrection

    for m in models:
        m.proposal = ProposalCorrection(**proposal)
    return {**spec_model, "kwargs": {**spec_model["kwargs"], "proposal": proposal}}


def compute_outputs(model, method: str, batch: dict, *, alpha: float = 1.0, need_grad: bool = True):
    """Loss (and its terms) of ``model`` on one batch for ``method``."""
    import torch

    from eftflow.ml.losses import METHOD_TERMS, density_losses, ratio_losses, score_loss

    fam = family_of(method)
    if fam == "score":
        return score_loss(model(batch["x"]), batch["t_xz0"])
    wants_score = "score" in METHOD_TERMS[method]
    theta0 = batch["theta0"]
    if wants_score:
        theta0 = theta0.clone().requires_grad_(True)
    if fam == "density":
        log_p = model(batch["x"], theta0)
        t_hat = None
        if wants_score:
            t_hat = torch.autograd.grad(log_p.sum(), theta0, create_graph=need_grad)[0]
        return density_losses(method, log_p, t_hat, batch.get("t_xz0"), alpha)
    theta1 = batch.get("theta1")
    log_r = model(batch["x"], theta0, theta1)
    t_hat0 = None
    if wants_score:
        t_hat0 = torch.autograd.grad(log_r.sum(), theta0, create_graph=need_grad)[0]
    return ratio_losses(
        method, log_r, t_hat0, batch["y"], batch.get("r_xz"), batch.get("t_xz0"), alpha
    )


def train_estimator(
    training_set, cfg: TrainingConfig, output, *, extra_spec: dict | None = None
) -> dict:
    """Train one estimator and save it to ``output`` (``.pt`` + ``.json``); return the summary.

    Parameters
    ----------
    training_set
        Path of a zarr training set (or a :class:`TrainingSet`).
    cfg
        The :class:`TrainingConfig`.
    output
        Artifact path (``<output>.pt`` + ``<output>.json``), or ``None`` to keep it in memory.

    Returns
    -------
    dict
        ``model`` (on the CPU, best weights), ``spec`` and the training summary (history,
        best epoch, samples per second, ...).
    """
    with torch_threads(cfg.threads):
        return _train(training_set, cfg, output, extra_spec)


def _train(training_set, cfg, output, extra_spec):
    import torch

    torch.manual_seed(cfg.seed)
    ts = training_set if isinstance(training_set, TrainingSet) else TrainingSet(training_set)
    doubly = cfg.doubly or cfg.morphing_aware
    columns = ts.require(cfg.method, doubly=cfg.doubly)
    if cfg.morphing_aware and "theta1" in ts.columns:
        columns = columns + ("theta1",)
    fam = family_of(cfg.method)
    n_obs = ts.width("x")
    n_p = ts.width("t_xz0") if fam == "score" else ts.width("theta0")
    if cfg.morphing_aware and len(cfg.components[0]) != n_p:
        raise InputError(
            f"the morphing components have {len(cfg.components[0])} parameters, the training "
            f"set's theta0 has {n_p}",
            file=str(ts.path),
            field="training.components",
        )
    train_rows, val_rows = ts.split(cfg.validation_split)
    spec_model = _model_spec(cfg, n_obs, n_p)
    proposal = balance_proposal(ts.attrs, spec_model, source=str(ts.path))
    from eftflow.ml.artifacts import build_model

    model = build_model({"model": spec_model})
    mean, std = ts.moments("x", train_rows)
    model.x_scale.set(mean, std)
    if fam != "score":
        tm, tsd = ts.moments("theta0", train_rows)
        if doubly and "theta1" in columns:
            t1m, t1s = ts.moments("theta1", train_rows)
            tm, tsd = 0.5 * (tm + t1m), np.maximum(tsd, t1s)
        model.theta_scale.set(tm, tsd)
    device = pick_device(cfg.device)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    gamma = (cfg.final_learning_rate / cfg.learning_rate) ** (1.0 / max(cfg.n_epochs - 1, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    rng = np.random.default_rng(cfg.seed)
    history = {"train": [], "validation": [], "lr": []}
    best_state, best_val, best_epoch, bad_epochs = None, np.inf, -1, 0
    t_start = time.perf_counter()
    n_seen = 0
    for epoch in range(cfg.n_epochs):
        model.train()
        total, count = 0.0, 0
        for batch in ts.iter_batches(
            columns,
            cfg.batch_size,
            train_rows,
            rng=rng,
            buffer_rows=cfg.buffer_rows,
            device=device if device.type != "cpu" else None,
        ):
            loss, _ = compute_outputs(model, cfg.method, batch, alpha=cfg.alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            opt.step()
            n = len(batch["x"])
            total += float(loss.detach()) * n
            count += n
        n_seen += count
        history["train"].append(total / max(count, 1))
        history["lr"].append(opt.param_groups[0]["lr"])
        sched.step()
        val = _evaluate_loss(model, ts, cfg, columns, val_rows, device)
        history["validation"].append(val)
        monitor = val if val is not None else history["train"][-1]
        if monitor < best_val - 1e-12:
            best_val, best_epoch, bad_epochs = monitor, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        log.info(
            "%s epoch %d/%d: train loss %.5g, validation loss %s",
            cfg.method,
            epoch + 1,
            cfg.n_epochs,
            history["train"][-1],
            "n/a" if val is None else f"{val:.5g}",
        )
        if cfg.early_stopping and val is not None and bad_epochs >= cfg.patience:
            log.info("early stopping after epoch %d (best epoch %d)", epoch + 1, best_epoch + 1)
            break
    elapsed = time.perf_counter() - t_start
    if cfg.early_stopping and best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu")
    spec_model = attach_proposal([model], spec_model, proposal)
    summary = {
        "best_epoch": best_epoch + 1,
        "best_loss": best_val,
        "epochs_run": len(history["train"]),
        "seconds": elapsed,
        "samples_per_second": n_seen / elapsed if elapsed > 0 else None,
        "device": str(device),
        "history": history,
        "n_train": train_rows[1] - train_rows[0],
        "n_validation": val_rows[1] - val_rows[0],
    }
    cfg_dict = asdict(cfg)
    spec = {
        "method": cfg.method,
        "family": fam,
        "model": spec_model,
        "training": cfg_dict,
        "summary": summary,
        "training_set": str(ts.path),
        "training_set_attrs": _jsonable(ts.attrs),
        **(extra_spec or {}),
    }
    if output is not None:
        save_model(output, model, spec)
    return {"model": model, "spec": spec, **summary}


def _evaluate_loss(model, ts, cfg, columns, rows, device):
    import torch

    if rows[1] <= rows[0]:
        return None
    model.eval()
    total, count = 0.0, 0
    needs_grad = family_of(cfg.method) != "score"
    ctx = torch.enable_grad() if needs_grad else torch.no_grad()
    with ctx:
        for batch in ts.iter_batches(
            columns,
            max(cfg.batch_size, 1024),
            rows,
            device=device if device.type != "cpu" else None,
        ):
            loss, _ = compute_outputs(model, cfg.method, batch, alpha=cfg.alpha, need_grad=False)
            total += float(loss.detach()) * len(batch["x"])
            count += len(batch["x"])
    return total / max(count, 1)


def _jsonable(d):
    import json

    try:
        json.dumps(d)
        return d
    except TypeError:
        return {k: str(v) for k, v in d.items()}


def training_config_from_dict(d: dict) -> TrainingConfig:
    """Build a :class:`TrainingConfig` from a config section (unknown keys are an error)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise InputError(
            f"unknown training option {unknown[0]!r}; known: {', '.join(sorted(names))}",
            field="training",
        )
    return TrainingConfig(**d)


def output_paths(output) -> tuple[Path, Path]:
    p = Path(output)
    stem = p.with_suffix("") if p.suffix in (".pt", ".json") else p
    return stem.with_suffix(".pt"), stem.with_suffix(".json")
