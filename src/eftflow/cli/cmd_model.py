"""``eftflow fit-model SPEC -o OUTDIR``: fit the combined statistical model of an analysis.

SPEC is the YAML description of :mod:`eftflow.inference.model.spec` (pyhf workspaces for binned
regions, ratio ensembles + reference events for unbinned regions, parameters). The command runs
the Asimov closure gate (fails the stage with the numbers when the fit of Asimov data does not
return the injected point), fits the chosen data set, and writes ``OUTDIR/result.json`` with
the best fit, covariance, MINOS intervals, profiles, contours, pulls, impacts (pre/post-fit,
ranked) and optional CLs limits, plus figures in ``OUTDIR/plots/``. OUTDIR is written to a
temporary directory and renamed when complete.
"""

from __future__ import annotations

import argparse
import json
import logging

__all__ = ["register", "run_fit_model"]

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit-model",
        help="fit a binned + unbinned statistical model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", help="model spec (YAML)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--skip-closure", action="store_true", help="do not run the closure gate")
    p.set_defaults(handler=run_fit_model)


def _jsonable(v):
    import numpy as np

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def run_fit_model(args) -> int:
    from pathlib import Path

    from eftflow.inference.model.inference import ModelFitter, asimov_closure, cls_upper_limit
    from eftflow.inference.model.spec import INFERENCE_DEFAULTS, build_model, load_spec
    from eftflow.store.atomic import atomic_path

    spec = load_spec(args.spec)
    model, observed = build_model(spec)
    inf = {**INFERENCE_DEFAULTS, **(spec.get("inference") or {})}
    injected = spec.get("asimov") or {}
    result: dict = {"parameters": model.names, "poi": model.poi}
    if not args.skip_closure:
        result["closure"] = asimov_closure(model, injected, eps=float(inf["closure_eps"]))
        log.info("Asimov closure passed (eps %.3g)", inf["closure_eps"])
    if spec.get("data", "asimov") == "observed":
        data = model.observed(events=observed)
    else:
        data = model.asimov(injected)
    fitter = ModelFitter(model, data)
    fr = fitter.run()
    result["fit"] = fr.optimize.to_dict()
    result["covariance"] = fr.covariance.to_dict()
    result["minos"] = {p: fitter.minos(p).__dict__ for p in model.poi}
    result["pulls"] = fitter.pulls()
    result["impacts"] = {p: fitter.impacts(p) for p in model.poi} if inf["impacts"] else {}
    result["profiles"] = {}
    for name in inf["profiles"]:
        prof = fitter.profile(name, nvalues=int(inf["nvalues"]))
        result["profiles"][name] = {"values": prof.values, "delta_nll": prof.stat - prof.fmin}
    result["contours"] = []
    for x, y in inf["contours"]:
        c = fitter.contour(x, y, numpoints=int(inf["contour_points"]))
        result["contours"].append(
            {"x_name": x, "y_name": y, "x": c.x, "y": c.y, "center": list(c.center)}
        )
    if inf["cls"]:
        result["cls"] = {p: cls_upper_limit(model, data, p) for p in model.poi}
    out = Path(args.output)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "result.json").write_text(json.dumps(_jsonable(result), indent=2, default=str))
        if not args.no_plots:
            from eftflow.plotting import model as pm

            plots = tmp / "plots"
            plots.mkdir()
            for name, pr in result["profiles"].items():
                pm.plot_profile(
                    name, pr["values"], pr["delta_nll"], path=plots / f"profile_{name}.png"
                )
            for c in result["contours"]:
                pm.plot_contour(
                    c["x_name"],
                    c["y_name"],
                    c["x"],
                    c["y"],
                    c["center"],
                    path=plots / f"contour_{c['x_name']}_{c['y_name']}.png",
                )
            if result["pulls"]:
                pm.plot_pulls(result["pulls"], path=plots / "pulls.png")
            for p, rows in result["impacts"].items():
                if rows:
                    pm.plot_impacts(rows, p, path=plots / f"impacts_{p}.png")
    log.info("wrote %s", out)
    return 0
