"""Parameters of the statistical model and their constraint terms (numpy and torch).

Every parameter of a :class:`~eftflow.inference.model.model.StatModel` is a
:class:`ModelParameter`: a name, a starting value, bounds, a kind and an optional constraint.
Constraints follow HistFactory (and pyhf) exactly:

* ``"normal"``: auxiliary measurement ``a ~ N(p, sigma)``; log-pdf
  ``-(a - p)^2 / (2 sigma^2) - log sigma - log(2 pi)/2`` (normsys, histosys: ``a = 0``,
  ``sigma = 1``; lumi: ``a = 1``, ``sigma`` = relative luminosity error; staterror: ``a = 1``,
  ``sigma`` = relative MC error of the bin; ensemble-spread parameters: ``a = 0``, ``sigma = 1``).
* ``"poisson"``: auxiliary count ``a ~ Poisson(p tau)`` (shapesys: ``a = tau = (nominal /
  uncertainty)^2``); log-pdf ``a log(p tau) - p tau - lgamma(a + 1)`` (continuous in ``a``).

:func:`constraint_logpdf` evaluates all constraint terms for a batch of parameter points and a
batch of auxiliary data (both backends).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError

__all__ = ["KINDS", "ModelParameter", "ConstraintSet", "merge_parameters"]

KINDS = ("poi", "nuisance", "normfactor", "gamma", "spread", "free")
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass
class ModelParameter:
    """One scalar parameter of the model.

    Parameters
    ----------
    name
        Unique name (vector modifiers use ``name[i]``).
    init
        Nominal / starting value.
    lower, upper
        Bounds.
    kind
        One of :data:`KINDS` (``poi`` parameters of interest; ``nuisance`` constrained
        systematics; ``normfactor`` free normalisations; ``gamma`` bin-wise statistical
        parameters; ``spread`` ensemble-spread parameters; ``free`` anything else).
    constraint
        ``None``, ``"normal"`` or ``"poisson"``.
    aux, sigma, tau
        Nominal auxiliary datum, Gaussian width, Poisson scale.
    fixed
        Held constant in fits.
    """

    name: str
    init: float
    lower: float = -math.inf
    upper: float = math.inf
    kind: str = "free"
    constraint: str | None = None
    aux: float = 0.0
    sigma: float = 1.0
    tau: float = 1.0
    fixed: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(
                f"unknown parameter kind {self.kind!r}; known: {', '.join(KINDS)}",
                field=f"parameters.{self.name}.kind",
            )
        if self.constraint not in (None, "normal", "poisson"):
            raise InputError(
                f"unknown constraint {self.constraint!r}; use normal or poisson",
                field=f"parameters.{self.name}.constraint",
            )
        if not self.lower <= self.init <= self.upper:
            raise InputError(
                f"initial value {self.init} outside the bounds [{self.lower}, {self.upper}]",
                field=f"parameters.{self.name}",
            )
        if self.constraint == "normal" and not self.sigma > 0:
            raise InputError("sigma must be positive", field=f"parameters.{self.name}.sigma")
        if self.constraint == "poisson" and not self.tau > 0:
            raise InputError("tau must be positive", field=f"parameters.{self.name}.tau")

    def same_as(self, other: ModelParameter) -> bool:
        """True when two declarations of a shared parameter agree."""
        return (
            self.constraint == other.constraint
            and (self.constraint is None or math.isclose(self.aux, other.aux))
            and (self.constraint != "normal" or math.isclose(self.sigma, other.sigma))
            and (self.constraint != "poisson" or math.isclose(self.tau, other.tau))
        )


def merge_parameters(groups: Sequence[Sequence[ModelParameter]]) -> list[ModelParameter]:
    """Union of parameter declarations, shared by name; conflicting constraints are an error."""
    out: dict[str, ModelParameter] = {}
    for group in groups:
        for p in group:
            if p.name in out:
                q = out[p.name]
                if not q.same_as(p):
                    raise InputError(
                        f"parameter {p.name!r} is declared twice with different constraints "
                        f"({q.constraint}, aux={q.aux}, sigma={q.sigma} vs {p.constraint}, "
                        f"aux={p.aux}, sigma={p.sigma})",
                        field=f"parameters.{p.name}",
                    )
                # a POI declared anywhere is a POI; the tighter bounds win
                if p.kind == "poi":
                    q.kind = "poi"
                q.lower, q.upper = max(q.lower, p.lower), min(q.upper, p.upper)
            else:
                out[p.name] = ModelParameter(**p.__dict__)
    return list(out.values())


class ConstraintSet:
    """The constraint terms of a list of parameters, vectorised over batches.

    ``aux`` vectors are ordered as :attr:`names` (the constrained parameters, in model order).
    """

    def __init__(self, parameters: Sequence[ModelParameter]):
        names = [p.name for p in parameters]
        normal = [i for i, p in enumerate(parameters) if p.constraint == "normal"]
        poisson = [i for i, p in enumerate(parameters) if p.constraint == "poisson"]
        self.index = np.array(normal + poisson, dtype=np.int64)
        self.names = [names[i] for i in self.index]
        self.n_normal = len(normal)
        self.sigma = np.array([parameters[i].sigma for i in normal], dtype=float)
        self.tau = np.array([parameters[i].tau for i in poisson], dtype=float)
        self.nominal_aux = np.array([parameters[i].aux for i in self.index], dtype=float)

    def __len__(self) -> int:
        return len(self.index)

    def logpdf(self, pars, aux):
        """Sum of constraint log-pdfs, shape (B,); ``pars`` (B, P), ``aux`` (B or 1, n_aux)."""
        import torch

        if len(self) == 0:
            return torch.zeros(pars.shape[0], dtype=pars.dtype, device=pars.device)
        p = pars[:, torch.as_tensor(self.index, device=pars.device)]
        k = self.n_normal
        total = torch.zeros(max(pars.shape[0], aux.shape[0]), dtype=pars.dtype, device=pars.device)
        if k:
            sig = torch.as_tensor(self.sigma, dtype=pars.dtype, device=pars.device)
            z = (aux[:, :k] - p[:, :k]) / sig
            total = total + (-0.5 * z * z - torch.log(sig) - _LOG_SQRT_2PI).sum(-1)
        if len(self) > k:
            tau = torch.as_tensor(self.tau, dtype=pars.dtype, device=pars.device)
            n = aux[:, k:]
            lam = p[:, k:] * tau
            total = total + (torch.xlogy(n, lam) - lam - torch.lgamma(n + 1.0)).sum(-1)
        return total

    def expected_aux(self, pars: np.ndarray) -> np.ndarray:
        """Asimov auxiliary data at ``pars`` (B, P): p (normal) or p tau (poisson)."""
        p = np.atleast_2d(pars)[:, self.index]
        out = p.copy()
        out[:, self.n_normal :] *= self.tau
        return out

    def sample_aux(self, pars: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of the auxiliary data at ``pars`` (one point, (P,)), shape (n, n_aux)."""
        p = np.asarray(pars, dtype=float)[self.index]
        k = self.n_normal
        out = np.empty((n, len(self)))
        out[:, :k] = rng.normal(p[:k], self.sigma, size=(n, k))
        out[:, k:] = rng.poisson(p[k:] * self.tau, size=(n, len(self) - k))
        return out
