"""Small composable torch modules for every estimator family.

Every estimator carries its input scaling as buffers (so it is saved in the ``state_dict``) and is
described completely by its constructor arguments (saved as the JSON spec, see
:mod:`eftflow.ml.artifacts`).

* :class:`ScoreEstimator` — t̂(x) (SALLY/SALLINO), n_θ (+ n_ν) outputs.
* :class:`RatioEstimator` — log r̂(x|θ0, θ1): single-parameterised (θ1 is the fixed reference of
  the training set) or doubly parameterised, built antisymmetric, log r̂ = g(x,θ0,θ1) − g(x,θ1,θ0),
  so that r̂(x|θ,θ) = 1 exactly.
* :class:`MorphingAwareRatioEstimator` — learns per-component functions α_c(x) of the morphing
  decomposition dσ(x|θ) = Σ_c C_c(θ) α_c(x) and a normalisation n(θ):
  log r̂ = log Σ_c C_c(θ0) α_c(x) − log Σ_c C_c(θ1) α_c(x) + n(θ0) − n(θ1), which has the exact
  θ dependence of a polynomial matrix element.
* :class:`DensityEstimator` — conditional normalising flow log p̂(x|θ) (NDE/SCANDAL), zuko NSF.
* :class:`ProposalCorrection` — log Z(θ0) − log Z(θ1) for ratio estimators trained on balanced
  samples (:mod:`eftflow.sampling.balance`): added to their output, it turns the learned ratio
  of the balanced distributions into the ratio of the physical ones.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "mlp",
    "Standardize",
    "ScoreEstimator",
    "RatioEstimator",
    "MorphingAwareRatioEstimator",
    "DensityEstimator",
    "ProposalCorrection",
    "DensityCorrection",
    "component_values",
]

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,  # (MadMiner 0.9.6 silently returns relu here)
    "elu": nn.ELU,
    "softplus": nn.Softplus,
}


def mlp(
    n_in: int, n_out: int, hidden: tuple[int, ...] = (100, 100), activation: str = "tanh"
) -> nn.Sequential:
    """A plain multilayer perceptron."""
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), act()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """(v − mean)/std with mean and std stored as buffers."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def set(self, mean, std) -> None:
        std = torch.as_tensor(std, dtype=torch.float32)
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def forward(self, v):
        return (v - self.mean) / self.std


def component_values(components, theta):
    """Morphing monomials Π_p θ_p^k_cp: (n, n_p) → (n, n_c).

    Powers by repeated products (θ**0 would give a NaN gradient at θ = 0), then gathered per
    component.
    """
    k_max = int(components.max().item()) if components.numel() else 0
    powers = [torch.ones_like(theta)]
    for _ in range(k_max):
        powers.append(powers[-1] * theta)
    table = torch.stack(powers, dim=-1)  # (n, n_p, k_max + 1)
    idx = components.long().T.unsqueeze(0).expand(theta.shape[0], -1, -1)  # (n, n_p, n_c)
    return torch.gather(table, 2, idx).prod(dim=1)


class ProposalCorrection(nn.Module):
    """log Z(θ0) − log Z(θ1), Z(θ) = Σ_b c_b σ_b(θ) / Σ_b σ_b(θ) with σ_b(θ) = C(θ)·S_b by morphing.

    A ratio estimator trained on samples drawn ∝ w·c(x) learns r(x|θ0,θ1)·Z(θ1)/Z(θ0); adding
    this term to its log gives log r (:mod:`eftflow.sampling.balance`). Built from the training
    set's ``balance`` attribute: ``components`` (n_c, n_p) morphing powers, ``sigma_components``
    (n_c, n_bins), ``factors`` (n_bins), ``theta1`` the fixed denominator (single-parameterised
    estimators). The tensors are non-persistent buffers: the correction lives in the model's
    JSON spec, not in its ``state_dict``.
    """

    def __init__(self, components, sigma_components, factors, theta1=None, **_info):
        super().__init__()
        self.register_buffer(
            "components", torch.as_tensor(components, dtype=torch.int64), persistent=False
        )
        self.register_buffer(
            "sigma", torch.as_tensor(sigma_components, dtype=torch.float64), persistent=False
        )
        self.register_buffer(
            "factors", torch.as_tensor(factors, dtype=torch.float64), persistent=False
        )
        t1 = torch.zeros(0) if theta1 is None else torch.as_tensor(theta1, dtype=torch.float64)
        self.register_buffer("theta1", t1, persistent=False)

    def log_z(self, theta):
        """log Z(θ) for rows of θ (computed in float64, returned in θ's dtype)."""
        t = theta.to(torch.float64)
        sb = component_values(self.components, t) @ self.sigma  # (n, n_bins)
        return (torch.log(sb @ self.factors) - torch.log(sb.sum(-1))).to(theta.dtype)

    def forward(self, theta0, theta1=None):
        if theta1 is None:
            if self.theta1.numel() == 0:
                raise ValueError(
                    "a balanced training set with several θ1 needs a doubly parameterised estimator"
                )
            theta1 = self.theta1.to(theta0.dtype).expand_as(theta0)
        return self.log_z(theta0) - self.log_z(theta1)


def _proposal(proposal):
    return None if proposal is None else ProposalCorrection(**proposal)


