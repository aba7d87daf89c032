"""Fisher information from weighted events: MadMiner's ``FisherInformation`` on chunked stores.

All quantities are for an integrated luminosity L in pb⁻¹ with weights in pb (MadMiner's units),
at a reference point θ (and ν, nominal by default), with parameters θ then ν when the setup has
nuisance parameters (``include_nuisance_parameters``). Each returns a
:class:`~eftflow.inference.fisher.result.FisherResult` with the covariance of the estimate
(:mod:`eftflow.inference.fisher.accumulate` explains the error model).

=================================  =========================================================
``truth_information``              I_ij = L Σ_events ∂_i w ∂_j w / w   (parton/truth level)
``rate_information``               I_ij = L ∂_iσ ∂_jσ / σ               (total rate only)
``histo_information``              Σ over bins of the rate information (1-d histogram)
``histo_information_2d``           the same for a 2-d histogram
``histogram_of_information``       truth and rate information per bin of an observable
``histogram_of_sigma_dsigma``      σ and ∇σ per bin
``full_information_from_scores``   detector level from per-event estimated scores (hook)
=================================  =========================================================

Example
-------
With a combined event store and its setup file::

    fi = FisherInformation("combined.zarr", "setup.h5")
    res = fi.truth_information([0.0, 0.0], luminosity=300_000.0)
    res.information, res.errors
"""

from __future__ import annotations

import logging

import numpy as np

from eftflow.errors import InputError
from eftflow.inference.fisher.accumulate import binned_information, chunk_moments, combine
from eftflow.inference.fisher.binning import boundaries_from_spec, n_bins_total, observable_function
from eftflow.inference.fisher.result import FisherResult
from eftflow.sampling.parallel import map_chunks
from eftflow.sampling.weights import WeightModel, load_chunk

__all__ = ["FisherInformation", "full_information_from_scores"]

log = logging.getLogger(__name__)


