"""Asymptotic limits (Cowan, Cranmer, Gross, Vitells, arXiv:1007.1727) and EFT exclusion grids.

Signal-strength tests on a model with one parameter of interest ``mu``
(:mod:`eftflow.inference.asimov` builds such models):

* test statistics ``t_mu``, ``t~_mu``, ``q_mu``, ``q~_mu``, ``q0`` from profile likelihood ratios
  (nuisances profiled; ``~`` variants restrict ``mu_hat >= 0``),
* the Asimov data set (nuisances profiled on the observed data at ``mu' = 0`` or 1),
* closed-form asymptotic p-values, ``CLs = p_{s+b} / (1 - p_b)`` and the expected CLs band at
  ``-2..+2`` sigma, exactly as pyhf's ``AsymptoticCalculator`` (``calc_base_dist="normal"``),
* observed and expected upper limits by root finding on CLs, discovery significance.

Exclusion on theta grids (EFT parameters; implemented in :mod:`eftflow.inference.exclusion`) from any main log-likelihood ``loglik(theta, nu)``,
the nuisances profiled or marginalised (:mod:`eftflow.inference.nuisances`):
``t(theta) = -2 [ln L(theta) - ln L(theta_hat)]`` with ``p = chi2.sf(t, k)``, k = dim theta
(Wilks). The expected exclusion uses the Asimov data at ``theta_asimov`` (``t_A(theta)``) for the
median, and the non-central chi-squared ``chi2'(k, t_A)`` (Wald) for the +-1, +-2 sigma bands.

Example
-------
>>> from eftflow.inference.asimov import counting_model
>>> m = counting_model(signal=1.0, background=100.0)
>>> ul = upper_limit(m, m.make_data([100]), cl=0.95)
>>> round(float(ul.expected[2]), 1)  # median; 1.96 * sqrt(b) / s = 19.6 for large b
20.9
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError

from .asimov import Data, _grad_fn, _hess_fn, asimov_data
from .exclusion import (  # re-exported: limits is the public entry point
    ExclusionResult,
    exclusion_grid,
    likelihood_grid,
    make_grid,
    model_exclusion,
)
from .nuisances import profile_nuisances

__all__ = [
    "TEST_STATISTICS",
    "ProfileLikelihood",
    "poi_bounds_auto",
    "test_statistic",
    "HypoTestResult",
    "hypotest",
    "cls_from_q",
    "expected_cls",
    "UpperLimitResult",
    "upper_limit",
    "DiscoveryResult",
    "discovery",
    "ExclusionResult",
    "likelihood_grid",
    "exclusion_grid",
    "model_exclusion",
    "make_grid",
]

log = logging.getLogger(__name__)

TEST_STATISTICS = ("t", "ttilde", "q", "qtilde", "q0")
BAND_SIGMAS = (-2, -1, 0, 1, 2)


def _phi(x):
    from scipy.special import ndtr

    return ndtr(x)


class ProfileLikelihood:
    """Profile likelihood of a one-POI model on fixed data (nuisances profiled, warm started)."""

    def __init__(self, model, data: Data, poi_bounds: tuple[float, float] = (-10.0, 10.0)):
        lo, hi = (float(b) for b in poi_bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InputError(
                f"poi_bounds must be finite with lower < upper, got {poi_bounds}",
                field="poi_bounds",
            )
        self.model, self.data, self.bounds = model, data, (lo, hi)
        self._grad = _grad_fn(model, data)
        self._hess = _hess_fn(model, data)
        self._start = None

    def __call__(self, mu: float) -> float:
        """``max_nu ln L(mu, nu)`` including the constraint terms (``-1e300`` if impossible)."""
        ll, nu = profile_nuisances(
            lambda t, v: self.model.loglik_main(self.data, t, v),
            np.array([float(mu)]),
            self.model.nuisances,
            self.data.aux,
            start=self._start,
            grad_nu=self._grad,
            hess_nu=self._hess,
        )
        if not (math.isfinite(ll) and ll > -1e299):
            return -1e300
        self._start = nu
        return ll

    def maximise(self, lower: float | None = None) -> tuple[float, float]:
        """``(mu_hat, ln L_max)`` with ``mu`` in ``[lower or poi lower, poi upper]``.

        Bounded Brent search of the profile likelihood, started from the best of a coarse scan.
        """
        from scipy.optimize import minimize_scalar

        lo = self.bounds[0] if lower is None else max(lower, self.bounds[0])
        hi = self.bounds[1]
        starts = np.linspace(lo, hi, 9)
        vals = np.array([self(m) for m in starts])
        k = int(np.argmax(vals))
        a, b = starts[max(k - 1, 0)], starts[min(k + 1, len(starts) - 1)]
        res = minimize_scalar(
            lambda m: -self(m),
            bounds=(a, b),
            method="bounded",
            options={"xatol": 1e-11 * max(1.0, hi - lo), "maxiter": 500},
        )
        mu_hat, best = float(res.x), -float(res.fun)
        # the bounded search never lands exactly on a bound: compare with the bounds themselves
        for edge, v in ((lo, vals[0]), (hi, vals[-1])):
            if v > best:
                mu_hat, best = float(edge), float(v)
        return mu_hat, best


def poi_bounds_auto(model, data: Data, width: float = 20.0) -> tuple[float, float]:
    """Default POI range ``+-width * sigma_A``, ``sigma_A`` from the Asimov (mu' = 0) curvature."""
    a = asimov_data(model, data, 0.0)
    pl = ProfileLikelihood(model, a, (-1.0, 1.0))
    qa1 = -2.0 * (pl(1.0) - pl(0.0))
    if not (math.isfinite(qa1) and qa1 > 0):
        raise InputError(
            "the signal does not change the likelihood: no limit possible", field="signal"
        )
    sigma = 1.0 / math.sqrt(qa1)
    return (-width * sigma, width * sigma)


def test_statistic(
    model, data: Data, mu: float, *, kind: str = "qtilde", poi_bounds=None
) -> tuple[float, float]:
    """Test statistic ``kind`` at ``mu`` and the best fit ``mu_hat``: returns ``(value, mu_hat)``.

    ``poi_bounds`` limits ``mu_hat`` (default :func:`poi_bounds_auto`).
    """
    if poi_bounds is None:
        poi_bounds = poi_bounds_auto(model, data)
    return _TestStatistic(model, data, kind, poi_bounds)(mu)


class _TestStatistic:
    """A test statistic as a function of ``mu`` on fixed data (the free fit is done once)."""

    def __init__(self, model, data: Data, kind: str, poi_bounds):
        if kind not in TEST_STATISTICS:
            raise InputError(
                f"unknown test statistic {kind!r}; expected one of {', '.join(TEST_STATISTICS)}",
                field="test_stat",
            )
        self.kind = kind
        self.pl = ProfileLikelihood(model, data, poi_bounds)
        lower = 0.0 if kind in ("ttilde", "qtilde") else None
        self.mu_hat, self.ll_max = self.pl.maximise(lower)

    def __call__(self, mu: float) -> tuple[float, float]:
        kind, mu_hat = self.kind, self.mu_hat
        if kind == "q0":
            mu = 0.0
        val = max(-2.0 * (self.pl(mu) - self.ll_max), 0.0)
        if kind in ("q", "qtilde") and mu_hat > mu:
            val = 0.0
        if kind == "q0" and mu_hat < 0:
            val = 0.0
        return val, mu_hat


test_statistic.__test__ = False  # not a pytest test


def cls_from_q(q: float, q_asimov: float, kind: str = "qtilde") -> tuple[float, float, float]:
    """Asymptotic ``(CLs+b, CLb, CLs)`` from ``q_mu`` (or ``q~_mu``) and its Asimov value.

    ``CLs+b = Phi(-(T + sqrt(q_A)))``, ``CLb = Phi(-T)``, with ``T = sqrt(q) - sqrt(q_A)``, or for
    ``q~`` above ``q_A``: ``T = (q - q_A) / (2 sqrt(q_A))`` (arXiv:1007.1727 eqs. 59, 65-66).
    """
    sq, sqa = math.sqrt(max(q, 0.0)), math.sqrt(max(q_asimov, 0.0))
    if kind == "qtilde" and sq > sqa:
        t = (q - q_asimov) / (2.0 * sqa)
    else:
        t = sq - sqa
    clsb = float(_phi(-(t + sqa)))
    clb = float(_phi(-t))
    return clsb, clb, clsb / clb


def expected_cls(q_asimov: float) -> np.ndarray:
    """Expected CLs at the -2, -1, 0, +1, +2 sigma quantiles of the background-only hypothesis:
    ``Phi(N - sqrt(q_A)) / Phi(N)`` (larger N: weaker exclusion)."""
    sqa = math.sqrt(max(q_asimov, 0.0))
    n = np.array(BAND_SIGMAS, dtype=float)
    return _phi(n - sqa) / _phi(n)


@dataclass
class HypoTestResult:
    """A CLs test of one ``mu``."""

    mu: float
    test_stat: str
    q: float
    q_asimov: float
    mu_hat: float
    clsb: float
    clb: float
    cls: float
    cls_expected: np.ndarray

    def summary(self) -> str:
        exp = " ".join(f"{v:.4g}" for v in self.cls_expected)
        return (
            f"mu={self.mu:g} {self.test_stat}={self.q:.5g} (Asimov {self.q_asimov:.5g}) "
            f"mu_hat={self.mu_hat:.4g}  CLs={self.cls:.5g} CLs+b={self.clsb:.5g} "
            f"CLb={self.clb:.5g}  expected CLs (-2..+2 sigma): {exp}"
        )


def hypotest(
    model,
    data: Data,
    mu: float,
    *,
    test_stat: str = "qtilde",
    poi_bounds=None,
    asimov: Data | None = None,
) -> HypoTestResult:
    """CLs test of signal strength ``mu`` (``test_stat`` ``"q"`` or ``"qtilde"``)."""
    if test_stat not in ("q", "qtilde"):
        raise InputError("CLs needs test_stat 'q' or 'qtilde'", field="test_stat")
    if poi_bounds is None:
        poi_bounds = poi_bounds_auto(model, data)
    q, mu_hat = test_statistic(model, data, mu, kind=test_stat, poi_bounds=poi_bounds)
    asimov = asimov if asimov is not None else asimov_data(model, data, 0.0)
    qa, _ = test_statistic(model, asimov, mu, kind=test_stat, poi_bounds=poi_bounds)
    clsb, clb, cls = cls_from_q(q, qa, test_stat)
    return HypoTestResult(mu, test_stat, q, qa, mu_hat, clsb, clb, cls, expected_cls(qa))


@dataclass
class UpperLimitResult:
    """Observed and expected (-2..+2 sigma) upper limits on ``mu`` at confidence ``cl``."""

    observed: float
    expected: np.ndarray
    cl: float
    test_stat: str

    def summary(self) -> str:
        e = self.expected
        return (
            f"{100 * self.cl:g}% CLs upper limit ({self.test_stat}): observed {self.observed:.5g}; "
            f"expected {e[2]:.5g} (+1s {e[3]:.5g}, -1s {e[1]:.5g}, +2s {e[4]:.5g}, -2s {e[0]:.5g})"
        )

    def to_dict(self) -> dict:
        return {
            "observed": self.observed,
            "expected": {f"{n:+d}sigma": float(v) for n, v in zip(BAND_SIGMAS, self.expected)},
            "cl": self.cl,
            "test_stat": self.test_stat,
        }


class _NoCrossing(InputError):
    """CLs does not fall to alpha inside the POI range."""


def _root(f: Callable[[float], float], lo: float, hi: float, what: str) -> float:
    """Root of a decreasing ``f`` in ``[lo, hi]``, doubling the bracket inside the bounds."""
    from scipy.optimize import brentq

    a, fa = lo, f(lo)
    if fa <= 0:
        raise InputError(f"{what}: CLs is already below alpha at mu = {lo:g}", field="poi_bounds")
    b = a
    step = max(abs(lo), 1e-3)
    while True:
        b_new = min(b + step, hi)
        fb = f(b_new)
        if fb < 0:
            return float(brentq(f, b, b_new, xtol=1e-10 * max(1.0, b_new), rtol=1e-12))
        if b_new >= hi:
            raise _NoCrossing(
                f"{what}: CLs stays above alpha up to mu = {hi:g}; widen poi_bounds",
                field="poi_bounds",
            )
        b, step = b_new, step * 2.0


def upper_limit(
    model,
    data: Data,
    *,
    cl: float = 0.95,
    test_stat: str = "qtilde",
    poi_bounds=None,
) -> UpperLimitResult:
    """CLs upper limits: observed (root of ``CLs(mu) = 1 - cl``) and expected bands.

    The roots are searched in ``(0, poi upper bound]``. With the default ``poi_bounds``
    (:func:`poi_bounds_auto`) the range is widened (by 4, up to 4^5 times) while CLs stays above
    ``1 - cl`` in it, so that a large excess still gets its limit; explicit ``poi_bounds`` are
    kept and an :class:`InputError` says when they are too narrow.
    """
    if not 0 < cl < 1:
        raise InputError(f"cl must be in (0, 1), got {cl}", field="cl")
    if test_stat not in ("q", "qtilde"):
        raise InputError("CLs needs test_stat 'q' or 'qtilde'", field="test_stat")
    auto = poi_bounds is None
    if auto:
        poi_bounds = poi_bounds_auto(model, data)
    asimov = asimov_data(model, data, 0.0)
    for attempt in range(6):
        try:
            return _upper_limit(model, data, asimov, cl, test_stat, poi_bounds)
        except _NoCrossing:
            if not auto or attempt == 5:
                raise
            poi_bounds = (4.0 * poi_bounds[0], 4.0 * poi_bounds[1])
            log.info("CLs above alpha in the POI range: widening it to %s", poi_bounds)
    raise AssertionError("unreachable")  # pragma: no cover


def _upper_limit(model, data, asimov, cl, test_stat, poi_bounds) -> UpperLimitResult:
    alpha = 1.0 - cl
    ts_obs = _TestStatistic(model, data, test_stat, poi_bounds)
    ts_asimov = _TestStatistic(model, asimov, test_stat, poi_bounds)
    qa_cache: dict[float, float] = {}

    def qa(mu):
        if mu not in qa_cache:
            qa_cache[mu] = ts_asimov(mu)[0]
        return qa_cache[mu]

    def f_obs(mu):
        return cls_from_q(ts_obs(mu)[0], qa(mu), test_stat)[2] - alpha

    hi = float(poi_bounds[1])
    lo = 1e-3 * hi
    observed = _root(f_obs, lo, hi, "observed limit")
    expected = np.array(
        [
            _root(
                lambda mu, k=k: float(expected_cls(qa(mu))[k]) - alpha,
                lo,
                hi,
                f"expected limit ({BAND_SIGMAS[k]:+d} sigma)",
            )
            for k in range(len(BAND_SIGMAS))
        ]
    )
    return UpperLimitResult(observed, expected, cl, test_stat)


@dataclass
class DiscoveryResult:
    """``q0``, its significance ``Z = sqrt(q0)``, p-value, and the Asimov median ``Z_A``."""

    q0: float
    significance: float
    p0: float
    mu_hat: float
    expected_significance: float

    def summary(self) -> str:
        return (
            f"q0={self.q0:.5g}  Z={self.significance:.4g}  p0={self.p0:.4g}  "
            f"mu_hat={self.mu_hat:.4g}  expected Z (mu=1 Asimov)={self.expected_significance:.4g}"
        )


def discovery(model, data: Data, *, poi_bounds=None) -> DiscoveryResult:
    """Discovery test of ``mu = 0`` with ``q0``; the expected significance uses Asimov ``mu' = 1``."""
    if poi_bounds is None:
        poi_bounds = poi_bounds_auto(model, data)
    q0, mu_hat = test_statistic(model, data, 0.0, kind="q0", poi_bounds=poi_bounds)
    asimov = asimov_data(model, data, 1.0)
    q0a, _ = test_statistic(model, asimov, 0.0, kind="q0", poi_bounds=poi_bounds)
    z = math.sqrt(q0)
    return DiscoveryResult(q0, z, float(_phi(-z)), mu_hat, math.sqrt(q0a))
