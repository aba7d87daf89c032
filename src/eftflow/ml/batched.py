"""Batched ensembles: K members trained together in one process as one batched module.

An alternative to one job or Dask worker per member (:func:`eftflow.ml.ensemble.train_ensemble`):
the K members' MLPs are built exactly as :func:`eftflow.ml.train.train_estimator` builds them
(same spec, same input scaling, member ``k`` initialised with ``member_seed(cfg.seed, k)``), their
weights are stacked into ``(K, n_in, n_out)`` tensors and every layer of all K members is one
``torch.baddbmm``. Small MLPs are dominated by per-operation overhead on the CPU, so one batched
step costs far less than K separate steps.

Each member keeps its own data order: member ``k`` draws its batches from its own stream
(``numpy.random.default_rng(member_seed(cfg.seed, k))``, exactly as ``train_estimator`` does), so a
batched member sees the same batches as the same member trained alone. The loss of the step is
the sum of the members' losses (computed with the method's own loss functions), so each member's
gradient is its own; gradient clipping is per member; one Adam over the stacked tensors is
per-member Adam (Adam is element-wise). Early stopping is per member: a member that stops keeps
the weights of its best epoch (its later updates are discarded), and training ends when every
member has stopped. Members are written as ``train_ensemble`` writes them (``member_<k>.pt`` +
``.json``, ``ensemble.json``), so :meth:`eftflow.ml.ensemble.Ensemble.load` reads them unchanged.

Limitation: when a training set spans several read buffers (more than ``buffer_rows`` training
rows) two members' streams can end one batch apart; in that step the member without a batch gets
a zero gradient (Adam's momentum still moves it slightly).

Supported: the score methods (sally, sallino) and the plain ratio methods (carl, rolr, rascal,
alice, alices, cascal; single or doubly parameterised). Morphing-aware ratios and density
estimators raise :class:`~eftflow.errors.InputError`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.ml.artifacts import family_of, save_model
from eftflow.ml.data import TrainingSet
from eftflow.ml.train import (
    TrainingConfig,
    _jsonable,
    _model_spec,
    attach_proposal,
    balance_proposal,
    pick_device,
    torch_threads,
)

__all__ = ["BATCHED_METHODS", "train_ensemble_batched"]

log = logging.getLogger(__name__)

#: methods that can be trained in batched mode
BATCHED_METHODS = ("sally", "sallino", "carl", "rolr", "rascal", "alice", "alices", "cascal")


def train_ensemble_batched(
    training_set, cfg: TrainingConfig, n_members: int, output_dir, *, threads: int = 1
) -> list[dict]:
    """Train ``n_members`` members together in this process; write them as ``train_ensemble``.

    Parameters
    ----------
    training_set
        Path of a zarr training set (or a :class:`~eftflow.ml.data.TrainingSet`).
    cfg
        The :class:`~eftflow.ml.train.TrainingConfig`; member ``k`` uses the seed
        ``member_seed(cfg.seed, k)``.
    n_members
        Number of members K.
    output_dir
        Directory for ``member_<k>.{pt,json}`` and ``ensemble.json``.
    threads
        torch intra-op threads of the whole batched training.

    Returns
    -------
    list of dict
        Per member: the training summary (without the history), ``member`` and ``path``
        (relative to ``output_dir``).

    Raises
    ------
    InputError
        A method that is not supported in batched mode, or fewer than one member.
    """
    if n_members < 1:
        raise InputError("an ensemble needs at least one member", field="n_members")
    if cfg.method not in BATCHED_METHODS or cfg.morphing_aware:
        what = "morphing-aware " if cfg.morphing_aware else ""
        raise InputError(
            f"{what}method {cfg.method!r} cannot be trained in batched mode; batched ensembles "
            f"support {', '.join(BATCHED_METHODS)} (not morphing-aware); train it with "
            "ensemble.batched: false",
            field="ensemble.batched",
        )
    threads = max(int(threads), 1)
    with torch_threads(threads):
        results = _train_batched(training_set, cfg, n_members, Path(output_dir), threads)
    summary = {
        "format": "eftflow-ensemble",
        "method": cfg.method,
        "n_members": n_members,
        "batched": True,
        "members": [f"member_{r['member']}" for r in results],
        "results": results,
    }
    from eftflow.store.atomic import atomic_path

    with atomic_path(Path(output_dir) / "ensemble.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=float))
    return results


class _Stacked:
    """K MLPs (``nn.Sequential`` of Linear + activation) as stacked leaf tensors."""

    def __init__(self, nets, activation: str, device):
        from torch import nn

        from eftflow.ml.models import ACTIVATIONS

        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        self.weights, self.biases = [], []
        for layer in zip(*linears, strict=True):
            import torch

            w = torch.stack([lin.weight.detach().T for lin in layer]).contiguous()
            b = torch.stack([lin.bias.detach() for lin in layer]).unsqueeze(1).contiguous()
            self.weights.append(w.to(device).requires_grad_(True))
            self.biases.append(b.to(device).requires_grad_(True))
        self.act = ACTIVATIONS[activation]()

    def parameters(self) -> list:
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def __call__(self, h):
        import torch

        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.act(h)
        return h

    def member_state(self, k: int) -> list:
        return [p[k].detach().clone() for p in self.parameters()]

    def write_member(self, net, state: list) -> None:
        """Copy member ``k``'s stacked slices (``state``) into the module ``net``."""
        import torch
        from torch import nn

        it = iter(state)
        with torch.no_grad():
            for lin in (m for m in net if isinstance(m, nn.Linear)):
                lin.weight.copy_(next(it).T.cpu())
                lin.bias.copy_(next(it)[0].cpu())


