"""Likelihood builders for limits and Asimov data sets.

A *model* gives the main-measurement log-likelihood ``loglik_main(data, theta, nu)`` (no constraint
terms), the expected main data ``expected_main(theta, nu)`` (what Asimov data are made of) and a
:class:`GaussianNuisances` object for the nuisance parameters ``nu``: their Gaussian constraint
``N(aux | nu, Sigma)`` when profiling, or their prior ``N(nu | aux, Sigma)`` when marginalising.
``data`` is a :class:`Data` pair ``(main, aux)``; ``aux`` are the auxiliary measurements of the
nuisances (0 for standardised ones).

Ready-made models:

* :class:`BinnedPoissonModel`: ``n_b ~ Poisson(lambda_b(theta, nu))`` with
  ``lambda_b = sum_s y_sb(theta) * prod_k (1 + delta_ksb) ** nu_k``: sample yields as any function
  of theta (a morphing, a histogram per grid point, ``mu * s``) and log-normal-style systematics
  ``delta`` (relative effect at ``nu = +1``) per sample and bin, ``nu ~ N(0, 1)``. This is pyhf's
  ``normsys`` with exponential interpolation (``code1``).
* :func:`counting_model`: one bin, signal ``mu * s`` (or a function of theta) plus background,
  optional relative uncertainties on both.
* :class:`GaussianModel`: ``x ~ N(mean(theta, nu), C)``.

The Poisson term is the continuous one, ``n ln lambda - lambda - lnGamma(n + 1)``, so Asimov data
(non-integer counts) work.

Example
-------
>>> m = counting_model(signal=5.0, background=10.0, background_uncertainty=0.1)
>>> d = m.make_data([12])
>>> asimov = asimov_data(m, d, theta=0.0)
>>> round(float(asimov.main[0]), 3)  # b with the background nuisance profiled on the data
10.168
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "Data",
    "GaussianNuisances",
    "Systematic",
    "BinnedPoissonModel",
    "GaussianModel",
    "counting_model",
    "asimov_data",
]


@dataclass
class Data:
    """Observed (or Asimov) data: ``main`` measurement and ``aux`` nuisance measurements."""

    main: np.ndarray
    aux: np.ndarray

    def __post_init__(self) -> None:
        self.main = np.atleast_1d(np.asarray(self.main, dtype=float))
        self.aux = np.atleast_1d(np.asarray(self.aux, dtype=float))


class GaussianNuisances:
    """Gaussian constraints of the nuisance parameters (names, widths, optional correlation).

    Parameters
    ----------
    names
        Nuisance names.
    sigma
        Widths (default 1: standardised nuisances).
    correlation
        Optional correlation matrix.
    bounds
        Optional ``(lower, upper)`` per nuisance for profiling (default ``+-10 sigma``).
    """

    def __init__(
        self,
        names: Sequence[str],
        sigma: Sequence[float] | float = 1.0,
        correlation: np.ndarray | None = None,
        bounds: Sequence[tuple[float, float]] | None = None,
    ):
        self.names = [str(n) for n in names]
        n = len(self.names)
        if len(set(self.names)) != n:
            raise InputError("duplicate nuisance names", field="nuisances")
        sig = np.broadcast_to(np.asarray(sigma, dtype=float), (n,)).copy()
        if np.any(~np.isfinite(sig)) or np.any(sig <= 0):
            raise InputError("nuisance widths must be positive and finite", field="nuisances.sigma")
        self.sigma = sig
        corr = np.eye(n) if correlation is None else np.asarray(correlation, dtype=float)
        if corr.shape != (n, n) or not np.allclose(corr, corr.T):
            raise InputError(
                f"correlation must be a symmetric {n}x{n} matrix", field="nuisances.correlation"
            )
        self.cov = corr * np.outer(sig, sig)
        try:
            self.chol = np.linalg.cholesky(self.cov) if n else np.zeros((0, 0))
        except np.linalg.LinAlgError:
            raise InputError(
                "nuisance covariance is not positive definite", field="nuisances.correlation"
            ) from None
        self.inv = np.linalg.inv(self.cov) if n else np.zeros((0, 0))
        if bounds is None:
            self.bounds = [(-10.0 * s, 10.0 * s) for s in sig]
        else:
            self.bounds = [(float(a), float(b)) for a, b in bounds]
            if len(self.bounds) != n:
                raise InputError(f"expected {n} bounds", field="nuisances.bounds")

    def __len__(self) -> int:
        return len(self.names)

    def logpdf(self, nu: np.ndarray, aux: np.ndarray) -> float:
        """``-0.5 (nu - aux)^T C^-1 (nu - aux)`` (normalisation dropped)."""
        r = np.asarray(nu, dtype=float) - aux
        return -0.5 * float(r @ self.inv @ r)

    def grad_logpdf(self, nu: np.ndarray, aux: np.ndarray) -> np.ndarray:
        return -(self.inv @ (np.asarray(nu, dtype=float) - aux))

    def bounds_around(self, aux: np.ndarray) -> list[tuple[float, float]]:
        """Profiling bounds shifted to the auxiliary values."""
        return [(a + lo, a + hi) for a, (lo, hi) in zip(aux, self.bounds)]


@dataclass
class Systematic:
    """A normalisation-type systematic: relative effect ``delta`` at ``nu = +1`` per sample.

    ``effects`` maps a sample name to a number (all bins) or a list (per bin); the rate scales
    as ``(1 + delta) ** nu`` (always positive). ``quadratic`` (optional, same layout) adds
    ``exp(q nu²)``: with ``ln(1 + delta) = ½ ln(r⁺/r⁻)`` and ``q = ½ ln(r⁺ r⁻)`` for the
    relative rates r± at nu = ±1 the factor is exact at both (MadMiner's exponential-quadratic
    interpolation, :mod:`eftflow.physics.nuisance`).
    """

    name: str
    effects: Mapping[str, float | Sequence[float]]
    quadratic: Mapping[str, float | Sequence[float]] | None = None


def _gammaln(x):
    from scipy.special import gammaln

    return gammaln(x)


class BinnedPoissonModel:
    """Binned Poisson likelihood with per-bin expected counts as a function of theta and nu.

    Parameters
    ----------
    yields
        ``yields(theta) -> (n_samples, n_bins)`` expected counts per sample (or ``(n_bins,)``
        for one sample). ``theta`` is a 1D array.
    samples
        Sample names (rows of ``yields``); default ``["sample0", ...]``.
    systematics
        :class:`Systematic` effects; each adds a standardised nuisance ``N(0, 1)``.
    n_bins
        Number of bins (checked against ``yields``).
    """

    def __init__(
        self,
        yields: Callable[[np.ndarray], np.ndarray],
        *,
        n_bins: int,
        samples: Sequence[str] | None = None,
        systematics: Sequence[Systematic] = (),
    ):
        if not callable(yields):
            raise InputError("yields must be callable", field="yields")
        self._yields = yields
        self.n_bins = int(n_bins)
        self.samples = list(samples) if samples is not None else ["sample0"]
        ns = len(self.samples)
        lnf = np.zeros((len(systematics), ns, self.n_bins))
        quad = np.zeros_like(lnf)
        for k, sys in enumerate(systematics):
            for sample, eff in sys.effects.items():
                if sample not in self.samples:
                    raise InputError(
                        f"unknown sample {sample!r}; known: {', '.join(self.samples)}",
                        field=f"systematics.{sys.name}",
                    )
                d = np.broadcast_to(np.asarray(eff, dtype=float), (self.n_bins,))
                if np.any(~np.isfinite(d)) or np.any(d <= -1):
                    raise InputError(
                        "relative effects must be finite and > -1", field=f"systematics.{sys.name}"
                    )
                lnf[k, self.samples.index(sample)] = np.log1p(d)
            for sample, q in (sys.quadratic or {}).items():
                if sample not in self.samples:
                    raise InputError(
                        f"unknown sample {sample!r}; known: {', '.join(self.samples)}",
                        field=f"systematics.{sys.name}",
                    )
                q = np.broadcast_to(np.asarray(q, dtype=float), (self.n_bins,))
                if np.any(~np.isfinite(q)):
                    raise InputError(
                        "quadratic effects must be finite", field=f"systematics.{sys.name}"
                    )
                quad[k, self.samples.index(sample)] = q
        self._lnf = lnf
        self._quad = quad if np.any(quad) else None
        self.nuisances = GaussianNuisances([s.name for s in systematics])

    def yields(self, theta) -> np.ndarray:
        y = np.asarray(self._yields(np.atleast_1d(np.asarray(theta, dtype=float))), dtype=float)
        y = y.reshape(len(self.samples), self.n_bins)
        return y

    def _factors(self, nu) -> np.ndarray:
        nu = np.asarray(nu, dtype=float)
        if nu.size == 0:
            return np.ones((len(self.samples), self.n_bins))
        expo = np.tensordot(nu, self._lnf, axes=(0, 0))
        if self._quad is not None:
            expo = expo + np.tensordot(nu * nu, self._quad, axes=(0, 0))
        return np.exp(expo)

    def _dlog(self, nu) -> np.ndarray:
        """∂ ln(factor) / ∂ν_k per sample and bin: (n_nu, n_samples, n_bins)."""
        if self._quad is None:
            return self._lnf
        nu = np.asarray(nu, dtype=float).reshape(-1, 1, 1)
        return self._lnf + 2.0 * nu * self._quad

    def expected_main(self, theta, nu) -> np.ndarray:
        """Expected counts per bin."""
        return (self.yields(theta) * self._factors(nu)).sum(axis=0)

    def make_data(self, counts: Sequence[float]) -> Data:
        """Observed counts with nominal auxiliary data (zeros)."""
        counts = np.atleast_1d(np.asarray(counts, dtype=float))
        if counts.shape != (self.n_bins,) or np.any(counts < 0) or np.any(~np.isfinite(counts)):
            raise InputError(
                f"expected {self.n_bins} non-negative counts, got {counts.tolist()}",
                field="observed",
            )
        return Data(counts, np.zeros(len(self.nuisances)))

    def loglik_main(self, data: Data, theta, nu) -> float:
        lam = self.expected_main(theta, nu)
        if np.any(lam <= 0):
            if np.all((lam > 0) | (data.main == 0)) and np.all(lam >= 0):
                lam = np.where(lam > 0, lam, 1.0)  # n = 0, lam = 0 contributes 0
            else:
                return -math.inf
        n = data.main
        from scipy.special import xlogy

        return float(np.sum(xlogy(n, lam) - lam - _gammaln(n + 1.0)))

    def grad_nu_main(self, data: Data, theta, nu) -> np.ndarray:
        """Gradient of :meth:`loglik_main` with respect to ``nu``."""
        ysb = self.yields(theta) * self._factors(nu)
        lam = ysb.sum(axis=0)
        dlam = np.einsum("sb,ksb->kb", ysb, self._dlog(nu))
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(lam > 0, data.main / lam, 0.0) - 1.0
        return dlam @ w

    def hess_nu_main(self, data: Data, theta, nu) -> np.ndarray:
        """Hessian of :meth:`loglik_main` with respect to ``nu``."""
        ysb = self.yields(theta) * self._factors(nu)
        lam = ysb.sum(axis=0)
        g = self._dlog(nu)
        dlam = np.einsum("sb,ksb->kb", ysb, g)
        d2lam = np.einsum("sb,ksb,lsb->klb", ysb, g, g)
        if self._quad is not None:
            k = np.arange(g.shape[0])
            d2lam[k, k] += 2.0 * np.einsum("sb,ksb->kb", ysb, self._quad)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(lam > 0, data.main / lam, 0.0)
            r2 = np.where(lam > 0, data.main / lam**2, 0.0)
        return d2lam @ (ratio - 1.0) - (dlam * r2) @ dlam.T


class GaussianModel:
    """``x ~ N(mean(theta, nu), covariance)`` with Gaussian-constrained nuisances."""

    def __init__(
        self,
        mean: Callable[[np.ndarray, np.ndarray], np.ndarray],
        covariance,
        nuisances: GaussianNuisances | None = None,
    ):
        self._mean = mean
        cov = np.atleast_2d(np.asarray(covariance, dtype=float))
        self.inv = np.linalg.inv(cov)
        self.nuisances = nuisances or GaussianNuisances([])

    def expected_main(self, theta, nu) -> np.ndarray:
        return np.atleast_1d(
            np.asarray(self._mean(np.atleast_1d(theta), np.asarray(nu, dtype=float)), dtype=float)
        )

    def make_data(self, x) -> Data:
        return Data(x, np.zeros(len(self.nuisances)))

    def loglik_main(self, data: Data, theta, nu) -> float:
        r = data.main - self.expected_main(theta, nu)
        return -0.5 * float(r @ self.inv @ r)


def counting_model(
    signal: float | Callable[[np.ndarray], float],
    background: float,
    *,
    signal_uncertainty: float | None = None,
    background_uncertainty: float | None = None,
) -> BinnedPoissonModel:
    """One-bin counting experiment: ``n ~ Poisson(s(theta) + b)``.

    ``signal`` is a number ``s`` (then ``theta = mu`` and ``s(mu) = mu * s``) or a function of
    theta. The uncertainties are relative (0.1 = 10 %) and give nuisances ``sig_norm`` /
    ``bkg_norm``.
    """
    b = float(background)
    if not (math.isfinite(b) and b >= 0):
        raise InputError(f"background must be >= 0, got {background}", field="background")
    if callable(signal):
        sfun = signal
    else:
        s = float(signal)
        if not math.isfinite(s):
            raise InputError(f"signal must be finite, got {signal}", field="signal")

        def sfun(theta, s=s):
            return s * float(np.asarray(theta).ravel()[0])

    def yields(theta):
        return np.array([[float(sfun(theta))], [b]])

    systs = []
    if signal_uncertainty:
        systs.append(Systematic("sig_norm", {"signal": float(signal_uncertainty)}))
    if background_uncertainty:
        systs.append(Systematic("bkg_norm", {"background": float(background_uncertainty)}))
    return BinnedPoissonModel(yields, n_bins=1, samples=["signal", "background"], systematics=systs)


def asimov_data(model, data: Data | None, theta, *, nu: np.ndarray | None = None) -> Data:
    """Asimov data at ``theta``: expected main data with the nuisances at ``nu``.

    With ``nu=None`` and observed ``data`` the nuisances are profiled on the data at ``theta``
    (as in Cowan et al. and pyhf); with ``data=None`` they sit at their nominal values (0).
    The auxiliary data are set to the same nuisance values.
    """
    from .nuisances import profile_nuisances

    n_nu = len(model.nuisances)
    if nu is None:
        if data is None or n_nu == 0:
            nu = np.zeros(n_nu)
        else:
            _, nu = profile_nuisances(
                lambda t, v: model.loglik_main(data, t, v),
                np.atleast_1d(theta),
                model.nuisances,
                data.aux,
                grad_nu=_grad_fn(model, data),
                hess_nu=_hess_fn(model, data),
            )
    nu = np.asarray(nu, dtype=float)
    return Data(model.expected_main(np.atleast_1d(theta), nu), nu.copy())


def _grad_fn(model, data):
    if hasattr(model, "grad_nu_main"):
        return lambda t, v: model.grad_nu_main(data, t, v)
    return None


def _hess_fn(model, data):
    if hasattr(model, "hess_nu_main"):
        return lambda t, v: model.hess_nu_main(data, t, v)
    return None
