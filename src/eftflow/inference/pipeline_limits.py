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


# -- grids -------------------------------------------------------------------------------------
def theta_grids(cfg: dict, setup, *, config_file=None) -> list[dict]:
    """The configured grids: ``[{name, parameters, indices, axes, theta (n, k_all), shape}]``."""
    from eftflow.inference.exclusion import make_grid

    names = list(setup.parameter_names)
    ref = cfg.get("theta_ref")
    ref = np.zeros(len(names)) if ref is None else np.asarray(ref, float)
    if ref.shape != (len(names),):
        raise ConfigError(
            f"theta_ref must have {len(names)} components ({', '.join(names)}), got {ref.size}",
            file=config_file,
            field="limits.theta_ref",
        )
    specs = cfg.get("grids")
    if specs is None:
        n = int(cfg.get("n_points", 41))
        specs = [{"parameters": [p], "n_points": n} for p in names]
        if len(names) >= 2:
            specs.append({"parameters": names[:2], "n_points": n})
    out = []
    for g, spec in enumerate(specs):
        where = f"limits.grids[{g}]"
        pars = list(spec.get("parameters") or [])
        if not 1 <= len(pars) <= 2:
            raise ConfigError(
                f"a grid has one or two parameters, got {len(pars)}",
                file=config_file,
                field=f"{where}.parameters",
            )
        for p in pars:
            if p not in names:
                raise ConfigError(
                    f"unknown parameter {p!r}; the setup has {', '.join(names)}",
                    file=config_file,
                    field=f"{where}.parameters",
                )
        ranges = spec.get("ranges")
        if ranges is None:
            ranges = []
            for p in pars:
                r = setup.parameters[p].parameter_range
                ranges.append([float(r[0]), float(r[1])])
        if not isinstance(ranges, list) or len(ranges) != len(pars):
            raise ConfigError(
                f"the θ grid has {len(pars)} parameter(s) but {len(ranges) if isinstance(ranges, list) else 'no'} "
                "range(s): give one [low, high] per parameter",
                file=config_file,
                field=f"{where}.ranges",
            )
        n = int(spec.get("n_points", cfg.get("n_points", 41)))
        axes = []
        for j, r in enumerate(ranges):
            try:
                lo, hi = (float(v) for v in r)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"expected [low, high], got {r!r}",
                    file=config_file,
                    field=f"{where}.ranges[{j}]",
                ) from None
            if not lo < hi:
                raise ConfigError(
                    f"range needs low < high, got {r}",
                    file=config_file,
                    field=f"{where}.ranges[{j}]",
                )
            axis = np.linspace(lo, hi, n)
            if lo < ref[names.index(pars[j])] < hi:  # put the reference on the grid
                axis = np.unique(np.append(axis, ref[names.index(pars[j])]))
            axes.append(axis)
        pts, shape = make_grid(axes)
        idx = [names.index(p) for p in pars]
        full = np.repeat(ref[None, :], len(pts), axis=0)
        full[:, idx] = pts
        out.append(
            {
                "name": "_".join(pars),
                "parameters": pars,
                "indices": idx,
                "axes": axes,
                "points": pts,
                "theta": full,
                "shape": shape,
            }
        )
    return out


def _levels(cls, k: int) -> dict[str, float]:
    from scipy.stats import chi2

    return {f"{cl:g}": float(chi2.ppf(cl, k)) for cl in cls}