def _stack_batches(batches: list, columns) -> tuple[dict, list[int]]:
    """Stack the members' batches to (K, B, ...) tensors, zero-padding shorter (or missing) ones."""
    import torch

    sizes = [0 if b is None else len(b["x"]) for b in batches]
    n_max = max(sizes)
    ref = next(b for b in batches if b is not None)
    out = {}
    for c in columns:
        parts = []
        for b, n in zip(batches, sizes, strict=True):
            if n == n_max:
                parts.append(b[c])
            else:
                pad = ref[c].new_zeros((n_max - n,) + tuple(ref[c].shape[1:]))
                parts.append(pad if b is None else torch.cat([b[c], pad]))
        out[c] = torch.stack(parts)
    return out, sizes


def _member_losses(family, method, net, scale, batch, sizes, alpha, need_grad):
    """The K members' losses (a list of scalar tensors) on a stacked batch."""
    import torch

    from eftflow.ml.losses import METHOD_TERMS, ratio_losses, score_loss

    x_mean, x_std, t_mean, t_std, doubly = scale
    xs = (batch["x"] - x_mean) / x_std
    k_members = len(sizes)
    if family == "score":
        t_hat = net(xs)
        if all(n == sizes[0] for n in sizes):  # mean over rows and outputs, per member
            return list(((t_hat - batch["t_xz0"]) ** 2).mean(dim=(1, 2)).unbind(0))
        return [score_loss(t_hat[k, :n], batch["t_xz0"][k, :n])[0] for k, n in enumerate(sizes)]
    wants_score = "score" in METHOD_TERMS[method]
    theta0 = batch["theta0"]
    if wants_score:
        theta0 = theta0.clone().requires_grad_(True)
    t0 = (theta0 - t_mean) / t_std
    if doubly:
        t1 = (batch["theta1"] - t_mean) / t_std
        log_r = (net(torch.cat([xs, t0, t1], -1)) - net(torch.cat([xs, t1, t0], -1))).squeeze(-1)
    else:
        log_r = net(torch.cat([xs, t0], -1)).squeeze(-1)
    t_hat0 = None
    if wants_score:
        t_hat0 = torch.autograd.grad(log_r.sum(), theta0, create_graph=need_grad)[0]
    if all(n == sizes[0] for n in sizes):  # the method's loss, vectorised over the members

        def one(lr, th, y, r, t):
            return ratio_losses(method, lr, th, y, r, t, alpha)[0]

        args = [log_r, t_hat0, batch["y"], batch.get("r_xz"), batch.get("t_xz0")]
        dims = tuple(None if a is None else 0 for a in args)
        return list(torch.vmap(one, in_dims=dims)(*args).unbind(0))
    losses = []
    for k in range(k_members):
        n = sizes[k]
        if n == 0:
            losses.append(log_r.new_zeros(()))
            continue
        losses.append(
            ratio_losses(
                method,
                log_r[k, :n],
                None if t_hat0 is None else t_hat0[k, :n],
                batch["y"][k, :n],
                batch["r_xz"][k, :n] if "r_xz" in batch else None,
                batch["t_xz0"][k, :n] if "t_xz0" in batch else None,
                alpha,
            )[0]
        )
    return losses


