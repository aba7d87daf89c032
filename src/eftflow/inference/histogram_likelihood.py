"""The binned Poisson likelihood of one observable from the combined event store.

One observable (a store name or a safe expression) is histogrammed per benchmark while streaming
over a partition (chunk by chunk, Dask via :func:`eftflow.sampling.parallel.map_chunks`); the
weights are rescaled to the full cross section by the partition's fraction. The expected counts at
θ are ``λ_i(θ) = L Σ_b m_b(θ) σ_ib`` with the setup's morphing weights ``m(θ)``.

Systematics: when the store has nuisance weights, every nuisance parameter they cover (``norm``
and ``scale`` systematics, :mod:`eftflow.generate.systematics`) becomes a per-bin factor of a
:class:`~eftflow.inference.asimov.BinnedPoissonModel`, ``exp(A_i ν + B_i ν²)`` with
``A_i = ½ ln(σ⁺_i/σ⁻_i)``, ``B_i = ½ ln(σ⁺_i σ⁻_i / σ⁰_i²)`` from the bin's cross sections at
θ_ref with the nuisance at +1, −1 and 0 (one-sided: ``A_i = ln(σ⁺_i/σ⁰_i)``, ``B_i = 0``), exact at
ν = ±1: MadMiner's per-event interpolation applied to bin sums. A norm systematic gives the same
``(1 + δ)^ν`` in every bin. Without nuisance weights in the store the setup's ``norm``
systematics are used directly. Used by :mod:`eftflow.inference.pipeline_limits`.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = ["HistogramLikelihood", "histogram_likelihood", "setup_systematics"]

log = logging.getLogger(__name__)


def _histogram_chunk(ctx, i0, i1, observable, observable_names, boundaries, m_ref=None):
    """Weighted histograms of one chunk: (n_bins, n_benchmarks + 2 n_nuisance).

    The first columns are per benchmark; with nuisance parameters in ``ctx`` (and the morphing
    weights ``m_ref`` of θ_ref), two more per nuisance: the histogram at θ_ref with that nuisance
    at +1 and at −1 (the others at 0).
    """
    from eftflow.inference.fisher.binning import observable_function
    from eftflow.sampling.weights import load_chunk

    fn = observable_function(observable, observable_names)
    ch = load_chunk(ctx, i0, i1, None, with_x=True)
    n_bins = len(boundaries) + 1
    n_b, n_nu = ch.W.shape[1], ch.a.shape[0]
    out = np.zeros((n_bins, n_b + 2 * n_nu))
    if ch.n == 0:
        return out
    v = np.asarray(fn(ch.x), float)
    idx = np.searchsorted(boundaries, v)
    for b in range(n_b):
        out[:, b] = np.bincount(idx, weights=ch.W[:, b], minlength=n_bins)
    if n_nu:
        w0 = ch.W @ np.asarray(m_ref, float)
        for k in range(n_nu):
            for j, sign in enumerate((1.0, -1.0)):
                wk = w0 * np.exp(sign * ch.a[k] + ch.b[k])
                out[:, n_b + 2 * k + j] = np.bincount(idx, weights=wk, minlength=n_bins)
    return out


def _shape_effects(s0, s_plus, s_minus, two_sided: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin δ (``ln(1 + δ) = A``) and quadratic ``B`` from bin sums at ν = 0, +1, −1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (s0 > 0) & (s_plus > 0) & ((s_minus > 0) | (not two_sided))
        if two_sided:
            a = np.where(ok, 0.5 * np.log(s_plus / s_minus), 0.0)
            b = np.where(ok, 0.5 * np.log(s_plus * s_minus / s0**2), 0.0)
        else:
            a = np.where(ok, np.log(s_plus / s0), 0.0)
            b = np.zeros_like(a)
    return np.expm1(a), b


class HistogramLikelihood:
    """Per-benchmark histograms of an observable and the binned Poisson model they define.

    Attributes
    ----------
    boundaries
        Interior bin boundaries (bins include under- and overflow).
    sigma_bins
        Cross section per bin and benchmark, (n_bins, n_benchmarks), pb.
    luminosity
        pb⁻¹.
    model
        :class:`~eftflow.inference.asimov.BinnedPoissonModel` with one sample ``signal`` and the
        norm systematics as nuisances.
    """

    def __init__(self, weight_model, boundaries, sigma_bins, luminosity, systematics):
        from eftflow.inference.asimov import BinnedPoissonModel

        self.weight_model = weight_model
        self.boundaries = np.asarray(boundaries, float)
        self.sigma_bins = np.asarray(sigma_bins, float)
        self.luminosity = float(luminosity)
        self.systematics = list(systematics)
        self.model = BinnedPoissonModel(
            self.yields,
            n_bins=self.sigma_bins.shape[0],
            samples=["signal"],
            systematics=self.systematics,
        )

    @property
    def parameter_names(self) -> list[str]:
        return list(self.weight_model.parameter_names)

    def yields(self, theta) -> np.ndarray:
        """Expected events per bin at θ: ``L Σ_b m_b(θ) σ_ib`` (n_bins,)."""
        m = self.weight_model.theta_matrix(np.atleast_2d(theta))[0]
        return self.luminosity * (self.sigma_bins @ m)


def histogram_likelihood(
    store,
    setup,
    *,
    observable: str = "m_ll",
    bins=10,
    histrange=None,
    partition: str = "test",
    luminosity: float,
    systematics: bool = True,
    theta_ref=None,
    n_workers: int = 1,
    scheduler=None,
    config_file: str | None = None,
) -> HistogramLikelihood:
    """Stream over ``partition`` of ``store`` and build the binned Poisson likelihood.

    ``bins``/``histrange`` follow :mod:`eftflow.inference.fisher.binning` (an int without range:
    bins of equal cross section at ``theta_ref``). Bad inputs raise :class:`ConfigError` naming
    ``config_file`` and the ``limits.histogram.*`` key.
    """
    from eftflow.inference.asimov import Systematic
    from eftflow.inference.fisher.binning import boundaries_from_spec, observable_function
    from eftflow.sampling.parallel import map_chunks
    from eftflow.sampling.weights import WeightModel, load_chunk

    where = "limits.histogram"
    if not (isinstance(luminosity, int | float) and math.isfinite(luminosity) and luminosity > 0):
        raise ConfigError(
            f"luminosity must be a positive number in pb^-1, got {luminosity!r}",
            file=config_file,
            field=f"{where}.luminosity",
        )
    wm = WeightModel(store, setup, partition=partition, include_nuisance=bool(systematics))
    names = list(wm.store.observable_names)
    if isinstance(observable, str) and observable.isidentifier() and observable not in names:
        raise ConfigError(
            f"unknown observable {observable!r}; the store has {', '.join(names)}",
            file=config_file,
            field=f"{where}.observable",
        )
    try:
        fn = observable_function(observable, names, field=f"{where}.observable")
    except ConfigError as err:
        raise ConfigError(err.message, file=config_file, field=err.field) from None
    theta0 = np.zeros(wm.n_parameters) if theta_ref is None else np.asarray(theta_ref, float)
    m0 = wm.theta_matrix(theta0[None, :])

    def pilot(n_events=1_000_000):
        vals, ws, got = [], [], 0
        for i0, i1 in wm.chunk_ranges():
            ch = load_chunk(wm.ctx, i0, i1, None, with_x=True)
            vals.append(fn(ch.x))
            ws.append(ch.weights(m0)[:, 0])
            got += ch.n
            if got >= n_events:
                break
        if not vals:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(vals), np.concatenate(ws)

    if isinstance(bins, list) and any(isinstance(b, bool) for b in bins):
        raise ConfigError("bin boundaries must be numbers", file=config_file, field=f"{where}.bins")
    try:
        boundaries = boundaries_from_spec(bins, histrange, pilot=pilot, field=f"{where}.bins")
    except ConfigError as err:
        raise ConfigError(err.message, file=config_file, field=err.field) from None
    args = [(wm.ctx, i0, i1, observable, names, boundaries, m0[0]) for i0, i1 in wm.chunk_ranges()]
    if not args:
        raise InputError(
            f"no events in the {partition} partition", file=str(wm.store.path), field="partition"
        )
    parts = map_chunks(
        _histogram_chunk, args, n_workers=n_workers, scheduler=scheduler, label="histogram chunks"
    )
    hist = np.sum(parts, axis=0)
    n_b = hist.shape[1] - 2 * wm.n_nuisance
    sigma_bins = hist[:, :n_b]
    systs = []
    if systematics and wm.n_nuisance:  # per-bin effects from the store's nuisance weights
        s0 = sigma_bins @ m0[0]
        for k, name in enumerate(wm.nuisance_names):
            two_sided = wm.ctx.nu_neg[k] is not None
            delta, quad = _shape_effects(
                s0, hist[:, n_b + 2 * k], hist[:, n_b + 2 * k + 1], two_sided
            )
            systs.append(
                Systematic(name, {"signal": delta}, {"signal": quad} if two_sided else None)
            )
    elif systematics:
        for s in setup_systematics(wm.setup):
            systs.append(Systematic(s[0], {"signal": s[1]}))
    log.info(
        "histogram of %s: %d bins, σ(θ_ref) = %.6g pb, nuisances: %s",
        observable,
        sigma_bins.shape[0],
        float(sigma_bins.sum(axis=0) @ m0[0]),
        ", ".join(s.name for s in systs) or "none",
    )
    return HistogramLikelihood(wm, boundaries, sigma_bins, luminosity, systs)


def setup_systematics(setup) -> list[tuple[str, float]]:
    """``[(nuisance name, relative effect δ)]`` of the setup's ``norm`` systematics."""
    out = []
    for nu in setup.nuisance_parameters.values():
        syst = setup.systematics.get(nu.systematic)
        if syst is not None and syst.type == "norm":
            out.append((nu.name, float(syst.value) - 1.0))
    return out
