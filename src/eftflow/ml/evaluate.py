"""Evaluating trained estimators: log r̂ on θ grids, scores, detector-level Fisher information.

All evaluations run in batches (no graph is kept unless a θ-gradient is requested) and accept
numpy arrays; they return numpy arrays.
"""

from __future__ import annotations

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "predict_score",
    "predict_log_r",
    "predict_log_p",
    "fisher_information_from_scores",
    "rate_fisher_information",
    "handle_nuisance",
    "NUISANCE_MODES",
]

NUISANCE_MODES = ("keep", "project", "profile")


def _as_tensor(a):
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _check_theta(theta, n_p: int, what="theta") -> np.ndarray:
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    if theta.shape[-1] != n_p:
        raise InputError(
            f"{what} has {theta.shape[-1]} components, the model expects {n_p}", field=what
        )
    return theta


def _check_x(model, x) -> np.ndarray:
    """``x`` as float32 (n, n_observables); an error if its width is not the model's."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        x = x.reshape(-1, 1)
    elif x.ndim > 2:
        x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    n_obs = int(model.x_scale.mean.shape[0])
    if x.shape[1] != n_obs:
        raise InputError(
            f"x has {x.shape[1]} observables per event, the model was trained on {n_obs}",
            field="x",
        )
    return x


def predict_score(model, x, *, batch_size: int = 100_000) -> np.ndarray:
    """t̂(x) of a score estimator: (n, n_parameters)."""
    import torch

    x = _check_x(model, x)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(_as_tensor(x[i : i + batch_size])).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 0))


def _n_params(model) -> int:
    return int(model.theta_scale.mean.shape[0])


def predict_log_r(
    model, x, theta0, theta1=None, *, batch_size: int = 100_000, with_score: bool = False
):
    """log r̂(x|θ0, θ1) for every θ0 in a grid: shape (n_theta, n_events) (+ scores if asked).

    ``theta1`` is ignored by single-parameterised models (their denominator is the training
    reference).
    """
    import torch

    n_p = _n_params(model)
    theta0 = _check_theta(theta0, n_p, "theta0")
    theta1 = None if theta1 is None else _check_theta(theta1, n_p, "theta1")
    if theta1 is None and type(model).__name__ == "RatioEstimator" and model.doubly:
        raise InputError("a doubly parameterised model needs theta1", field="theta1")
    x = _check_x(model, x)
    logs = np.empty((len(theta0), len(x)))
    scores = np.empty((len(theta0), len(x), n_p)) if with_score else None
    for k, th in enumerate(theta0):
        for i in range(0, len(x), batch_size):
            xb = _as_tensor(x[i : i + batch_size])
            t0 = _as_tensor(np.broadcast_to(th, (len(xb), n_p))).clone()
            t1 = (
                None
                if theta1 is None
                else _as_tensor(np.broadcast_to(theta1[min(k, len(theta1) - 1)], (len(xb), n_p)))
            )
            if with_score:
                t0.requires_grad_(True)
                lr = model(xb, t0, t1)
                g = torch.autograd.grad(lr.sum(), t0)[0]
                scores[k, i : i + len(xb)] = g.numpy()
                logs[k, i : i + len(xb)] = lr.detach().numpy()
            else:
                with torch.no_grad():
                    logs[k, i : i + len(xb)] = model(xb, t0, t1).numpy()
    return (logs, scores) if with_score else logs


def predict_log_p(model, x, theta, *, batch_size: int = 100_000) -> np.ndarray:
    """log p̂(x|θ) of a density estimator for each θ: (n_theta, n_events)."""
    import torch

    n_p = _n_params(model)
    theta = _check_theta(theta, n_p)
    x = _check_x(model, x)
    out = np.empty((len(theta), len(x)))
    with torch.no_grad():
        for k, th in enumerate(theta):
            for i in range(0, len(x), batch_size):
                xb = _as_tensor(x[i : i + batch_size])
                out[k, i : i + len(xb)] = model(
                    xb, _as_tensor(np.broadcast_to(th, (len(xb), n_p)))
                ).numpy()
    return out


def fisher_information_from_scores(scores, weights, luminosity: float) -> np.ndarray:
    """Kinematic Fisher information L Σ_i w_i t_i t_iᵀ (weights in pb per event, L in pb⁻¹).

    With Σ w = σ this is L σ E[t tᵀ]: the information in the shape of the distribution; add
    :func:`rate_fisher_information` for the information in the total rate.
    """
    t = np.asarray(scores, dtype=float)
    w = np.asarray(weights, dtype=float)
    return luminosity * np.einsum("i,ij,ik->jk", w, t, t)


def rate_fisher_information(sigma: float, sigma_gradient, luminosity: float) -> np.ndarray:
    """L ∇σ ∇σᵀ / σ: the information in the expected number of events."""
    g = np.asarray(sigma_gradient, dtype=float)
    return luminosity * np.outer(g, g) / sigma


def handle_nuisance(
    info,
    n_parameters: int,
    mode: str = "keep",
    *,
    covariance=None,
    constrain: bool = True,
):
    """Treat the nuisance components (after the first ``n_parameters``) of an information matrix.

    ``keep``: return everything (θ then ν). ``project``: drop the ν rows/columns (ν known).
    ``profile``: Schur complement I_θθ − I_θν I_νν⁻¹ I_νθ (ν unknown), with unit Gaussian
    constraint terms on ν added first when ``constrain`` (MadMiner's convention).

    Returns the matrix, or ``(matrix, covariance)`` when ``covariance`` (k, k, k, k) is given.

    Example
    -------
    >>> import numpy as np
    >>> handle_nuisance(np.array([[4.0, 2.0], [2.0, 1.0]]), 1, "profile").round(3).tolist()
    [[2.0]]
    """
    from eftflow.inference.fisher import (
        nuisance_constraint_information,
        profile_information,
        project_information,
    )

    info = np.asarray(info, dtype=float)
    if mode not in NUISANCE_MODES:
        raise InputError(
            f"unknown nuisance mode {mode!r}; use {', '.join(NUISANCE_MODES)}",
            field="evaluation.nuisance",
        )
    k = info.shape[0]
    if not 0 < n_parameters <= k:
        raise InputError(
            f"n_parameters = {n_parameters} does not fit an information matrix of size {k}",
            field="n_parameters",
        )
    if mode == "keep" or n_parameters == k:
        return info if covariance is None else (info, covariance)
    rem = list(range(n_parameters))
    if mode == "project":
        return project_information(info, rem, covariance)
    if constrain:
        info = info + nuisance_constraint_information(n_parameters, k - n_parameters)
    return profile_information(info, rem, covariance)
