r"""The ``toy`` generator: an analytic two-parameter model with closed-form answers.

Model
-----
One kinematic variable :math:`x \in \mathbb{R}`, two parameters :math:`\theta = (\theta_1,
\theta_2)`, and

.. math::

    \frac{d\sigma(x|\theta)}{dx} = \sigma_0\,\varphi(x)\,\bigl(1 + \theta_1 f_1(x)
    + \theta_2 f_2(x)\bigr)^2, \qquad f_1 = x,\quad f_2 = x^2 - 1,

with :math:`\varphi` the standard normal density. :math:`f_1, f_2` are the Hermite polynomials
He₁, He₂: orthogonal under φ with E[f₁] = E[f₂] = 0, E[f₁²] = 1, E[f₂²] = 2, E[f₁f₂] = 0. So
dσ is exactly quadratic in θ (morphing with max power 2 is exact: 6 components) and

* **cross section**: :math:`\sigma(\theta) = \sigma_0\,(1 + \theta_1^2 + 2\theta_2^2)`;
* **density**: :math:`p(x|\theta) = \varphi(x)(1+\theta\cdot f)^2 / (1 + \theta_1^2 + 2\theta_2^2)`;
* **joint score** (here also the score, x being the whole event):
  :math:`t(x|\theta) = 2 f(x) / (1 + \theta\cdot f(x)) - \nabla\sigma/\sigma`, with
  :math:`\nabla\sigma = \sigma_0 (2\theta_1, 4\theta_2)`;
* **Fisher information** of the Poisson-extended likelihood for luminosity :math:`L`:
  :math:`I_{ij}(\theta) = L\int \partial_i d\sigma\,\partial_j d\sigma / d\sigma
  = 4 L \sigma_0\, E_\varphi[f_i f_j] = 4 L \sigma_0\,\mathrm{diag}(1, 2)` — the same at every θ
  (∂ᵢdσ = 2σ₀φ(1+θ·f)fᵢ, so the (1+θ·f)² cancels). It splits into the rate part
  :math:`L\,\nabla\sigma\nabla\sigma^T/\sigma` (zero at θ = 0) and the shape part (the rest).

Events
------
Events are drawn exactly from :math:`p(x|\theta_s)` at the sampling benchmark θₛ by rejection
from a N(0, 2) proposal whose bound is found from the real roots of a cubic (exact, no grid).
Each event gets a weight for every benchmark b of the setup:
:math:`w_b = d\sigma(x|\theta_b) / p(x|\theta_s) \cdot 1/N`, so :math:`\sum w_b` is an unbiased
estimate of σ(θ_b) and the weights at θₛ all equal σ(θₛ)/N. Observables: ``x`` and
``x_smeared`` = x + N(0, ``smearing``²) (a detector-like copy). Nuisance benchmarks of ``norm``
systematics get the sampling-benchmark weight times the norm variation.

Example
-------
>>> import numpy as np
>>> setup = toy_setup()
>>> [p for p in setup.parameters], len(setup.benchmarks)
(['theta_1', 'theta_2'], 6)
>>> float(toy_cross_section([0.5, 0.5], sigma0=2.0))
3.5
>>> toy_fisher_information([0.0, 0.0], luminosity=10.0, sigma0=2.0).tolist()
[[80.0, 0.0], [0.0, 160.0]]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from eftflow.errors import ConfigError
from eftflow.generate.base import GenerationJob, GenerationResult

__all__ = [
    "ToyGenerator",
    "toy_setup",
    "toy_dsigma",
    "toy_cross_section",
    "toy_log_density",
    "toy_score",
    "toy_fisher_information",
    "sample_toy",
    "TOY_OBSERVABLES",
]

log = logging.getLogger(__name__)

TOY_OBSERVABLES = ("x", "x_smeared")
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _theta(theta) -> np.ndarray:
    t = np.asarray(theta, dtype=np.float64)
    if t.shape[-1] != 2:
        raise ConfigError(f"the toy has 2 parameters, got theta of shape {t.shape}", field="theta")
    return t


def _features(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.stack([x, x * x - 1.0], axis=-1)


def toy_dsigma(x, theta, *, sigma0: float = 1.0) -> np.ndarray:
    """dσ/dx at ``x`` (any shape) for one θ (shape (2,)) or one θ per x (shape x.shape + (2,))."""
    t = _theta(theta)
    x = np.asarray(x, dtype=np.float64)
    amp = 1.0 + (_features(x) * t).sum(axis=-1)
    return sigma0 * np.exp(-0.5 * x * x) / _SQRT_2PI * amp * amp


def toy_cross_section(theta, *, sigma0: float = 1.0) -> np.ndarray:
    """σ(θ) = σ₀ (1 + θ₁² + 2θ₂²); ``theta`` shape (..., 2)."""
    t = _theta(theta)
    return sigma0 * (1.0 + t[..., 0] ** 2 + 2.0 * t[..., 1] ** 2)


def toy_log_density(x, theta) -> np.ndarray:
    """log p(x|θ), the normalised density."""
    t = _theta(theta)
    return np.log(toy_dsigma(x, t)) - np.log(toy_cross_section(t))


def toy_score(x, theta, *, sigma0: float = 1.0) -> np.ndarray:
    """t(x|θ) = ∇_θ log p(x|θ), shape x.shape + (2,)."""
    t = _theta(theta)
    f = _features(x)
    amp = 1.0 + (f * t).sum(axis=-1)
    grad_sigma = np.stack([2.0 * t[..., 0], 4.0 * t[..., 1]], axis=-1)
    return 2.0 * f / amp[..., None] - grad_sigma / toy_cross_section(t)[..., None]


def toy_fisher_information(
    theta, *, luminosity: float, sigma0: float = 1.0, kind: str = "full"
) -> np.ndarray:
    """Fisher information (2, 2) at θ for ``luminosity`` (pb⁻¹ when σ₀ is in pb).

    ``kind``: ``"full"`` (rate + shape, = 4Lσ₀ diag(1, 2) at every θ), ``"rate"`` (from σ(θ)
    alone: L ∇σ∇σᵀ/σ) or ``"shape"`` (full − rate: what the distribution of x adds).
    """
    t = _theta(theta)
    full = 4.0 * luminosity * sigma0 * np.diag([1.0, 2.0])
    grad = sigma0 * np.array([2.0 * t[0], 4.0 * t[1]])
    rate = luminosity * np.outer(grad, grad) / toy_cross_section(t, sigma0=sigma0)
    if kind == "full":
        return full
    if kind == "rate":
        return rate
    if kind == "shape":
        return full - rate
    raise ConfigError(f"kind must be 'full', 'rate' or 'shape', got {kind!r}", field="kind")


def _envelope(theta: np.ndarray) -> float:
    """max over x of (1+θ·f)² exp(−x²/4): the rejection bound against a N(0, 2) proposal."""
    a, b = float(theta[0]), float(theta[1])
    c0 = 1.0 - b  # 1 + a x + b (x² − 1) = c0 + a x + b x²
    # d/dx [poly² e^{−x²/4}] = poly e^{−x²/4} (2 poly' − x poly / 2): roots of poly (minima) and
    # of the cubic −(b/2)x³ − (a/2)x² + (4b − c0/2)x + 2a
    roots = np.roots([-b / 2.0, -a / 2.0, 4.0 * b - c0 / 2.0, 2.0 * a])
    xs = np.r_[0.0, roots[np.abs(roots.imag) < 1e-9].real]
    vals = (c0 + a * xs + b * xs * xs) ** 2 * np.exp(-xs * xs / 4.0)
    return float(vals.max()) * (1.0 + 1e-9)


def sample_toy(n: int, theta_s, rng: np.random.Generator) -> np.ndarray:
    """``n`` exact draws of x from p(x|θₛ) (rejection from N(0, 2))."""
    t = _theta(theta_s)
    bound = _envelope(t)
    out = np.empty(0)
    while out.size < n:
        m = max(
            1024, int(1.3 * (n - out.size) * bound * 2.0 / (1.0 + t[0] ** 2 + 2 * t[1] ** 2)) + 16
        )
        x = rng.normal(0.0, math.sqrt(2.0), m)
        u = rng.uniform(0.0, bound, m)
        poly = 1.0 + t[0] * x + t[1] * (x * x - 1.0)
        out = np.r_[out, x[u < poly * poly * np.exp(-x * x / 4.0)]]
    return out[:n]


def toy_setup(
    *,
    parameter_range: tuple[float, float] = (-1.0, 1.0),
    benchmarks: dict[str, Sequence[float]] | None = None,
    seed: int = 0,
):
    """An :class:`~eftflow.setup.EFTSetup` matching the toy: ``theta_1``, ``theta_2``, max power 2.

    Default benchmarks: ``sm`` (0, 0), ``t1_pos`` (0.5, 0), ``t2_pos`` (0, 0.5); ``set_morphing``
    then completes the basis to the 6 components.
    """
    from eftflow.setup import EFTSetup

    setup = EFTSetup()
    for i in (1, 2):
        setup.add_parameter(
            "toy", i, f"theta_{i}", morphing_max_power=2, parameter_range=parameter_range
        )
    benchmarks = benchmarks or {"sm": (0.0, 0.0), "t1_pos": (0.5, 0.0), "t2_pos": (0.0, 0.5)}
    for name, (t1, t2) in benchmarks.items():
        setup.add_benchmark({"theta_1": t1, "theta_2": t2}, name, verbose=False)
    setup.set_morphing(max_overall_power=2, seed=seed)
    return setup


class ToyGenerator:
    """The toy backend (see the module docstring).

    Options (``job.options``): ``sigma0`` (pb, default 1.0), ``smearing`` (default 0.5),
    ``parameters`` (the two setup parameters playing θ₁, θ₂; default: the setup's first two),
    ``chunk_size`` (events per store chunk, default 100 000).
    """

    name = "toy"

    def generate(self, job: GenerationJob) -> GenerationResult:
        from eftflow import __version__
        from eftflow.store.events import EventStoreWriter, make_provenance

        setup = job.setup
        opts = dict(job.options or {})
        sigma0 = float(opts.get("sigma0", 1.0))
        smearing = float(opts.get("smearing", 0.5))
        chunk = int(opts.get("chunk_size", 100_000))
        if not (sigma0 > 0 and np.isfinite(sigma0)):
            raise ConfigError(
                f"sigma0 must be positive and finite, got {sigma0}", field="generation.toy.sigma0"
            )
        if not (smearing >= 0 and np.isfinite(smearing)):
            raise ConfigError(
                f"smearing must be ≥ 0 and finite, got {smearing}", field="generation.toy.smearing"
            )
        names = list(opts.get("parameters") or setup.parameter_names[:2])
        if len(names) != 2 or any(p not in setup.parameters for p in names):
            raise ConfigError(
                f"the toy needs 2 parameters of the setup, got {names}; setup has {setup.parameter_names}",
                field="generation.toy.parameters",
            )
        physics = setup.physics_benchmarks()
        bench_names = [b.name for b in physics]
        thetas = np.array([[b.values[p] for p in names] for b in physics])
        s_name = job.sampling_benchmark or bench_names[0]
        if s_name not in bench_names:
            raise ConfigError(
                f"sampling benchmark {s_name!r} is not a physics benchmark of the setup ({', '.join(bench_names)})",
                field=f"generation.samples.{job.sample}.sampling_benchmark",
            )
        s_idx = bench_names.index(s_name)
        # norm nuisance benchmarks scale the nominal weight: the reference benchmark's, as the
        # readers of the weights take it (eftflow.sampling.weights), not the sampling one's
        refs = [i for i, b in enumerate(physics) if b.is_reference]
        ref_idx = refs[0] if refs else 0
        nuis = []
        for np_ in setup.nuisance_parameters.values():
            syst = setup.systematics.get(np_.systematic)
            if syst is not None and syst.type == "norm" and np_.benchmark_positive:
                nuis.append((np_.benchmark_positive, float(syst.value)))
        if job.n_events < 1:
            raise ConfigError("n_events must be positive", field="generation.n_events_per_job")

        rng = np.random.default_rng(job.seed)
        sigma_s = float(toy_cross_section(thetas[s_idx], sigma0=sigma0))
        provenance = make_provenance(
            generator="toy",
            generator_version=__version__,
            seed=int(job.seed),
            sample=job.sample,
            job_index=int(job.job_index),
            sampling_benchmark=s_name,
            sigma0=sigma0,
            **(job.provenance or {}),
        )
        totals = np.zeros(len(bench_names))
        sq = np.zeros(len(bench_names))
        with EventStoreWriter(
            job.output,
            list(TOY_OBSERVABLES),
            bench_names,
            chunk_size=chunk,
            provenance=provenance,
            nuisance_names=[n for n, _ in nuis] or None,
            attrs={"sample": job.sample, "generator": "toy"},
        ) as writer:
            done = 0
            while done < job.n_events:
                m = min(chunk, job.n_events - done)
                x = sample_toy(m, thetas[s_idx], rng)
                xs = x + rng.normal(0.0, smearing, m) if smearing > 0 else x.copy()
                ds_s = toy_dsigma(x, thetas[s_idx], sigma0=sigma0)
                w = toy_dsigma(x[:, None], thetas[None, :, :], sigma0=sigma0) / ds_s[:, None]
                w *= sigma_s / job.n_events
                totals += w.sum(axis=0)
                sq += (w * w).sum(axis=0)
                nw = np.column_stack([w[:, ref_idx] * v for _, v in nuis]) if nuis else None
                writer.append(
                    observables=np.column_stack([x, xs]),
                    weights=w,
                    sampling_benchmark=np.full(m, s_idx),
                    nuisance_weights=nw,
                )
                done += m
        log.info("toy: %d events at %s written to %s", job.n_events, s_name, job.output)
        return GenerationResult(
            output=job.output,
            n_events=job.n_events,
            cross_sections=dict(zip(bench_names, totals.tolist())),
            cross_section_errors=dict(
                zip(bench_names, np.sqrt(np.maximum(sq - totals**2 / job.n_events, 0.0)).tolist())
            ),
            metadata={"seed": int(job.seed), "sampling_benchmark": s_name, "sigma0": sigma0},
        )