class DensityCorrection(ProposalCorrection):
    """log Z(θ) − log c(x) for a density estimator trained on samples drawn ∝ w·c(x): it learned
    q(x|θ) = c(x) p(x|θ)/Z(θ), so log p = log q̂ + this. c(x) = ``factors[b]`` in the bins of
    observable column ``index`` (``edges``, bins open at both ends, as when the set was drawn).
    """

    def __init__(self, components, sigma_components, factors, edges, index, **_info):
        super().__init__(components, sigma_components, factors)
        self.index = int(index)
        self.register_buffer("edges", torch.as_tensor(edges, dtype=torch.float64), persistent=False)

    def forward(self, x, theta):
        v = x[:, self.index].to(torch.float64).contiguous()
        b = torch.bucketize(v, self.edges, right=True)  # edges[b-1] <= v < edges[b]
        log_c = torch.log(self.factors[b])
        return (self.log_z(theta).to(torch.float64) - log_c).to(x.dtype)


class ScoreEstimator(nn.Module):
    """t̂(x): the score at the training set's reference θ (SALLY, SALLINO).

    ``offset`` (a set drawn with ``balance``): ∇ log Z(θ), added to the network's output, which
    learned t(x) − ∇ log Z(θ) (:mod:`eftflow.sampling.balance`); a non-persistent buffer, kept
    in the model's JSON spec.
    """

    def __init__(
        self, n_observables: int, n_parameters: int, hidden=(100, 100), activation="tanh",
        offset=None,
    ):  # fmt: skip
        super().__init__()
        self.x_scale = Standardize(n_observables)
        self.net = mlp(n_observables, n_parameters, tuple(hidden), activation)
        self.register_buffer("offset", None, persistent=False)
        if offset is not None:
            self.set_offset(offset)

    def set_offset(self, offset) -> None:
        self.offset = torch.as_tensor(offset, dtype=torch.float32)

    def forward(self, x):
        out = self.net(self.x_scale(x))
        return out if self.offset is None else out + self.offset


class RatioEstimator(nn.Module):
    """log r̂(x|θ0, θ1); ``doubly=False`` ignores θ1 (fixed reference of the training set)."""

    def __init__(
        self,
        n_observables: int,
        n_parameters: int,
        hidden=(100, 100),
        activation="tanh",
        doubly=False,
        proposal=None,
    ):
        super().__init__()
        self.doubly = bool(doubly)
        self.proposal = _proposal(proposal)
        self.x_scale = Standardize(n_observables)
        self.theta_scale = Standardize(n_parameters)
        n_in = n_observables + n_parameters * (2 if doubly else 1)
        self.net = mlp(n_in, 1, tuple(hidden), activation)

    def _g(self, xs, t0, t1):
        inputs = [xs, t0, t1] if self.doubly else [xs, t0]
        return self.net(torch.cat(inputs, dim=-1)).squeeze(-1)

    def forward(self, x, theta0, theta1=None):
        xs = self.x_scale(x)
        t0 = self.theta_scale(theta0)
        if not self.doubly:
            out = self._g(xs, t0, None)
        else:
            t1 = self.theta_scale(theta1)
            out = self._g(xs, t0, t1) - self._g(xs, t1, t0)
        if self.proposal is not None:
            out = out + self.proposal(theta0, theta1 if self.doubly else None)
        return out


class MorphingAwareRatioEstimator(nn.Module):
    """log r̂ with the exact polynomial θ dependence of the morphing decomposition."""

    def __init__(
        self,
        n_observables: int,
        components,
        hidden=(100, 100),
        activation="tanh",
        theta1=None,
        eps: float = 1e-6,
        proposal=None,
    ):
        super().__init__()
        self.proposal = _proposal(proposal)
        comps = torch.as_tensor(components, dtype=torch.float32)
        self.register_buffer("components", comps)
        n_c, n_p = comps.shape
        self.register_buffer(
            "theta1",
            torch.zeros(n_p) if theta1 is None else torch.as_tensor(theta1, dtype=torch.float32),
        )
        self.x_scale = Standardize(n_observables)
        self.theta_scale = Standardize(n_p)
        self.alpha = mlp(n_observables, n_c, tuple(hidden), activation)
        self.norm = mlp(n_p, 1, (32, 32), "tanh")
        self.eps = eps
        self.doubly = True

    def _component_values(self, theta):
        return component_values(self.components, theta)

    def _log_dsigma(self, alpha, theta):
        value = (self._component_values(theta) * alpha).sum(-1)
        return torch.log(nn.functional.softplus(value) + self.eps)

    def forward(self, x, theta0, theta1=None):
        if theta1 is None:
            theta1 = self.theta1.expand_as(theta0)
        alpha = self.alpha(self.x_scale(x))
        n0 = self.norm(self.theta_scale(theta0)).squeeze(-1)
        n1 = self.norm(self.theta_scale(theta1)).squeeze(-1)
        out = self._log_dsigma(alpha, theta0) - self._log_dsigma(alpha, theta1) + n0 - n1
        if self.proposal is not None:
            out = out + self.proposal(theta0, theta1)
        return out


class DensityEstimator(nn.Module):
    """Conditional normalising flow p̂(x|θ) (neural spline flow from zuko)."""

    def __init__(
        self,
        n_observables: int,
        n_parameters: int,
        hidden=(64, 64),
        transforms: int = 3,
        bins: int = 8,
        proposal=None,
    ):
        super().__init__()
        import zuko

        self.proposal = None if proposal is None else DensityCorrection(**proposal)

        self.x_scale = Standardize(n_observables)
        self.theta_scale = Standardize(n_parameters)
        self.flow = zuko.flows.NSF(
            features=n_observables,
            context=n_parameters,
            transforms=transforms,
            bins=bins,
            hidden_features=tuple(hidden),
        )

    def forward(self, x, theta):
        """log p̂(x|θ) in the original (unscaled) x units."""
        log_p = self.flow(self.theta_scale(theta)).log_prob(self.x_scale(x))
        log_p = log_p - torch.log(self.x_scale.std).sum()
        return log_p if self.proposal is None else log_p + self.proposal(x, theta)
