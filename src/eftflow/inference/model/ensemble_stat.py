"""Finite training statistics: the ensemble spread as a constrained parameter of the fit.

An ensemble of K estimators gives, per event and parameter point, K values of log r̂. Their
mean enters the likelihood; their standard deviation s_i(φ) measures how much a differently
trained estimator would move each event's log r̂. :class:`SpreadTerm` adds one parameter γ per
region (constraint N(0, 1)) and uses

    log r̂_i(φ, γ) = mean_k log r̂_ik(φ) + γ · c · s_i(φ),

a coherent shift of every event by its own member spread (c = ``scale``, default 1: one member
standard deviation, the conservative choice — the error of the *mean* of K independently trained
members would be s/√K, but members trained on the same data share its fluctuations). Profiling
γ widens the intervals where the ensemble disagrees and costs nothing where it agrees. With one
member (s = 0) the term is inert.

Whether the inflation is enough is *measured*, not assumed: :func:`spread_coverage` runs toys from
the exact model and fits them with the ensemble with and without the spread term, reporting the
coverage of the profile-likelihood intervals of the POI for both.
"""

from __future__ import annotations

import math

import numpy as np

from eftflow.errors import InputError

from .params import ModelParameter

__all__ = ["SpreadTerm", "spread_coverage"]


class SpreadTerm:
    """The ensemble-spread parameter of one unbinned region (see the module docstring)."""

    def __init__(self, name: str, *, scale: float = 1.0):
        if not (math.isfinite(scale) and scale > 0):
            raise InputError(f"spread scale must be positive, got {scale}", field="spread.scale")
        self.name, self.scale = name, float(scale)

    def parameter(self) -> ModelParameter:
        return ModelParameter(
            self.name, 0.0, -5.0, 5.0, kind="spread", constraint="normal", aux=0.0, sigma=1.0
        )

    def apply(self, mean, members, gamma):
        """``mean + γ c s`` with s the member standard deviation (B, n)."""
        if members.shape[0] < 2:
            return mean
        s = members.std(0, unbiased=True)
        return mean + (self.scale * gamma)[:, None] * s


def spread_coverage(
    exact_model,
    ensemble_models: dict,
    truth,
    n_toys: int,
    rng: np.random.Generator,
    *,
    poi: str | None = None,
    levels=(0.68, 0.95),
    generator=None,
) -> dict:
    """Coverage of the POI's profile-likelihood intervals when toys come from ``exact_model``
    (or from ``generator(values, n, rng)``, e.g. an exact event generator) and are fitted with
    each model in ``ensemble_models`` (e.g. ``{"no_spread": m1, "spread": m2}``; all share the
    regions' pools and the toy data layout). Also returns each model's mean POI error and bias."""
    from scipy.stats import chi2

    from .batchfit import minimize_batched

    poi = poi or exact_model.poi[0]
    v0 = exact_model.vector(truth)
    toys = exact_model.toys(truth, n_toys, rng) if generator is None else generator(v0, n_toys, rng)
    out = {"n_toys": n_toys}
    for label, m in ensemble_models.items():
        v = m.vector(
            {k: val for k, val in zip(exact_model.names, exact_model.vector(truth)) if k in m.names}
        )
        data = toys
        if len(m.constraints) != len(exact_model.constraints):
            # extra spread parameters: append their nominal auxiliary data
            import torch

            extra = [n for n in m.constraints.names if n not in exact_model.constraints.names]
            cols = [
                toys.aux[:, exact_model.constraints.names.index(n)]
                if n in exact_model.constraints.names
                else torch.zeros(n_toys, dtype=toys.aux.dtype)
                for n in m.constraints.names
            ]
            from .model import ModelData

            data = ModelData(toys.regions, torch.stack(cols, 1))
            del extra
        fr = minimize_batched(m, data, v)
        fixed = np.zeros(len(v), bool)
        fixed[m.index(poi)] = True
        cr = minimize_batched(m, data, v, fixed=fixed)
        t = np.maximum(2 * (cr.nll - fr.nll), 0)
        out[label] = {str(lev): float(np.mean(t < chi2.ppf(lev, 1))) for lev in levels}
        out[label]["binomial_error_68"] = math.sqrt(0.68 * 0.32 / n_toys)
        j = m.index(poi)
        err = fr.errors()[:, j]
        out[label]["mean_error"] = float(np.mean(err))
        out[label]["pull_mean"] = float(np.mean((fr.values[:, j] - v[j]) / err))
        out[label]["pull_width"] = float(np.std((fr.values[:, j] - v[j]) / err, ddof=1))
    return out
