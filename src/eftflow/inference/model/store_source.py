"""Unbinned regions from the pipeline's own outputs: pool events from a combined event store and
expected yields L·σ(θ) from the setup's morphing.

* :func:`pool_from_store` — the observables of one partition of a combined event store
  (``eftflow combine-events``) as the reference pool of an unbinned region, with the events'
  weights at a reference point θ_ref (a benchmark name or parameter values) from the setup's
  morphing as pool weights: the pool then represents p(x|θ_ref), the denominator of a ratio
  ensemble trained with ``theta1 = θ_ref``.
* :class:`MorphingRate` — ν(θ) = L·σ(θ) with σ(θ) = Σ_b w_b(θ) σ_b, the morphing weights w_b(θ)
  of the setup times the per-benchmark cross sections σ_b of the store (Σ of the event weights at
  each benchmark). Written as Σ_c s_c Π_p θ_p^{k_cp} over the morphing components (s = M σ), it
  is a polynomial in θ (quadratic for dimension-six operators at O(1/Λ⁴)) evaluated in torch, so
  the statistical model differentiates through it.

In a model spec (:mod:`eftflow.inference.model.spec`)::

    unbinned:
      - name: sr
        store: events.zarr
        partition: test                                # default: all
        observables: [m_ll, pt_ll, cos_theta]          # default: every observable of the store
        max_events: 5000                               # default: all events of the partition
        pool_weights: {setup: setup.h5, theta: sm}     # default: equal weights
        processes:
          - name: dy
            ensemble: ratio_ensemble/
            parameters: [W, Y]
            rate: {setup: setup.h5, store: events.zarr, luminosity: 100000.0}

Example
-------
>>> import numpy as np, torch
>>> rate = MorphingRate(np.array([[0], [1], [2]]), np.array([10.0, 2.0, 5.0]), 100.0, ["W"])
>>> rate(torch.tensor([[0.0], [1.0]], dtype=torch.float64)).tolist()
[1000.0, 1700.0]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = ["pool_from_store", "MorphingRate", "reference_theta", "spec_pool", "spec_rate"]

log = logging.getLogger(__name__)


def reference_theta(setup, theta, *, file=None, field: str = "theta") -> np.ndarray:
    """θ as a vector in the setup's parameter order from a benchmark name, a mapping
    ``{parameter: value}`` (missing parameters 0) or a sequence."""
    names = list(setup.parameter_names)
    if isinstance(theta, str):
        bench = {b.name: b for b in setup.physics_benchmarks()}
        if theta not in bench:
            raise InputError(
                f"unknown benchmark {theta!r}; the setup has {', '.join(bench)}",
                file=file,
                field=field,
            )
        return np.asarray(bench[theta].vector(names), float)
    if isinstance(theta, dict):
        unknown = sorted(set(theta) - set(names))
        if unknown:
            raise InputError(
                f"unknown parameter {unknown[0]!r}; the setup has {', '.join(names)}",
                file=file,
                field=f"{field}.{unknown[0]}",
            )
        return np.array([float(theta.get(n, 0.0)) for n in names])
    try:
        vec = np.asarray(theta, float).reshape(-1)
    except (TypeError, ValueError):
        vec = np.zeros(0)
    if vec.shape != (len(names),):
        raise InputError(
            f"θ must be a benchmark name, a mapping or {len(names)} numbers", file=file, field=field
        )
    return vec


def _setup(path, file, field):
    from eftflow.setup import EFTSetup

    if not path.exists():
        raise InputError(f"setup file {str(path)!r} does not exist", file=file, field=field)
    return EFTSetup.from_file(path)


def pool_from_store(
    store,
    *,
    partition: str = "all",
    observables: Sequence[str] | None = None,
    max_events: int | None = None,
    setup=None,
    theta="sm",
    file=None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(x (n, d), pool weights (n,) or ``None``) of a combined store's partition.

    Parameters
    ----------
    store
        Path of the event store.
    partition
        ``train``, ``validation``, ``test`` or ``all``.
    observables
        Names of the columns to take, in the order the estimators expect (default: all).
    max_events
        At most this many events (the first ones of the partition; the store is shuffled).
    setup
        Path of the setup file; with it the pool weights are the events' weights at ``theta``
        (they must be non-negative), without it ``None`` (equal weights).
    theta
        Reference point: benchmark name, ``{parameter: value}`` or a sequence.
    """
    from pathlib import Path

    from eftflow.sampling.weights import WeightModel, load_chunk, open_store

    path = Path(store)
    if not path.exists():
        raise InputError(f"event store {str(path)!r} does not exist", file=file, field="store")
    es = open_store(str(path))
    names = list(es.observable_names)
    cols = list(range(len(names)))
    if observables is not None:
        missing = [o for o in observables if o not in names]
        if missing:
            raise InputError(
                f"the store has no observable {missing[0]!r} (it has {', '.join(names)})",
                file=file,
                field="observables",
            )
        cols = [names.index(o) for o in observables]
    st = None if setup is None else _setup(Path(setup), file, "pool_weights.setup")
    try:
        wm = WeightModel(es, st, partition=partition, include_nuisance=False) if st else None
        if wm is None:
            from eftflow.sampling.partitions import partition_bounds

            start, stop, _ = partition_bounds(es, partition)
        else:
            start, stop = wm.start, wm.stop
    except InputError as err:
        raise InputError(f"{str(path)!r}: {err.message}", file=file, field="partition") from None
    if max_events is not None:
        stop = min(stop, start + int(max_events))
    if stop <= start:
        raise InputError(
            f"partition {partition!r} of {str(path)!r} has no events", file=file, field="partition"
        )
    if wm is None:
        x = es.read("observables", start, stop)[:, cols]
        return x, None
    m = wm.theta_matrix(reference_theta(st, theta, file=file, field="pool_weights.theta")[None])
    ch = load_chunk(wm.ctx, start, stop, None, with_x=True)
    w = ch.weights(m)[:, 0]
    if np.any(w < 0) or not w.sum() > 0:
        raise InputError(
            f"{int(np.sum(w < 0))} events have negative weights at the reference point: they "
            "cannot form the pool of a ratio model",
            file=file,
            field="pool_weights",
        )
    log.info("pool: %d events of partition %s of %s", len(w), partition, path)
    return ch.x[:, cols], w


