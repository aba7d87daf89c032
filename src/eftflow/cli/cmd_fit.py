"""``eftflow compute-limits``: asymptotic limits from a counting or histogram description.

The input file (YAML or JSON) has ``kind: counting`` or ``kind: histogram``::

    kind: counting            # CLs upper limit on the signal strength mu
    cl: 0.95
    test_stat: qtilde         # or q
    counting:
      signal: 5.0
      background: 10.0
      observed: 12            # optional: without it only expected limits are given
      signal_uncertainty: 0.05      # optional, relative
      background_uncertainty: 0.1   # optional, relative

    kind: histogram           # exclusion of theta grid points
    cl: 0.95
    nuisance_mode: profile    # or marginalise
    histogram:
      parameters: [cW, cY]
      theta: [[0, 0], [0, 1], ...]          # grid points (n_points, k)
      signal: [[...], [...], ...]           # expected counts per grid point and bin
      background: [...]                     # optional, per bin
      observed: [...]                       # optional, per bin
      asimov_theta: [0, 0]                  # optional (a grid point): expected exclusion
      systematics:                          # optional; relative effects at +1 sigma
        - {name: lumi, signal: 0.02, background: 0.02}

It writes the limits as JSON (``-o``) and optionally a figure (``--plot``).

From the pipeline's likelihoods (rule ``compute_limits``; ``eftflow limits`` is the same command)::

    eftflow compute-limits --setup setup.h5 --store events.zarr --fisher fisher.json \\
        --config '{"limits": {...}}' -o limits.json --plot-dir plots/

evaluates the Fisher (Gaussian) and binned Poisson likelihoods on theta grids
(:mod:`eftflow.inference.pipeline_limits`, config section ``limits``).

``eftflow fit SPEC -o OUT.json [--plot DIR]`` fits a model described in YAML/JSON
(:mod:`eftflow.inference.specs`): best fit, Hesse covariance, MINOS intervals, profiles, contours.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import tempfile

__all__ = ["register", "compute_limits", "run_compute_limits", "run_fit"]

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    from eftflow.cli.common import (
        add_cluster_argument,
        add_config_argument,
        add_resources_arguments,
    )

    p = subparsers.add_parser(
        "compute-limits",
        aliases=["limits"],
        help="asymptotic CLs limits / theta-grid exclusion from a spec or the pipeline's likelihoods",
        description=__doc__.split("``eftflow fit ")[0].rstrip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="?", default=None, help="YAML or JSON description (see above)")
    p.add_argument("-o", "--output", required=True, help="output JSON file")
    p.add_argument(
        "--plot",
        default=None,
        help="optional figure of a description's limits: a figure file (.png, .pdf, ...) or a "
        "directory (limits.png in it)",
    )
    p.add_argument("--setup", default=None, help="pipeline mode: the setup file (HDF5)")
    p.add_argument("--store", default=None, help="pipeline mode: the combined event store (zarr)")
    p.add_argument("--fisher", default=None, help="pipeline mode: Fisher information JSON")
    p.add_argument("--plot-dir", default=None, help="pipeline mode: directory for the plots")
    add_config_argument(p)
    add_resources_arguments(p)
    add_cluster_argument(p)
    p.set_defaults(handler=run_compute_limits)

    f = subparsers.add_parser(
        "fit",
        help="fit a model described in YAML/JSON: best fit, Hesse covariance, MINOS, contours",
        description=(
            "Fit a Gaussian (or Fisher-information), counting or histogram likelihood with bounds, "
            "fixed parameters and linear/nonlinear constraints; write the best fit, the Hesse "
            "covariance, MINOS intervals and the requested profiles/contours as JSON. The file "
            "format is documented in eftflow.inference.specs and docs/statistics.md."
        ),
    )
    f.add_argument("spec", help="fit description (YAML or JSON)")
    f.add_argument("-o", "--output", required=True, help="output JSON file")
    f.add_argument(
        "--plot", default=None, help="directory for the profile and contour plots (omitted: none)"
    )
    f.set_defaults(handler=run_fit)


def run_compute_limits(args: argparse.Namespace) -> int:
    from eftflow.errors import InputError

    pipeline = any(getattr(args, k) for k in ("setup", "store", "fisher", "plot_dir", "config"))
    if args.spec is not None and pipeline:
        raise InputError(
            "give a limits description or --setup/--store/--fisher, not both", field="spec"
        )
    if args.plot_dir:
        from eftflow.cli.common import plot_directory

        plot_directory(args.plot_dir, "--plot-dir")
    if args.spec is None:
        if not args.setup:
            raise InputError("give a limits description, or --setup (pipeline mode)", field="spec")
        return _run_pipeline_limits(args)
    from eftflow.inference.specs import read_spec

    spec = read_spec(args.spec, what="a limits description", doc="docs/statistics.md")
    result, figure_data = compute_limits(spec, file=args.spec)
    _write_json(result, args.output)
    if args.plot:
        from eftflow.cli.common import plot_file

        _plot(figure_data, spec, plot_file(args.plot, "limits.png"))
    log.info("limits written to %s", args.output)
    return 0


def _run_pipeline_limits(args: argparse.Namespace) -> int:
    from eftflow.cli.common import load_cluster_config, load_stage_config
    from eftflow.inference.pipeline_limits import SCHEMA_FRAGMENT, run_limits
    from eftflow.sampling.config import stage_sections
    from eftflow.sampling.parallel import chunk_scheduler

    cfg = load_stage_config(args.config)
    source = args.config if args.config and not args.config.strip().startswith("{") else "--config"
    cfg = stage_sections(cfg, SCHEMA_FRAGMENT, file=source)
    cluster = load_cluster_config(args.cluster_config)
    with chunk_scheduler(cluster, args.threads, args.memory_mb) as scheduler:
        run_limits(
            cfg["limits"],
            args.output,
            store=args.store,
            setup=args.setup,
            fisher_file=args.fisher,
            plot_dir=args.plot_dir,
            config_file=source,
            n_workers=args.threads,
            scheduler=scheduler,
        )
    log.info("limits written to %s", args.output)
    return 0


def run_fit(args: argparse.Namespace) -> int:
    """``eftflow fit``: everything is computed before the JSON and the plots are written."""
    from eftflow.cli.common import plot_directory
    from eftflow.inference.specs import read_spec, run_fit_spec

    if args.plot:
        plot_directory(args.plot)
    spec = read_spec(args.spec)
    result, figures = run_fit_spec(spec, file=args.spec)
    if args.plot:
        _plot_fit(figures, args.plot)
    _write_json(result, args.output)
    best = ", ".join(f"{k}={v:.6g}" for k, v in result["best_fit"].items())
    log.info("fit written to %s: %s", args.output, best)
    return 0


def _plot_fit(figures: dict, directory: str) -> None:
    """Profile and contour figures whose axes and titles say what they show."""
    from eftflow.plotting import save_figure, use_agg
    from eftflow.plotting.fit import plot_contours, plot_profiles
    from eftflow.store.atomic import atomic_path

    plt = use_agg()
    up = figures["up"]
    with atomic_path(directory) as tmp:
        tmp.mkdir(parents=True)
        for prof in figures["profiles"]:
            fig = plot_profiles(prof, levels=(up,))
            ax = fig.axes[0]
            ax.set_ylabel(r"$\Delta(-2\ln L)$")
            ax.set_title(
                f"{prof.kind} of {prof.name} (others re-optimised); "
                f"dashed: {figures['level']} ({up:.3g})",
                fontsize=9,
            )
            save_figure(fig, tmp / f"profile_{prof.name}.png", bbox_inches="tight")
            plt.close(fig)
        for c in figures["contours"]:
            fig = plot_contours(c)
            fig.axes[0].set_title(
                f"{figures['contour_level']} region of ({c.x_name}, {c.y_name}): "
                f"$\\Delta(-2\\ln L)$ = {c.up:.3g}",
                fontsize=9,
            )
            save_figure(fig, tmp / f"contour_{c.x_name}_{c.y_name}.png", bbox_inches="tight")
            plt.close(fig)


def _json_safe(value):
    """``value`` with non-finite floats as ``None``: the output stays strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------


