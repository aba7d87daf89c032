"""Observables and binnings for histogram Fisher information.

An observable is the name of a store observable or a safe arithmetic expression in those names
(``"pt_l1 + pt_l2"``, ``"abs(eta_j1)"`` …; :class:`eftflow.physics.expression.ArithmeticExpression`,
never ``eval``). Binnings follow MadMiner:

* ``bins`` an int and ``histrange=(lo, hi)``: ``bins`` equal bins plus an underflow and an
  overflow bin (``bins + 2`` in all);
* ``bins`` an int and no range: ``bins`` bins of equal cross section at the reference θ, from the
  weighted quantiles of the first ``n_events_dynamic_binning`` events of the partition (the store is
  shuffled, so they are a random subset; ``None``: up to 10⁶ events);
* ``bins`` a list of boundaries: the bins between them plus under/overflow (len + 1 in all).

The bin of a value v is ``searchsorted(boundaries, v)`` (left side), as in MadMiner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from eftflow.errors import ConfigError, ExpressionError

__all__ = ["observable_function", "boundaries_from_spec", "weighted_quantile", "n_bins_total"]


def observable_function(
    expression: str, observable_names: Sequence[str], *, field: str = "observable"
) -> Callable:
    """A function x (n, n_obs) → values (n,) for a name or safe expression."""
    names = list(observable_names)
    if not isinstance(expression, str) or not expression.strip():
        raise ConfigError(f"observable must be a non-empty string, got {expression!r}", field=field)
    if expression in names:
        j = names.index(expression)
        return lambda x: x[:, j]
    from eftflow.physics.expression import ArithmeticExpression

    try:
        expr = ArithmeticExpression(expression, tuple(names), source=(None, field))
    except ExpressionError as err:
        raise ConfigError(f"{err.message} (observables: {', '.join(names)})", field=field) from None

    def fn(x):
        out = expr(**{n: x[:, i] for i, n in enumerate(names)})
        return np.broadcast_to(np.asarray(out, float), (x.shape[0],))

    return fn


def weighted_quantile(values, quantiles, weights) -> np.ndarray:
    """MadMiner's weighted quantile (midpoint convention, linear interpolation)."""
    values = np.asarray(values, float)
    order = np.argsort(values)
    v = values[order]
    w = np.asarray(weights, float)[order]
    cq = np.cumsum(w) - 0.5 * w
    cq /= np.sum(w)
    return np.interp(np.asarray(quantiles, float), cq, v)


def boundaries_from_spec(bins, histrange=None, *, pilot=None, field: str = "bins") -> np.ndarray:
    """Interior bin boundaries for a binning spec (see the module docstring).

    ``pilot`` is a callable returning ``(values, weights)`` of pilot events for quantile binning.
    """
    if isinstance(bins, int | np.integer):
        if bins < 1:
            raise ConfigError(f"need at least one bin, got {bins}", field=field)
        if histrange is not None:
            try:
                lo, hi = (float(v) for v in histrange)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"histogram range must be [low, high], got {histrange!r}",
                    field=f"{field}.range",
                ) from None
            if not lo < hi:
                raise ConfigError(
                    f"histogram range needs low < high, got {histrange}", field=f"{field}.range"
                )
            return np.linspace(lo, hi, int(bins) + 1)
        if pilot is None:
            raise ConfigError("quantile binning needs pilot events", field=field)
        values, weights = pilot()
        keep = weights > 0
        if keep.sum() < 2:
            raise ConfigError(
                "too few events with positive weight to choose quantile bins", field=field
            )
        edges = weighted_quantile(values[keep], np.linspace(0.0, 1.0, int(bins) + 1), weights[keep])
        return edges[1:-1]
    edges = np.asarray(bins, float).ravel()
    if edges.size < 1 or np.any(np.diff(edges) <= 0):
        raise ConfigError(
            f"bin boundaries must be strictly increasing, got {edges.tolist()}", field=field
        )
    return edges


def n_bins_total(boundaries: np.ndarray) -> int:
    """Number of bins including under- and overflow: len(boundaries) + 1."""
    return int(np.asarray(boundaries).size + 1)
