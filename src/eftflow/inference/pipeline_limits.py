"""Expected limits on θ from the pipeline's likelihoods: the library of ``compute-limits --store``.

Two likelihoods, evaluated on θ grids of one or two parameters (the other parameters at the
reference point θ_ref, the SM by default):

* **Fisher (Gaussian approximation)**, one per analysis of the JSON written by
  ``eftflow compute-fisher-information`` (truth, rate, histo, ...):
  ``-2 Δln L(θ) = (θ - θ_ref)^T I (θ - θ_ref)``. With nuisance parameters in the file, their
  profiled information (unit Gaussian constraints) is used.
* **Binned Poisson** from the combined event store: one observable histogrammed per benchmark
  while streaming over a partition (``test`` by default), morphed to θ with the setup's morphing
  weights, ``λ_i(θ) = L Σ_b m_b(θ) σ_ib``; Asimov data at θ_ref; the setup's ``norm``
  systematics (optional) become log-normal nuisances ``(1 + δ)^ν``, profiled or marginalised
  (:class:`~eftflow.inference.asimov.BinnedPoissonModel`).

For each, ``t(θ) = -2 Δln L``, ``p = chi2.sf(t, k)`` (k = grid dimension), the contour levels
``chi2.ppf(cl, k)`` and, on 1D grids, the intervals where ``t`` is below each level. For small θ
the histogram likelihood reproduces the ``histo`` Fisher information with the same binning.

The ``limits`` config section (:data:`SCHEMA_FRAGMENT`) steers it; the result is JSON
(:func:`run_limits`) with optional plots.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError

from .histogram_likelihood import HistogramLikelihood, histogram_likelihood, setup_systematics
from .limit_grids import fisher_grid, histogram_grid, intervals_1d, summary, theta_grids

__all__ = [
    "SCHEMA_FRAGMENT",
    "HistogramLikelihood",
    "histogram_likelihood",
    "setup_systematics",
    "theta_grids",
    "fisher_grid",
    "histogram_grid",
    "intervals_1d",
    "compute_limits_from_pipeline",
    "run_limits",
]

log = logging.getLogger(__name__)


SCHEMA_FRAGMENT = """
limits:
  type: object
  additionalProperties: false
  default: {}
  description: Expected exclusion on θ grids from the Fisher information and a binned likelihood (rule compute_limits, docs/statistics.md).
  properties:
    cl:
      type: array
      items: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 1}
      minItems: 1
      default: [0.68, 0.95]
      description: Confidence levels of the contours and intervals.
    theta_ref:
      type: [array, "null"]
      items: {type: number}
      default: null
      description: Reference θ (Asimov point; the other parameters sit here on each grid). null = all 0 (SM).
    grids:
      type: [array, "null"]
      default: null
      description: "θ grids, each {parameters: [one or two names], ranges: [[low, high], ...] or null (the setup's parameter ranges), n_points}. null = one 1D grid per parameter and a 2D grid of the first two."
      items:
        type: object
        additionalProperties: false
        required: [parameters]
        properties:
          parameters: {type: array, items: {type: string}, minItems: 1, maxItems: 2, description: Parameters of the grid.}
          ranges: {type: [array, "null"], default: null, description: "[low, high] per parameter (null: the setup's parameter_range)."}
          n_points: {type: integer, minimum: 3, default: 41, description: Grid points per axis.}
    n_points:
      type: integer
      minimum: 3
      default: 41
      description: Points per axis of the default grids.
    fisher:
      type: object
      additionalProperties: false
      default: {}
      description: The Gaussian approximation from the Fisher information JSON.
      properties:
        enabled: {type: boolean, default: true, description: Use the Fisher information.}
        analyses:
          type: [array, "null"]
          items: {type: string}
          default: null
          description: Analyses of the JSON to use (null = all).
        profiled:
          type: boolean
          default: true
          description: With nuisance parameters in the JSON, use their profiled information.
    histogram:
      type: object
      additionalProperties: false
      default: {}
      description: The binned Poisson likelihood from the combined event store.
      properties:
        enabled: {type: boolean, default: true, description: Build the histogram likelihood.}
        observable: {type: string, default: m_ll, description: Observable name or safe expression.}
        bins:
          type: [integer, array]
          default: 10
          description: Number of bins (equal cross section at θ_ref without range) or boundaries (plus under/overflow).
        range:
          type: [array, "null"]
          default: null
          description: "[low, high] for equal-width bins plus under/overflow."
        partition:
          enum: [train, validation, test, all]
          default: test
          description: Events histogrammed.
        luminosity:
          type: [number, "null"]
          default: null
          description: Integrated luminosity in pb^-1 (null = the Fisher JSON's luminosity).
        systematics:
          type: boolean
          default: true
          description: Add the setup's norm systematics as nuisance parameters.
        nuisance_mode:
          enum: [profile, marginalise]
          default: profile
          description: Profile or marginalise the nuisance parameters.
"""


def _luminosity_note(result: dict) -> str | None:
    """The luminosity of the likelihoods of ``result`` for a figure's title (one value when the
    Fisher and histogram likelihoods share it, each named otherwise)."""
    from eftflow.plotting import luminosity_text

    lums = {
        k: result[k]["luminosity"]
        for k in ("fisher", "histogram")
        if isinstance(result.get(k), dict) and result[k].get("luminosity") is not None
    }
    if not lums:
        return None
    values = {float(v) for v in lums.values()}
    if len(values) == 1:
        return f"L = {luminosity_text(values.pop())}"
    return ", ".join(f"{k}: L = {luminosity_text(v)}" for k, v in lums.items())


def _check_fisher_point(fisher: dict, ref: np.ndarray, hcfg: dict, fisher_file: str) -> None:
    """Warn when the Fisher JSON was computed elsewhere than the limits' reference point or
    for another luminosity than the histogram likelihood's: the two likelihoods then describe
    different measurements (the Gaussian is centred at θ_ref with the curvature of the file)."""
    theta = fisher.get("theta")
    if theta is not None and (
        np.shape(theta) != ref.shape or not np.allclose(theta, ref, rtol=1e-9, atol=1e-12)
    ):
        log.warning(
            "the Fisher information in %s is evaluated at θ = %s, the limits' reference point "
            "(limits.theta_ref) is %s: the Gaussian likelihood uses the information at the "
            "file's θ around θ_ref (compute the information at θ_ref: fisher.theta)",
            fisher_file,
            list(np.atleast_1d(theta)),
            ref.tolist(),
        )
    lum, hlum = fisher.get("luminosity"), hcfg.get("luminosity")
    if (
        hcfg.get("enabled")
        and lum is not None
        and hlum is not None
        and not math.isclose(float(lum), float(hlum), rel_tol=1e-9)
    ):
        log.warning(
            "the Fisher information in %s is for %g pb^-1, the histogram likelihood for %g pb^-1 "
            "(limits.histogram.luminosity): their limits are for different luminosities",
            fisher_file,
            float(lum),
            float(hlum),
        )


def compute_limits_from_pipeline(
    cfg: dict,
    *,
    store=None,
    setup=None,
    fisher_file=None,
    config_file: str | None = None,
    n_workers: int = 1,
    scheduler=None,
) -> tuple[dict, dict]:
    """Evaluate the configured likelihoods on the grids: ``(JSON-able result, plot data)``.

    ``cfg`` is the validated ``limits`` section (defaults filled). ``setup`` is an
    :class:`~eftflow.setup.EFTSetup` or a setup-file path; ``store`` is needed for the histogram
    likelihood, ``fisher_file`` for the Fisher likelihoods and the default luminosity.
    """
    from eftflow.setup import EFTSetup

    setup_file = None
    if not hasattr(setup, "parameter_names"):
        setup_file = str(setup)
        setup = EFTSetup.from_file(setup)
    cls = [float(c) for c in cfg["cl"]]
    grids = theta_grids(cfg, setup, config_file=config_file)
    names = list(setup.parameter_names)
    ref = np.zeros(len(names)) if cfg.get("theta_ref") is None else np.asarray(cfg["theta_ref"])
    fcfg, hcfg = cfg["fisher"], cfg["histogram"]
    fisher = None
    if fisher_file is not None:
        from eftflow.inference.fisher_gaussian import fisher_theta_block
        from eftflow.inference.specs import read_spec

        fisher = read_spec(
            str(fisher_file),
            what="a Fisher information file (fisher_information.json)",
            doc="docs/fisher.md",
        )
        if not isinstance(fisher.get("analyses"), dict):
            raise InputError(
                "no analyses in the Fisher information file",
                file=str(fisher_file),
                field="analyses",
            )
    infos = {}
    if fisher is not None and fcfg["enabled"]:
        _check_fisher_point(fisher, ref, hcfg, str(fisher_file))
        wanted = fcfg["analyses"] or list(fisher["analyses"])
        for a in wanted:
            if a not in fisher["analyses"]:
                raise ConfigError(
                    f"unknown analysis {a!r}; {fisher_file} has {', '.join(fisher['analyses'])}",
                    file=config_file,
                    field="limits.fisher.analyses",
                )
            info, pnames = fisher_theta_block(
                fisher["analyses"][a], profiled=fcfg["profiled"], file=str(fisher_file), analysis=a
            )
            if pnames[: len(names)] != names:
                raise InputError(
                    f"parameters {pnames} do not match the setup's {names}",
                    file=str(fisher_file),
                    field=f"analyses.{a}.parameter_names",
                )
            infos[a] = info[: len(names), : len(names)]
    hist = None
    if hcfg["enabled"]:
        if store is None:
            raise InputError(
                "the histogram likelihood needs the event store (--store)", field="store"
            )
        lum = hcfg["luminosity"]
        if lum is None:
            if fisher is None or fisher.get("luminosity") is None:
                raise ConfigError(
                    "no luminosity: set limits.histogram.luminosity or give the Fisher JSON",
                    file=config_file,
                    field="limits.histogram.luminosity",
                )
            lum = float(fisher["luminosity"])
        hist = histogram_likelihood(
            store,
            setup,
            observable=hcfg["observable"],
            bins=hcfg["bins"],
            histrange=hcfg["range"],
            partition=hcfg["partition"],
            luminosity=lum,
            systematics=hcfg["systematics"],
            theta_ref=ref,
            n_workers=n_workers,
            scheduler=scheduler,
            config_file=config_file,
        )
    if not infos and hist is None:
        raise ConfigError(
            "nothing to compute: enable limits.fisher (with a Fisher JSON) or limits.histogram",
            file=config_file,
            field="limits",
        )
    out = {
        "parameters": names,
        "theta_ref": ref.tolist(),
        "cl": cls,
        "setup": setup_file,
        "grids": [],
    }
    if fisher is not None:
        out["fisher"] = {"file": str(fisher_file), "luminosity": fisher.get("luminosity")}
    if hist is not None:
        out["histogram"] = {
            "observable": hcfg["observable"],
            "boundaries": hist.boundaries.tolist(),
            "partition": hcfg["partition"],
            "luminosity": hist.luminosity,
            "expected_events_ref": hist.yields(ref).tolist(),
            "nuisances": [s.name for s in hist.systematics],
            "nuisance_mode": hcfg["nuisance_mode"],
        }
    plot_data = []
    for grid in grids:
        entry = {
            "name": grid["name"],
            "parameters": grid["parameters"],
            "axes": [a.tolist() for a in grid["axes"]],
            "shape": list(grid["shape"]),
            "points": grid["points"].tolist(),
            "likelihoods": {},
        }
        ts = {}
        for a, info in infos.items():
            t = fisher_grid(info, grid, ref)
            ts[f"fisher:{a}"] = t
            entry["likelihoods"][f"fisher:{a}"] = summary(
                grid, t, cls, {"source": "fisher"}, label=f"fisher:{a}"
            )
        if hist is not None:
            t, nu_hat, bands = histogram_grid(hist, grid, ref, mode=hcfg["nuisance_mode"])
            ts["histogram"] = t
            extra = {
                "source": "histogram",
                "nuisance_mode": hcfg["nuisance_mode"],
                "p_bands": {f"{k:+d}sigma": v.tolist() for k, v in bands.items()},
            }
            if nu_hat.shape[1] and hcfg["nuisance_mode"] == "profile":
                extra["nu_hat"] = nu_hat.tolist()
            entry["likelihoods"]["histogram"] = summary(grid, t, cls, extra, label="histogram")
        out["grids"].append(entry)
        plot_data.append((grid, ts))
    return out, {"grids": plot_data, "cl": cls}


def run_limits(
    cfg: dict,
    output,
    *,
    store=None,
    setup=None,
    fisher_file=None,
    plot_dir=None,
    config_file: str | None = None,
    n_workers: int = 1,
    scheduler=None,
) -> dict:
    """:func:`compute_limits_from_pipeline`, then write ``output`` (JSON) and the plots.

    Everything is computed before anything is written; both outputs are written atomically.
    """
    from eftflow.store.atomic import atomic_path

    result, plot_data = compute_limits_from_pipeline(
        cfg,
        store=store,
        setup=setup,
        fisher_file=fisher_file,
        config_file=config_file,
        n_workers=n_workers,
        scheduler=scheduler,
    )
    if plot_dir is not None:
        from eftflow.plotting.fit import plot_likelihood_grid

        note = _luminosity_note(result)
        with atomic_path(plot_dir) as tmp:
            tmp.mkdir(parents=True)
            for grid, ts in plot_data["grids"]:
                plot_likelihood_grid(
                    grid["axes"],
                    ts,
                    names=grid["parameters"],
                    cls=plot_data["cl"],
                    path=Path(tmp) / f"limits_{grid['name']}.png",
                    note=note,
                )
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return result
