"""Loss functions of every method (MadMiner's ``madminer.utils.ml.losses``, same definitions).

Conventions: r(x|θ0,θ1) = p(x|θ0)/p(x|θ1); samples with label y = 0 come from θ0, y = 1 from θ1;
the classifier output is s = 1/(1 + r) (the probability of y = 1). Joint quantities from the
augmentation: r_xz, t_xz0 = ∇θ0 log p(x,z|θ0), t_xz1.

=========  ===============================================================================
method     loss
=========  ===============================================================================
carl       BCE(ŝ, y)
rolr       MSE((1−y)/r̂, (1−y)/r_xz) + MSE(y r̂, y r_xz)
rascal     rolr + α · MSE((1−y) t̂0, (1−y) t_xz0)
alice      BCE(ŝ, s_xz) with s_xz = 1/(1 + r_xz)   (improved cross entropy)
alices     alice + α · MSE((1−y) t̂0, (1−y) t_xz0)
cascal     carl + α · MSE((1−y) t̂0, (1−y) t_xz0)
sally      MSE(t̂, t_xz)
sallino    MSE(t̂, t_xz) (the same network; differs only in how it is evaluated)
nde        −mean log p̂(x|θ)
scandal    nde + α · MSE(∇θ log p̂(x|θ), t_xz)
=========  ===============================================================================
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["LOG_R_CLIP", "ratio_losses", "score_loss", "density_losses", "METHOD_TERMS"]

LOG_R_CLIP = 10.0

#: which terms each method adds (the score term is weighted with α)
METHOD_TERMS = {
    "carl": ("xe",),
    "rolr": ("mse",),
    "rascal": ("mse", "score"),
    "alice": ("augmented_xe",),
    "alices": ("augmented_xe", "score"),
    "cascal": ("xe", "score"),
    "sally": ("local_score",),
    "sallino": ("local_score",),
    "nde": ("nll",),
    "scandal": ("nll", "score"),
}


def ratio_losses(method: str, log_r_hat, t_hat0, y, r_xz=None, t_xz0=None, alpha: float = 1.0):
    """Total loss and its named terms for a ratio method (tensors of shape (n,) or (n, n_p))."""
    terms = {}
    log_r_hat = torch.clamp(log_r_hat, -LOG_R_CLIP, LOG_R_CLIP)
    s_hat = torch.sigmoid(-log_r_hat)  # 1/(1+r)
    for term in METHOD_TERMS[method]:
        if term == "xe":
            terms[term] = F.binary_cross_entropy(s_hat, y)
        elif term == "augmented_xe":
            s_xz = 1.0 / (1.0 + r_xz)
            terms[term] = F.binary_cross_entropy(s_hat, s_xz)
        elif term == "mse":
            r_hat = torch.exp(log_r_hat)
            terms[term] = F.mse_loss((1 - y) / r_hat, (1 - y) / r_xz) + F.mse_loss(
                y * r_hat, y * r_xz
            )
        elif term == "score":
            mask = (1 - y).unsqueeze(-1)
            terms[term] = alpha * F.mse_loss(mask * t_hat0, mask * t_xz0)
    return sum(terms.values()), terms


def score_loss(t_hat, t_xz):
    """SALLY / SALLINO: mean squared error of the score."""
    loss = F.mse_loss(t_hat, t_xz)
    return loss, {"local_score": loss}


def density_losses(method: str, log_p, t_hat=None, t_xz=None, alpha: float = 1.0):
    """NDE / SCANDAL."""
    terms = {"nll": -log_p.mean()}
    if method == "scandal":
        terms["score"] = alpha * F.mse_loss(t_hat, t_xz)
    return sum(terms.values()), terms
