"""Systematics in the learned likelihood: training helpers and the accuracy comparison.

Two ways to put nuisance parameters ν into per-event log-ratios (both usable in an
:class:`~eftflow.inference.model.unbinned.UnbinnedRegion`):

(a) one network parameterised in θ *and* ν (:class:`~eftflow.inference.model.unbinned.
    EnsembleLogRatio` with parameters ``[θ..., ν...]``), trained on samples drawn at random
    (θ, ν) — with the toy's exact joint ratio and score, or from the sampling package's
    ``nu`` specs (augmented samples carry ν in ``theta0`` the same way);
(b) per-nuisance up/down ratio networks g(x|ν±) = p(x|ν=±1)/p(x|ν=0), combined per event with
    HistFactory code 4 (:class:`~eftflow.inference.model.unbinned.UpDownLogRatio`).

:func:`nuisance_accuracy` measures, on the analytic toy, how well each reproduces the true ν
dependence of log r: the RMS over events of [log r̂(x|θ,ν) − log r̂(x|θ,0)] − [same, exact].
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from eftflow.errors import InputError

from .unbinned import EnsembleLogRatio

__all__ = [
    "write_training_set",
    "train_nuisance_network",
    "train_updown_networks",
    "nuisance_accuracy",
]

log = logging.getLogger(__name__)


def write_training_set(columns: dict, path, *, chunk: int = 4096) -> Path:
    """Write MadMiner-named columns to a zarr training set (atomically)."""
    import zarr

    from eftflow.store.atomic import atomic_path

    path = Path(path)
    n = len(columns["x"])
    with atomic_path(path) as tmp:
        g = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        for k, v in columns.items():
            v = np.asarray(v, dtype=np.float32)
            if len(v) != n:
                raise InputError(f"column has {len(v)} rows, x has {n}", field=k)
            g.create_array(
                k, shape=v.shape, chunks=(min(chunk, n),) + v.shape[1:], dtype="float32"
            )[:] = v
    return path


def _train(columns, cfg, n_members, out_dir):
    from eftflow.ml.ensemble import train_ensemble

    out_dir = Path(out_dir)
    ts = write_training_set(columns, out_dir / "training.zarr")
    t0 = time.perf_counter()
    train_ensemble(ts, cfg, n_members, out_dir / "ensemble")
    return out_dir / "ensemble", time.perf_counter() - t0


def train_nuisance_network(
    toy,
    n: int,
    cfg,
    out_dir,
    rng: np.random.Generator,
    *,
    n_members: int = 1,
    theta_dims: int = 1,
    parameters=("theta_1", "nu_shape"),
    theta_range=(-0.3, 0.3),
    nu_range=(-2.0, 2.0),
) -> tuple[EnsembleLogRatio, float]:
    """Approach (a) on the toy: one ensemble log r̂(x|θ, ν_shape) trained on (θ, ν) drawn
    uniformly in ``theta_range`` × ``nu_range``; returns (provider, seconds)."""
    cols = toy.training_set(
        n, rng, theta_dims=theta_dims, theta_range=theta_range, nu_range=nu_range
    )
    path, secs = _train(cols, cfg, n_members, Path(out_dir) / "nu_network")
    return EnsembleLogRatio.load(path, list(parameters)), secs


def train_updown_networks(
    toy,
    n: int,
    cfg,
    out_dir,
    rng: np.random.Generator,
    *,
    n_members: int = 1,
    nuisance: str = "nu_shape",
) -> tuple[dict, float]:
    """Approach (b) on the toy: g(x|ν=+1) and g(x|ν=−1) ensembles; returns ({ν: (up, down)},
    seconds)."""
    provs, total = [], 0.0
    for sign, tag in ((1, "up"), (-1, "down")):
        cols = toy.updown_training_set(n, sign, rng)
        path, secs = _train(cols, cfg, n_members, Path(out_dir) / f"{nuisance}_{tag}")
        provs.append(EnsembleLogRatio.load(path, []))
        total += secs
    return {nuisance: tuple(provs)}, total


def nuisance_accuracy(provider, exact_fn, x, theta_values, nu_values) -> dict:
    """RMS error of the learned ν dependence: compares Δ(ν) = log r(x|θ,ν) − log r(x|θ,0) of
    ``provider`` (parameters [θ, ν]) with ``exact_fn(x (n,), pars (B, 2)) -> (B, n)``."""
    import torch

    x = np.asarray(x, float)
    pts = np.array([[t, v] for t in theta_values for v in nu_values])
    zero = pts.copy()
    zero[:, 1] = 0.0
    p = torch.as_tensor(pts, dtype=torch.float64)
    p0 = torch.as_tensor(zero, dtype=torch.float64)
    bound = provider.bind(x[:, None], dtype=torch.float64, device=torch.device("cpu"))
    xt = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        learned = (bound(p).mean(0) - bound(p0).mean(0)).numpy()
        exact = (exact_fn(xt, p) - exact_fn(xt, p0)).numpy()
    # compare shapes only: remove the per-point mean difference (normalisation)
    d = (learned - learned.mean(1, keepdims=True)) - (exact - exact.mean(1, keepdims=True))
    rms = np.sqrt((d**2).mean(1)).reshape(len(theta_values), len(nu_values))
    return {
        "theta": list(map(float, theta_values)),
        "nu": list(map(float, nu_values)),
        "rms": rms.tolist(),
        "rms_mean": float(rms.mean()),
        "rms_inside": float(rms[:, np.abs(np.asarray(nu_values)) <= 1].mean()),
        "rms_outside": float(rms[:, np.abs(np.asarray(nu_values)) > 1].mean())
        if np.any(np.abs(np.asarray(nu_values)) > 1)
        else float("nan"),
    }