class MorphingRate:
    """ν(θ) = L · Σ_c s_c Π_p θ_p^{k_cp}: a torch callable ``rate(pars (B, n_p)) -> (B,)``.

    Parameters
    ----------
    components
        (n_components, n_p) integer powers of the setup's morphing.
    coefficients
        s_c in pb: morphing matrix (n_components, n_benchmarks) @ per-benchmark cross sections.
    luminosity
        Integrated luminosity in pb⁻¹.
    parameters
        Names of the n_p parameters (the setup's order), fed in this order.
    """

    def __init__(self, components, coefficients, luminosity: float, parameters: Sequence[str]):
        self.components = np.asarray(components, np.int64)
        self.coefficients = np.asarray(coefficients, float)
        self.luminosity = float(luminosity)
        self.parameters = tuple(parameters)
        if self.components.shape != (len(self.coefficients), len(self.parameters)):
            raise InputError(
                f"{self.components.shape} morphing components for {len(self.coefficients)} "
                f"coefficients and {len(self.parameters)} parameters",
                field="rate",
            )
        if not self.luminosity > 0:
            raise InputError("the luminosity must be positive", field="rate.luminosity")

    @classmethod
    def from_store(
        cls, setup, store, luminosity: float, *, partition: str = "all", file=None
    ) -> MorphingRate:
        """Per-benchmark cross sections Σ_i W_ib of ``store`` (partition-scaled) and the
        morphing of the setup file ``setup``."""
        from pathlib import Path

        from eftflow.sampling.weights import WeightModel, load_chunk

        st = _setup(Path(setup), file, "rate.setup")
        if not Path(store).exists():
            raise InputError(
                f"event store {str(store)!r} does not exist", file=file, field="rate.store"
            )
        try:
            wm = WeightModel(str(store), st, partition=partition, include_nuisance=False)
            morpher = st.morpher
        except InputError as err:
            raise InputError(f"rate: {err.message}", file=file, field="rate") from None
        sigma = np.zeros(wm.n_benchmarks)
        for i0, i1 in wm.chunk_ranges():
            sigma += load_chunk(wm.ctx, i0, i1, None).W.sum(axis=0)
        coef = np.asarray(morpher.matrix) @ sigma
        log.info("rate: σ per benchmark %s pb, L = %g /pb", np.round(sigma, 6), luminosity)
        return cls(morpher.components, coef, luminosity, st.parameter_names)

    def cross_section(self, theta) -> np.ndarray:
        """σ(θ) in pb for θ of shape (n, n_p)."""
        from eftflow.physics.morphing import component_values

        return component_values(np.atleast_2d(theta), self.components) @ self.coefficients

    def __call__(self, pars):
        import torch

        s = torch.as_tensor(self.coefficients, dtype=pars.dtype, device=pars.device)
        ones = torch.ones(pars.shape[0], dtype=pars.dtype, device=pars.device)
        cols = []
        for powers in self.components:  # products, not pars ** k: finite gradients at θ = 0
            term = ones
            for p, k in enumerate(powers):
                for _ in range(int(k)):
                    term = term * pars[:, p]
            cols.append(term)
        return self.luminosity * (torch.stack(cols, 1) @ s)