class FisherInformation:
    """Expected Fisher information matrices from an event store (MadMiner's ``FisherInformation``).

    Parameters
    ----------
    store, setup
        Event store (path or object) and setup (object or setup-file path).
    partition
        Events used: ``all`` (default, as MadMiner) or ``train``/``validation``/``test``.
    include_nuisance_parameters
        Include the setup's nuisance parameters (θ first, then ν).
    n_workers, scheduler
        Dask threads or a distributed client.
    """

    def __init__(
        self,
        store,
        setup,
        *,
        partition: str = "all",
        include_nuisance_parameters: bool = True,
        n_workers: int = 1,
        scheduler=None,
        setup_file=None,
    ):
        self.model = WeightModel(
            store,
            setup,
            partition=partition,
            include_nuisance=include_nuisance_parameters,
            setup_file=setup_file,
        )
        self.n_workers = n_workers
        self.scheduler = scheduler

    # --- helpers -----------------------------------------------------------------------------
    @property
    def n_parameters(self) -> int:
        return self.model.n_parameters

    @property
    def n_nuisance_parameters(self) -> int:
        return self.model.n_nuisance

    @property
    def parameter_names(self) -> list:
        return self.model.parameter_names + self.model.nuisance_names

    def _point(self, theta, nu):
        theta = self.model.check_theta(theta)
        if theta.shape[0] != 1:
            raise InputError(
                f"Fisher information is evaluated at one θ, got {theta.shape[0]}", field="theta"
            )
        nu = self.model.check_nu(nu, 1)
        m = self.model.theta_matrix(theta)[0]
        dm = self.model.dtheta_matrix(theta)[0]
        return theta[0], nu[0], m, dm

    def _check_luminosity(self, luminosity):
        if not (
            isinstance(luminosity, int | float | np.floating)
            and np.isfinite(luminosity)
            and luminosity > 0
        ):
            raise InputError(
                f"luminosity must be a positive number in pb^-1, got {luminosity!r}",
                field="luminosity",
            )
        return float(luminosity)

    def _pass(self, theta, nu, luminosity, binning, n_bins, want, include_nuisance):
        t, n, m, dm = self._point(theta, nu)
        k = self.n_parameters + (self.n_nuisance_parameters if include_nuisance else 0)
        args = [
            (self.model.ctx, i0, i1, None, m, dm, n, luminosity, binning, n_bins, want, k)
            for i0, i1 in self.model.chunk_ranges()
        ]
        res = combine(
            map_chunks(
                chunk_moments,
                args,
                n_workers=self.n_workers,
                scheduler=self.scheduler,
                label="Fisher chunks",
            )
        )
        if res["n_events"].sum() == 0:
            raise InputError(
                "no events in the partition", file=self.model.ctx.path, field="partition"
            )
        if res["n_nonpositive"]:
            log.warning(
                "%d events with zero or negative weight at θ = %s carry no truth-level information (skipped)",
                res["n_nonpositive"],
                t.tolist(),
            )
        names = self.parameter_names[:k]
        return t, res, names

    def _pilot(self, fn, theta, nu, n_events):
        t, n, m, _ = self._point(theta, nu)
        n_events = 1_000_000 if n_events is None else int(n_events)

        def pilot():
            vals, ws = [], []
            got = 0
            for i0, i1 in self.model.chunk_ranges():
                ch = load_chunk(self.model.ctx, i0, i1, None, with_x=True)
                vals.append(fn(ch.x))
                ws.append(ch.weights(m[None, :], n[None, :])[:, 0])
                got += ch.n
                if got >= n_events:
                    break
            return np.concatenate(vals)[:n_events], np.concatenate(ws)[:n_events]

        return pilot

    def _binning(self, theta, nu, specs, n_events_dynamic_binning):
        out = []
        for j, (observable, bins, histrange) in enumerate(specs):
            fn = observable_function(
                observable, self.model.store.observable_names, field=f"observable{j + 1}"
            )
            bounds = boundaries_from_spec(
                bins,
                histrange,
                pilot=self._pilot(fn, theta, nu, n_events_dynamic_binning),
                field=f"bins{j + 1}",
            )
            out.append((fn, np.asarray(bounds, float)))
        return out

    # --- MadMiner's methods ------------------------------------------------------------------
    def truth_information(
        self,
        theta,
        luminosity: float = 300000.0,
        *,
        nu=None,
        include_nuisance_parameters: bool = True,
    ) -> FisherResult:
        """Full truth-level information I = L Σ_n ∂w ∂wᵀ / w, covariance Σ_n I_n ⊗ I_n."""
        lum = self._check_luminosity(luminosity)
        inc = include_nuisance_parameters and self.n_nuisance_parameters > 0
        t, res, names = self._pass(theta, nu, lum, None, 1, ("T", "TT", "V"), inc)
        k = len(names)
        return FisherResult(
            res["T"][0],
            res["TT"][0].reshape(k, k, k, k),
            names,
            "truth",
            t.tolist(),
            lum,
            {
                "n_events": int(res["n_events"][0]),
                "n_nonpositive": res["n_nonpositive"],
                "xsec_pb": float(res["V"][0, 0]),
            },
        )

    def rate_information(
        self,
        theta,
        luminosity: float = 300000.0,
        *,
        nu=None,
        include_nuisance_parameters: bool = True,
    ) -> FisherResult:
        """Information in the total rate only, I = L ∇σ ∇σᵀ / σ."""
        lum = self._check_luminosity(luminosity)
        inc = include_nuisance_parameters and self.n_nuisance_parameters > 0
        t, res, names = self._pass(theta, nu, lum, None, 1, ("V",), inc)
        info, cov, _, _ = binned_information(res["V"], res["VV"], lum)
        return FisherResult(
            info, cov, names, "rate", t.tolist(), lum, {"xsec_pb": float(res["V"][0, 0])}
        )

    def histo_information(
        self,
        theta,
        luminosity: float,
        observable: str,
        bins,
        histrange=None,
        *,
        nu=None,
        n_events_dynamic_binning: int | None = None,
        include_nuisance_parameters: bool = True,
    ) -> FisherResult:
        """Information in a 1-d histogram of ``observable`` (binning: see :mod:`.binning`)."""
        return self._histo(theta, luminosity, [(observable, bins, histrange)], nu, n_events_dynamic_binning,
                           include_nuisance_parameters, "histo")  # fmt: skip

    def histo_information_2d(
        self,
        theta,
        luminosity: float,
        observable1: str,
        bins1,
        observable2: str,
        bins2,
        histrange1=None,
        histrange2=None,
        *,
        nu=None,
        n_events_dynamic_binning: int | None = None,
        include_nuisance_parameters: bool = True,
    ) -> FisherResult:
        """Information in a 2-d histogram (quantile bins are chosen per axis)."""
        specs = [(observable1, bins1, histrange1), (observable2, bins2, histrange2)]
        return self._histo(
            theta,
            luminosity,
            specs,
            nu,
            n_events_dynamic_binning,
            include_nuisance_parameters,
            "histo2d",
        )

    def _histo(self, theta, luminosity, specs, nu, n_dyn, include_nuisance, kind):
        lum = self._check_luminosity(luminosity)
        inc = include_nuisance and self.n_nuisance_parameters > 0
        binning = self._binning(theta, nu, specs, n_dyn)
        n_bins = int(np.prod([n_bins_total(b) for _, b in binning]))
        t, res, names = self._pass(theta, nu, lum, binning, n_bins, ("V",), inc)
        info, cov, _, n_empty = binned_information(res["V"], res["VV"], lum)
        sigma = res["V"][:, 0]
        err = np.sqrt(np.maximum(res["VV"][:, 0, 0], 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(sigma > 0, err / sigma, np.inf)
        worst = np.argsort(rel)[::-1][:5]
        log.info(
            "bins with the largest relative statistical errors: %s",
            [(int(b), float(rel[b])) for b in worst],
        )
        extra = {
            "observables": [s[0] for s in specs],
            "boundaries": [b.tolist() for _, b in binning],
            "n_bins": n_bins,
            "n_empty_bins": n_empty,
            "xsec_bins_pb": sigma.tolist(),
            "xsec_bins_error_pb": err.tolist(),
            "n_events_bins": res["n_events"].tolist(),
        }
        return FisherResult(info, cov, names, kind, t.tolist(), lum, extra)

    def histogram_of_information(
        self,
        theta,
        observable: str,
        nbins,
        histrange=None,
        luminosity: float = 300000.0,
        *,
        nu=None,
        n_events_dynamic_binning: int | None = None,
    ) -> tuple:
        """Truth and rate information in each bin of ``observable`` (the distribution of information).

        Returns ``(bin_boundaries, sigma_bins, fisher_info_rate_bins, fisher_info_full_bins)`` like
        MadMiner (physics parameters only), the bins including under- and overflow.
        """
        lum = self._check_luminosity(luminosity)
        binning = self._binning(
            theta, nu, [(observable, nbins, histrange)], n_events_dynamic_binning
        )
        n_bins = n_bins_total(binning[0][1])
        _, res, _ = self._pass(theta, nu, lum, binning, n_bins, ("V", "T"), False)
        _, _, rate_bins, _ = binned_information(res["V"], res["VV"], lum, covariance=False)
        return binning[0][1], res["V"][:, 0], rate_bins, res["T"]

    def histogram_of_sigma_dsigma(
        self, theta, observable: str, nbins, histrange=None, *, nu=None
    ) -> tuple:
        """σ and ∇σ per bin: ``(bin_boundaries, sigma_bins (n_bins,), dsigma_bins (n_params, n_bins))``."""
        binning = self._binning(theta, nu, [(observable, nbins, histrange)], None)
        n_bins = n_bins_total(binning[0][1])
        _, res, _ = self._pass(theta, nu, 1.0, binning, n_bins, ("V",), False)
        return binning[0][1], res["V"][:, 0], res["V"][:, 1:].T

    def nuisance_constraint_information(self) -> np.ndarray:
        """diag(0 × n_parameters, 1 × n_nuisance)."""
        from eftflow.inference.fisher.manipulate import nuisance_constraint_information

        return nuisance_constraint_information(self.n_parameters, self.n_nuisance_parameters)

    # MadMiner's long names
    calculate_fisher_information_full_truth = truth_information
    calculate_fisher_information_rate = rate_information
    calculate_fisher_information_hist1d = histo_information
    calculate_fisher_information_hist2d = histo_information_2d
    histogram_of_fisher_information = histogram_of_information
    calculate_fisher_information_nuisance_constraints = nuisance_constraint_information


def full_information_from_scores(
    scores,
    luminosity: float,
    xsec: float,
    *,
    weights=None,
    parameter_names=None,
    theta=None,
) -> FisherResult:
    """Detector-level information from per-event estimated scores t̂(x|θ) (the SALLY hook).

    With an unweighted sample x ~ p(x|θ): I = L σ(θ) E[t̂ t̂ᵀ], covariance from the sample
    covariance of t̂ t̂ᵀ / N. With ``weights`` (weighted events in pb at θ):
    I = L Σ_n w_n t̂_n t̂_nᵀ (σ is then Σ w and ``xsec`` is ignored), covariance Σ_n (L w t̂ t̂ᵀ)⊗(...).
    Add :meth:`FisherInformation.rate_information` for the rate information (MadMiner's
    ``include_xsec_info``).
    """
    t = np.atleast_2d(np.asarray(scores, float))
    n, k = t.shape
    if n == 0:
        raise InputError("no events with scores", field="scores")
    outer = (t[:, :, None] * t[:, None, :]).reshape(n, k * k)
    if weights is None:
        per = float(luminosity) * float(xsec) * outer
        info = per.mean(axis=0)
        cov = (
            np.cov(per, rowvar=False, ddof=1).reshape(k * k, k * k) / n
            if n > 1
            else np.zeros((k * k, k * k))
        )
    else:
        w = np.asarray(weights, float).reshape(n)
        per = float(luminosity) * w[:, None] * outer
        info = per.sum(axis=0)
        cov = per.T @ per
    names = (
        list(parameter_names) if parameter_names is not None else [f"theta_{i}" for i in range(k)]
    )
    return FisherResult(
        info.reshape(k, k),
        cov.reshape(k, k, k, k),
        names,
        "detector",
        theta,
        float(luminosity),
        {"n_events": n},
    )