def check_keys(section, allowed, where: str, file):
    """:func:`eftflow.inference.specs.check_keys` (imported when first needed)."""
    from eftflow.inference.specs import check_keys as check

    return check(section, allowed, where, file)


def _write_json(obj, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_json_safe(obj), fh, indent=2, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _get(section: dict, key: str, where: str, file, *, kind=float, default=..., allowed=None):
    from eftflow.errors import InputError

    name = f"{where}.{key}" if where else key
    if key not in section:
        if default is ...:
            raise InputError("missing required key", file=file, field=name)
        return default
    value = section[key]
    if allowed is not None:
        if value not in allowed:
            raise InputError(
                f"must be one of {', '.join(map(str, allowed))}, got {value!r}",
                file=file,
                field=name,
            )
        return value
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InputError(
            f"expected {kind.__name__}, got {value!r}", file=file, field=name
        ) from None


def compute_limits(spec: dict, *, file: str | None = None) -> tuple[dict, dict]:
    """Compute the limits of a description; returns ``(JSON-able result, objects for plots)``."""
    from eftflow.errors import InputError

    check_keys(
        spec, {"kind", "cl", "test_stat", "nuisance_mode", "counting", "histogram"}, "", file
    )
    kind = _get(spec, "kind", "", file, allowed=("counting", "histogram"))
    cl = _get(spec, "cl", "", file, default=0.95)
    if not 0 < cl < 1:
        raise InputError(f"cl must be in (0, 1), got {cl}", file=file, field="cl")
    if kind == "counting":
        return _counting(spec, cl, file)
    if "histogram" not in spec:
        raise InputError("missing required key", file=file, field="histogram")
    return _histogram(spec, cl, file)


def _counting(spec, cl, file):
    from eftflow.errors import InputError
    from eftflow.inference.asimov import counting_model
    from eftflow.inference.limits import upper_limit

    sec = spec.get("counting")
    check_keys(
        sec,
        {"signal", "background", "observed", "signal_uncertainty", "background_uncertainty"},
        "counting",
        file,
    )
    s = _get(sec, "signal", "counting", file)
    b = _get(sec, "background", "counting", file)
    if not s > 0:
        raise InputError(f"signal must be > 0, got {s}", file=file, field="counting.signal")
    if not b >= 0:
        raise InputError(
            f"background must be >= 0, got {b}", file=file, field="counting.background"
        )
    su = _get(sec, "signal_uncertainty", "counting", file, default=None)
    bu = _get(sec, "background_uncertainty", "counting", file, default=None)
    for key, v in (("signal_uncertainty", su), ("background_uncertainty", bu)):
        if v is not None and not 0 <= v < 10:
            raise InputError(
                f"relative uncertainty must be in [0, 10), got {v}",
                file=file,
                field=f"counting.{key}",
            )
    n = _get(sec, "observed", "counting", file, default=None)
    if n is not None and not (math.isfinite(n) and n >= 0):
        raise InputError(
            f"observed count must be finite and >= 0, got {n}",
            file=file,
            field="counting.observed",
        )
    test_stat = _get(spec, "test_stat", "", file, default="qtilde", allowed=("q", "qtilde"))
    model = counting_model(s, b, signal_uncertainty=su, background_uncertainty=bu)
    data = model.make_data([b if n is None else n])
    try:
        ul = upper_limit(model, data, cl=cl, test_stat=test_stat)
    except InputError as err:  # name the file: the limit of this description is not defined
        if err.file is not None:
            raise
        raise InputError(err.message, file=file, field="counting") from None
    out = {"kind": "counting", **ul.to_dict()}
    if n is None:
        out["observed"] = None
        ul.observed = None
    return out, {"limit": ul}


def _histogram(spec, cl, file):
    import numpy as np

    from eftflow.errors import InputError
    from eftflow.inference.asimov import BinnedPoissonModel, Systematic
    from eftflow.inference.limits import model_exclusion

    sec = spec["histogram"]
    check_keys(
        sec,
        {"parameters", "theta", "signal", "background", "observed", "asimov_theta", "systematics"},
        "histogram",
        file,
    )
    mode = _get(
        spec, "nuisance_mode", "", file, default="profile", allowed=("profile", "marginalise")
    )

    def array(key, ndim, default=...):
        if key not in sec:
            if default is ...:
                raise InputError("missing required key", file=file, field=f"histogram.{key}")
            return default
        try:
            arr = np.asarray(sec[key], dtype=float)
        except (TypeError, ValueError):
            raise InputError("expected numbers", file=file, field=f"histogram.{key}") from None
        if arr.ndim != ndim or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise InputError(
                f"expected a non-empty {ndim}D array of finite numbers",
                file=file,
                field=f"histogram.{key}",
            )
        return arr

    theta = array("theta", 2)
    sig = array("signal", 2)
    n_points, k = theta.shape
    if sig.shape[0] != n_points:
        raise InputError(
            f"{sig.shape[0]} rows of counts for {n_points} grid points",
            file=file,
            field="histogram.signal",
        )
    if np.any(sig < 0):
        raise InputError("expected counts must be >= 0", file=file, field="histogram.signal")
    n_bins = sig.shape[1]
    names = sec.get("parameters") or [f"theta_{i}" for i in range(k)]
    if not isinstance(names, list) or len(names) != k:
        raise InputError(f"expected {k} parameter names", file=file, field="histogram.parameters")
    bkg = array("background", 1, default=np.zeros(n_bins))
    obs = array("observed", 1, default=None)
    for key, arr in (("background", bkg), ("observed", obs)):
        if arr is not None and arr.shape != (n_bins,):
            raise InputError(
                f"expected {n_bins} bins, got {arr.shape[0]}", file=file, field=f"histogram.{key}"
            )
    index = {tuple(t): i for i, t in enumerate(theta)}

    def yields(th):
        i = index.get(tuple(np.asarray(th, dtype=float)))
        if i is None:
            raise InputError(
                f"theta {th.tolist()} is not a grid point", file=file, field="histogram.theta"
            )
        return np.stack([sig[i], bkg])

    systs = []
    for j, item in enumerate(sec.get("systematics") or []):
        where = f"histogram.systematics[{j}]"
        check_keys(item, {"name", "signal", "background"}, where, file)
        if "name" not in item:
            raise InputError("missing required key", file=file, field=f"{where}.name")
        effects = {s: item[s] for s in ("signal", "background") if s in item}
        systs.append(Systematic(str(item["name"]), effects))
    try:
        model = BinnedPoissonModel(
            yields, n_bins=n_bins, samples=["signal", "background"], systematics=systs
        )
    except InputError as err:  # name the file and the key path in it
        raise InputError(err.message, file=file, field=f"histogram.{err.field}") from None
    data = model.make_data(obs) if obs is not None else None
    asimov_theta = array("asimov_theta", 1, default=None)
    if asimov_theta is not None:
        hits = np.flatnonzero(np.all(np.isclose(theta, asimov_theta), axis=1))
        if asimov_theta.shape != (k,) or hits.size == 0:
            raise InputError(
                "asimov_theta must be one of the grid points",
                file=file,
                field="histogram.asimov_theta",
            )
        asimov_theta = theta[hits[0]]
    if data is None and asimov_theta is None:
        raise InputError(
            "give observed counts and/or asimov_theta", file=file, field="histogram.observed"
        )
    res = model_exclusion(
        model, theta, data=data, theta_asimov=asimov_theta, cl=cl, mode=mode, refine=False
    )
    shape = _grid_shape(theta)
    for r in res.values():
        r.shape = shape
    out = {"kind": "histogram", "parameters": names, "cl": cl, "nuisance_mode": mode}
    out.update({key: r.to_dict() for key, r in res.items()})
    return out, {"exclusion": res, "names": names}


def _grid_shape(theta):
    """Shape if the points form a full Cartesian grid in ``ij`` order, else None."""
    import numpy as np

    axes = [np.unique(theta[:, i]) for i in range(theta.shape[1])]
    if int(np.prod([a.size for a in axes])) != len(theta):
        return None
    mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=-1)
    return tuple(a.size for a in axes) if np.array_equal(mesh, theta) else None


def _plot(figure_data: dict, spec: dict, path: str) -> None:
    from eftflow.plotting.fit import plot_exclusion, plot_limit_bands

    if "limit" in figure_data:
        plot_limit_bands(figure_data["limit"], path=path)
    else:
        plot_exclusion(figure_data["exclusion"], names=figure_data["names"], path=path)