def intervals_1d(
    x: np.ndarray, t: np.ndarray, level: float, *, open_ends: bool = False
) -> list[list[float]] | tuple[list[list[float]], list[list[bool]]]:
    """Intervals of a 1D grid where ``t <= level``.

    Crossings are interpolated linearly in ``sqrt(t)``, exact when ``t`` is quadratic in ``x``.
    An interval that reaches the end of the grid ends there (the grid is too small): that end is
    not a limit, only the grid's edge.

    Parameters
    ----------
    x, t
        The grid points (increasing) and ``-2 Δln L`` on them.
    level
        The threshold (``chi2.ppf(cl, 1)``).
    open_ends
        Also return, per interval, ``[open_lower, open_upper]``: ``True`` where the interval
        reaches the grid's first or last point (no crossing of ``level`` was found there).

    Returns
    -------
    list or tuple
        ``[[low, high], ...]``; with ``open_ends``, ``(intervals, [[open_lower, open_upper], ...])``.

    Examples
    --------
    >>> x = np.linspace(-1.0, 1.0, 5)
    >>> intervals_1d(x, 4 * x**2, 1.0)
    [[-0.5, 0.5]]
    >>> intervals_1d(x, 0.1 * x**2, 1.0, open_ends=True)
    ([[-1.0, 1.0]], [[True, True]])
    """
    x = np.asarray(x, float)
    t = np.asarray(t, float)
    inside = np.isfinite(t) & (t <= level)
    out, edges = [], []
    i = 0
    n = len(x)
    while i < n:
        if not inside[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and inside[j + 1]:
            j += 1

        def cross(a, b):  # linear in sqrt(t): exact for a quadratic t
            if not np.isfinite(t[b]):
                return float(x[a])
            ra, rb, rl = math.sqrt(max(t[a], 0.0)), math.sqrt(t[b]), math.sqrt(level)
            return float(x[a] + (rl - ra) * (x[b] - x[a]) / (rb - ra))

        lo = cross(i, i - 1) if i > 0 else float(x[0])
        hi = cross(j, j + 1) if j + 1 < n else float(x[-1])
        out.append([lo, hi])
        edges.append([i == 0, j + 1 == n])
        i = j + 1
    return (out, edges) if open_ends else out


def _summary(grid, t, cls, extra=None, *, label: str = "") -> dict:
    from scipy.stats import chi2

    k = len(grid["parameters"])
    t = np.where(np.isfinite(t), np.clip(t, 0.0, None), np.inf)
    best = grid["points"][int(np.argmin(t))]
    d = {
        "minus2_delta_lnL": [float(v) if math.isfinite(v) else None for v in t],
        "p_value": chi2.sf(t, k).tolist(),
        "best_fit": best.tolist(),
        "levels": _levels(cls, k),
    }
    if k == 1:
        d["intervals"], d["intervals_open"] = {}, {}
        axis = grid["axes"][0]
        for key, lv in d["levels"].items():
            d["intervals"][key], d["intervals_open"][key] = intervals_1d(
                axis, t, lv, open_ends=True
            )
            if any(a or b for a, b in d["intervals_open"][key]):
                log.warning(
                    "%s%s at CL %s: an interval reaches the edge of the grid [%g, %g], so that "
                    "end is the grid's, not a limit (marked in intervals_open); widen the grid "
                    "(limits.grids ranges, or the parameter's parameter_range)",
                    f"{label}: " if label else "",
                    grid["parameters"][0],
                    key,
                    float(axis[0]),
                    float(axis[-1]),
                )
    if extra:
        d.update(extra)
    return d


def fisher_grid(info: np.ndarray, grid: dict, theta_ref) -> np.ndarray:
    """``-2 Δln L = Δθ^T I Δθ`` on the grid's points (full θ vectors)."""
    dt = grid["theta"] - np.asarray(theta_ref, float)[None, :]
    return np.einsum("ni,ij,nj->n", dt, info, dt)


def histogram_grid(hist: HistogramLikelihood, grid: dict, theta_ref, *, mode: str = "profile"):
    """Expected ``-2 Δln L`` (Asimov data at ``theta_ref``), conditional ν and Wald p-value bands."""
    from eftflow.inference.asimov import _grad_fn, _hess_fn, asimov_data
    from eftflow.inference.exclusion import _wald_bands, likelihood_grid

    model = hist.model
    ref = np.asarray(theta_ref, float)
    data = asimov_data(model, None, ref)

    def loglik(th, nu):
        return model.loglik_main(data, th, nu)

    kw = dict(
        nuisances=model.nuisances,
        aux=data.aux,
        mode=mode,
        grad_nu=_grad_fn(model, data),
        hess_nu=_hess_fn(model, data),
    )
    lnl, nu_hat = likelihood_grid(loglik, grid["theta"], **kw)
    lnl_ref, _ = likelihood_grid(loglik, ref[None, :], **kw)
    t = -2.0 * (lnl - lnl_ref[0])
    t = np.where(np.isfinite(t), np.clip(t, 0.0, None), np.inf)
    bands = _wald_bands(np.where(np.isfinite(t), t, 1e12), len(grid["parameters"]))
    return t, nu_hat, bands


# -- the driver --------------------------------------------------------------------------------
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

        fisher = read_spec(str(fisher_file))
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
            entry["likelihoods"][f"fisher:{a}"] = _summary(
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
            entry["likelihoods"]["histogram"] = _summary(grid, t, cls, extra, label="histogram")
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