# -- spec entries (eftflow.inference.model.spec) ------------------------------------------------
_RATE_KEYS = {"setup", "store", "luminosity", "partition"}


def spec_rate(base: Path, entry, file, where: str):
    """(rate, rate parameters) of a spec's process entry ``rate``: a number, or a mapping
    ``{setup, store, luminosity[, partition]}`` giving :class:`MorphingRate`; errors name the
    spec ``file`` and the field ``where``."""
    if not isinstance(entry, dict):
        try:
            return float(entry), ()
        except (TypeError, ValueError):
            raise ConfigError(
                f"{entry!r} is neither a number nor a mapping", file=file, field=where
            ) from None
    unknown = sorted(set(entry) - _RATE_KEYS)
    missing = sorted({"setup", "store", "luminosity"} - set(entry))
    if unknown or missing:
        raise ConfigError(
            f"a rate mapping takes setup, store, luminosity and partition "
            f"({'unknown ' + repr(unknown[0]) if unknown else 'missing ' + repr(missing[0])})",
            file=file,
            field=where,
        )
    try:
        lum = float(entry["luminosity"])
    except (TypeError, ValueError):
        raise ConfigError(
            "luminosity must be a number", file=file, field=f"{where}.luminosity"
        ) from None
    try:
        rate = MorphingRate.from_store(
            base / str(entry["setup"]),
            base / str(entry["store"]),
            lum,
            partition=str(entry.get("partition", "all")),
            file=file,
        )
    except InputError as err:
        if err.file is not None and err.field and err.field.startswith("rate"):
            raise InputError(err.message, file=file, field=where + err.field[4:]) from None
        raise InputError(err.message, file=file, field=where) from None
    return rate, rate.parameters


def spec_pool(base: Path, u: dict, file, where: str):
    """(pool events, pool weights or None) of a spec's unbinned region entry ``u`` with
    ``store`` (keys ``partition``, ``observables``, ``max_events``, ``pool_weights``)."""
    pw = u.get("pool_weights")
    if pw is not None and (
        not isinstance(pw, dict) or "setup" not in pw or set(pw) - {"setup", "theta"}
    ):
        raise ConfigError(
            "pool_weights is {setup: <setup file>, theta: <benchmark or {parameter: value}>}",
            file=file,
            field=f"{where}.pool_weights",
        )
    try:
        return pool_from_store(
            base / str(u["store"]),
            partition=str(u.get("partition", "all")),
            observables=u.get("observables"),
            max_events=u.get("max_events"),
            setup=None if pw is None else base / str(pw["setup"]),
            theta=(pw or {}).get("theta", "sm"),
            file=file,
        )
    except InputError as err:
        raise InputError(err.message, file=file, field=f"{where}.{err.field}") from None