def _clip_per_member(params: list, max_norm: float) -> None:
    """``clip_grad_norm_`` applied to every member's slice of the stacked gradients."""
    import torch

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    sq = sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads)
    coef = torch.clamp(max_norm / (sq.sqrt() + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view((-1,) + (1,) * (g.dim() - 1)))


def _train_batched(training_set, cfg: TrainingConfig, k_members: int, output_dir: Path, threads):
    import torch

    from eftflow.ml.artifacts import build_model
    from eftflow.ml.ensemble import log_member, member_seed

    ts = training_set if isinstance(training_set, TrainingSet) else TrainingSet(training_set)
    columns = ts.require(cfg.method, doubly=cfg.doubly)
    fam = family_of(cfg.method)
    n_obs = ts.width("x")
    n_p = ts.width("t_xz0") if fam == "score" else ts.width("theta0")
    train_rows, val_rows = ts.split(cfg.validation_split)
    spec_model = _model_spec(cfg, n_obs, n_p)
    proposal = balance_proposal(ts.attrs, spec_model, source=str(ts.path))
    device = pick_device(cfg.device)
    mean, std = ts.moments("x", train_rows)
    t_moments = None
    if fam != "score":
        tm, tsd = ts.moments("theta0", train_rows)
        if cfg.doubly:
            t1m, t1s = ts.moments("theta1", train_rows)
            tm, tsd = 0.5 * (tm + t1m), np.maximum(tsd, t1s)
        t_moments = (tm, tsd)
    cfgs, models = [], []
    for k in range(k_members):
        cfg_k = replace(cfg, seed=member_seed(cfg.seed, k), threads=threads)
        torch.manual_seed(cfg_k.seed)
        model = build_model({"model": spec_model})
        model.x_scale.set(mean, std)
        if t_moments is not None:
            model.theta_scale.set(*t_moments)
        cfgs.append(cfg_k)
        models.append(model)
    m0 = models[0]
    scale = (
        m0.x_scale.mean.to(device),
        m0.x_scale.std.to(device),
        None if t_moments is None else m0.theta_scale.mean.to(device),
        None if t_moments is None else m0.theta_scale.std.to(device),
        bool(cfg.doubly),
    )
    net = _Stacked([m.net for m in models], cfg.activation, device)
    params = net.parameters()
    opt = torch.optim.Adam(params, lr=cfg.learning_rate)
    gamma = (cfg.final_learning_rate / cfg.learning_rate) ** (1.0 / max(cfg.n_epochs - 1, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    rngs = [np.random.default_rng(c.seed) for c in cfgs]
    to_dev = device if device.type != "cpu" else None
    hist = [{"train": [], "validation": [], "lr": []} for _ in range(k_members)]
    best_state = [None] * k_members
    best_val = [np.inf] * k_members
    best_epoch = [-1] * k_members
    bad = [0] * k_members
    active = [True] * k_members
    n_seen = [0] * k_members
    t_start = time.perf_counter()
    for epoch in range(cfg.n_epochs):
        streams = [
            ts.iter_batches(
                columns,
                cfg.batch_size,
                train_rows,
                rng=rng,
                buffer_rows=cfg.buffer_rows,
                device=to_dev,
            )  # fmt: skip
            for rng in rngs
        ]
        totals, counts = np.zeros(k_members), np.zeros(k_members, dtype=np.int64)
        try:
            while True:
                batches = [next(s, None) for s in streams]
                if all(b is None for b in batches):
                    break
                batch, sizes = _stack_batches(batches, columns)
                losses = _member_losses(
                    fam, cfg.method, net, scale, batch, sizes, cfg.alpha, need_grad=True
                )
                loss = torch.stack(losses)
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                if cfg.clip_grad_norm:
                    _clip_per_member(params, cfg.clip_grad_norm)
                opt.step()
                sz = np.asarray(sizes)
                totals += loss.detach().cpu().numpy() * sz
                counts += sz
        finally:
            for s in streams:
                s.close()
        lr = opt.param_groups[0]["lr"]
        sched.step()
        vals = _evaluate(fam, cfg, net, scale, ts, columns, val_rows, k_members, to_dev)
        for k in range(k_members):
            if not active[k]:
                continue
            n_seen[k] += int(counts[k])
            hist[k]["train"].append(totals[k] / max(counts[k], 1))
            hist[k]["lr"].append(lr)
            hist[k]["validation"].append(None if vals is None else float(vals[k]))
            monitor = hist[k]["train"][-1] if vals is None else vals[k]
            if monitor < best_val[k] - 1e-12:
                best_val[k], best_epoch[k], bad[k] = float(monitor), epoch, 0
                best_state[k] = net.member_state(k)
            else:
                bad[k] += 1
            if cfg.early_stopping and vals is not None and bad[k] >= cfg.patience:
                log.info("member %d: early stopping after epoch %d (best epoch %d)",
                         k, epoch + 1, best_epoch[k] + 1)  # fmt: skip
                active[k] = False
        log.info("%s batched x%d epoch %d/%d: train loss %s", cfg.method, k_members, epoch + 1,
                 cfg.n_epochs, ", ".join(f"{v:.5g}" for v in totals / np.maximum(counts, 1)))  # fmt: skip
        if not any(active):
            break
    elapsed = time.perf_counter() - t_start
    output_dir.mkdir(parents=True, exist_ok=True)
    results = []
    spec_model = attach_proposal(models, spec_model, proposal)
    for k, model in enumerate(models):
        state = best_state[k]
        if not (cfg.early_stopping and state is not None):
            state = net.member_state(k)
        net.write_member(model.net, state)
        model.eval()
        summary = {
            "best_epoch": best_epoch[k] + 1,
            "best_loss": best_val[k],
            "epochs_run": len(hist[k]["train"]),
            "seconds": elapsed,
            "samples_per_second": n_seen[k] / elapsed if elapsed > 0 else None,
            "device": str(device),
            "history": hist[k],
            "n_train": train_rows[1] - train_rows[0],
            "n_validation": val_rows[1] - val_rows[0],
            "batched_members": k_members,
        }
        spec = {
            "method": cfg.method,
            "family": fam,
            "model": spec_model,
            "training": asdict(cfgs[k]),
            "summary": summary,
            "training_set": str(ts.path),
            "training_set_attrs": _jsonable(ts.attrs),
            "ensemble_member": k,
        }
        out = output_dir / f"member_{k}"
        save_model(out, model, spec)
        results.append(
            {key: v for key, v in summary.items() if key != "history"}
            | {"member": k, "path": out.name}
        )
        log_member(results[-1], hist[k], per_epoch=False, logger=log)
    return results


def _evaluate(fam, cfg, net, scale, ts, columns, rows, k_members, to_dev):
    """Per-member validation losses (array of K), or ``None`` without validation rows."""
    import torch

    if rows[1] <= rows[0]:
        return None
    totals = np.zeros(k_members)
    count = 0
    ctx = torch.enable_grad() if fam != "score" else torch.no_grad()
    with ctx:
        for b in ts.iter_batches(columns, max(cfg.batch_size, 1024), rows, device=to_dev):
            n = len(b["x"])
            batch = {c: v.unsqueeze(0).expand((k_members,) + tuple(v.shape)) for c, v in b.items()}
            losses = _member_losses(
                fam, cfg.method, net, scale, batch, [n] * k_members, cfg.alpha, need_grad=False
            )
            totals += torch.stack(losses).detach().cpu().numpy() * n
            count += n
    return totals / max(count, 1)
