"""The statistical model of an analysis: ``build-model``, ``infer`` and ``fit-model``.

``eftflow build-model SPEC -o MODEL_DIR``
    Validates the YAML spec of :mod:`eftflow.inference.model.spec` (pyhf workspaces for binned
    regions, ratio ensembles + reference events for unbinned regions, parameters, inference
    options), builds the model, runs the **Asimov closure gate** (the stage fails with the
    injected and fitted numbers when the fit of Asimov data does not return the injected point)
    and writes a self-contained model description: ``model.json`` (the resolved spec with
    absolute paths, SHA-256 of every referenced ensemble / event file, the parameter table, the
    closure result) and ``binned/<region>.json`` (the pyhf workspace of each binned region).
    Then the **diagnostics** (:mod:`eftflow.inference.model.diagnostics`; warnings, never a
    failure) of every unbinned process whose log-ratio is an ensemble: the per-event ensemble
    spread and the variance of the ensemble mean against K on the region's pool at the Asimov
    point and, for a pool from an event store weighted at a reference point, the reweighting
    closure and the classifier calibration between the reference and another benchmark of the
    setup; numbers in ``model.json`` under ``diagnostics``, figures in ``plots/``.

``eftflow infer MODEL_DIR -o OUT`` (also ``run-inference``)
    Reads a built model (checking the hashes of its inputs), fits the chosen data set and writes
    ``OUT/result.json``: best fit, covariance, MINOS intervals, profiles, contours, pulls,
    impacts (pre/post-fit, ranked), optional CLs limits, optional toys (pulls and coverage) and
    Neyman construction; figures in ``OUT/plots/``.

``eftflow write-model-spec --store S --setup F --ensemble E [--nuisance-shapes D] -o SPEC``
    Writes the spec of the workflow's own model (config ``model.demo``) from the run's outputs:
    the combined store's test events as the pool, the ratio ensemble, L·σ(θ) from the morphing,
    the systematics' rate effects and, with ``--nuisance-shapes``, the up/down networks of
    their shape effects (see :mod:`eftflow.inference.model.demo`).

``eftflow fit-model SPEC -o OUT``
    Both in one step: ``OUT/model/`` is the built model, ``OUT/result.json`` and ``OUT/plots/``
    the inference.

Every output directory is written to a temporary path and renamed when complete: a failed
command leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import logging

from eftflow.cli.common import positive_int

__all__ = [
    "register",
    "run_build_model",
    "run_infer",
    "run_fit_model",
    "run_write_model_spec",
    "infer_model",
    "model_diagnostics",
]

from eftflow.jsonable import to_jsonable

log = logging.getLogger(__name__)


def _description(command: str) -> str:
    """The part of the module docstring about ``eftflow <command>``, and its closing note."""
    doc = __doc__.strip()
    sections = doc.split("\n\n``eftflow ")
    part = next(p for p in sections[1:] if p.startswith(command + " "))
    note = doc.rsplit("\n\n", 1)[-1]
    return f"{sections[0]}\n\n``eftflow {part.split(chr(10) + chr(10))[0]}\n\n{note}"


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    b = subparsers.add_parser(
        "build-model",
        help="validate a model spec, build the model and run the Asimov closure gate",
        description=_description("build-model"),
        formatter_class=fmt,
    )
    b.add_argument("spec", help="model spec (YAML)")
    b.add_argument("-o", "--output", required=True, help="model directory to write")
    b.add_argument("--skip-closure", action="store_true", help="do not run the closure gate")
    _no_diag(b)
    _threads(b)
    b.set_defaults(handler=run_build_model)

    i = subparsers.add_parser(
        "infer",
        aliases=["run-inference"],
        help="fit, MINOS, profiles, contours, pulls, impacts, limits, toys of a built model",
        description=_description("infer"),
        formatter_class=fmt,
    )
    i.add_argument("model", help="model directory written by build-model")
    i.add_argument("-o", "--output", required=True, help="output directory")
    i.add_argument("--no-plots", action="store_true", help="skip the figures")
    _threads(i)
    i.set_defaults(handler=run_infer)

    f = subparsers.add_parser(
        "fit-model",
        help="build-model and infer in one step",
        description=_description("fit-model"),
        formatter_class=fmt,
    )
    f.add_argument("spec", help="model spec (YAML)")
    f.add_argument("-o", "--output", required=True, help="output directory")
    f.add_argument("--no-plots", action="store_true", help="skip the figures")
    f.add_argument("--skip-closure", action="store_true", help="do not run the closure gate")
    _no_diag(f)
    _threads(f)
    f.set_defaults(handler=run_fit_model)

    w = subparsers.add_parser(
        "write-model-spec",
        help="write the spec of the workflow's model (config model.demo) from the run's outputs",
        description=_description("write-model-spec"),
        formatter_class=fmt,
    )
    w.add_argument("--store", required=True, help="combined event store (zarr)")
    w.add_argument("--setup", required=True, help="setup file (HDF5)")
    w.add_argument("--ensemble", required=True, help="ratio ensemble directory")
    w.add_argument(
        "--nuisance-shapes",
        default=None,
        metavar="DIR",
        help="up/down networks of the shape nuisances (eftflow train-nuisance-shapes)",
    )
    w.add_argument(
        "--config",
        default=None,
        help="config file or inline JSON with the `model` section (model.demo)",
    )
    w.add_argument("-o", "--output", required=True, help="spec file to write (YAML)")
    w.set_defaults(handler=run_write_model_spec)


def _no_diag(p) -> None:
    p.add_argument(
        "--no-diagnostics",
        action="store_true",
        help="skip the ensemble diagnostics (spread, variance vs K, reweighting, calibration)",
    )


def _threads(p) -> None:
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch threads for the likelihood (default: torch's choice; give the job's cores)",
    )


def _set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(int(n))


def _build(spec_path, *, skip_closure: bool):
    """(spec, model, observed events, inference options, closure report) of a spec file."""
    from eftflow.inference.model.inference import ClosureError, asimov_closure
    from eftflow.inference.model.spec import build_model, inference_options, load_spec

    spec = load_spec(spec_path)
    model, observed = build_model(spec)
    inf = inference_options(spec, model)
    closure = None
    if not skip_closure:
        try:
            closure = asimov_closure(model, spec.get("asimov") or {}, eps=float(inf["closure_eps"]))
        except ClosureError as err:
            raise ClosureError(err.message, file=spec["_file"], field="closure") from None
        log.info("Asimov closure passed (eps %.3g)", inf["closure_eps"])
    return spec, model, observed, inf, closure


def infer_model(model, observed: dict, spec: dict, inf: dict) -> dict:
    """Run every inference step the options ask for; returns the result mapping."""
    import time

    import numpy as np

    from eftflow.inference.model.inference import (
        ModelFitter,
        cls_upper_limit,
        neyman_construction,
        toy_study,
    )

    injected = spec.get("asimov") or {}
    kind = spec.get("data", "asimov")
    data = model.observed(events=observed) if kind == "observed" else model.asimov(injected)
    result: dict = {"parameters": model.names, "poi": model.poi, "data": kind}
    if kind != "observed":
        result["injected"] = dict(zip(model.names, model.vector(injected).tolist()))
    t0 = time.perf_counter()
    fitter = ModelFitter(model, data)
    fr = fitter.run()
    result["fit"] = fr.optimize.to_dict()
    result["covariance"] = fr.covariance.to_dict()
    result["fit_seconds"] = time.perf_counter() - t0
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
    if inf["toys"] is not None:
        t = inf["toys"]
        truth = t.get("truth") or injected
        rng = np.random.default_rng(int(t.get("seed", 1)))
        study = toy_study(
            model, truth, int(t.get("n_toys", 200)), rng, batch=int(t.get("batch", 500))
        )
        result["toys"] = {**study, "truth": dict(zip(model.names, model.vector(truth).tolist()))}
    if inf["neyman"] is not None:
        ny = inf["neyman"]
        res = neyman_construction(
            model,
            data,
            ny["grid"],
            int(ny.get("n_toys", 100)),
            np.random.default_rng(int(ny.get("seed", 2))),
            poi=ny["poi"],
            cl=float(ny.get("cl", 0.68)),
            batch=int(ny.get("batch", 2000)),
        )
        result["neyman"] = res.to_dict()
    return result


def _write_plots(plots, result: dict) -> None:
    from eftflow.plotting import model as pm

    plots.mkdir()
    figs = []
    for name, pr in result["profiles"].items():
        figs.append(
            pm.plot_profile(name, pr["values"], pr["delta_nll"], path=plots / f"profile_{name}.png")
        )
    for c in result["contours"]:
        figs.append(
            pm.plot_contour(
                c["x_name"],
                c["y_name"],
                c["x"],
                c["y"],
                c["center"],
                path=plots / f"contour_{c['x_name']}_{c['y_name']}.png",
            )
        )
    if result["pulls"]:
        figs.append(pm.plot_pulls(result["pulls"], path=plots / "pulls.png"))
    for p, rows in result["impacts"].items():
        if rows:
            figs.append(pm.plot_impacts(rows, p, path=plots / f"impacts_{p}.png"))
    for p, cov in ((result.get("toys") or {}).get("coverage") or {}).items():
        levels = sorted(cov, key=float)
        figs.append(
            pm.plot_coverage(
                [float(lv) for lv in levels],
                [cov[lv]["coverage"] for lv in levels],
                [cov[lv]["binomial_error"] for lv in levels],
                path=plots / f"coverage_{p}.png",
                label=f"{p}: {result['toys']['n_toys']} toys",
            )
        )
    if figs:
        import matplotlib.pyplot as plt  # after the plotting module chose Agg

        for f in figs:
            plt.close(f)


def _write_result(tmp, result: dict, *, plots: bool) -> None:
    (tmp / "result.json").write_text(json.dumps(to_jsonable(result), indent=2, default=str))
    if plots:
        _write_plots(tmp / "plots", result)


def run_build_model(args) -> int:
    from pathlib import Path

    from eftflow.inference.model.spec import write_model_dir
    from eftflow.store.atomic import atomic_path

    _set_threads(args.threads)
    spec, model, _, _, closure = _build(args.spec, skip_closure=args.skip_closure)
    out = Path(args.output)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_model_dir(tmp, spec, model, closure=closure)
        if not args.no_diagnostics:
            _add_diagnostics(tmp, spec, model)
    log.info("wrote the built model %s (%d parameters)", out, len(model.names))
    return 0


def _add_diagnostics(directory, spec: dict, model) -> None:
    """Run :func:`model_diagnostics`, add the numbers to ``directory/model.json`` under
    ``diagnostics`` (without the per-event arrays) and draw them in ``directory/plots/``."""
    import re

    from eftflow.plotting import diagnostics as pd

    diags = model_diagnostics(spec, model)
    plots = directory / "plots"
    plots.mkdir(exist_ok=True)
    safe = lambda s: re.sub(r"[^A-Za-z0-9_.-]", "_", str(s))  # noqa: E731

    def draw(plot, *args, path):
        import matplotlib.pyplot as plt  # after the plotting module chose Agg

        plt.close(plot(*args, path=path))  # saved: closed at once (a model may have many)

    for d in diags:
        stem = f"diag_{safe(d['region'])}_{safe(d['process'])}"
        if "spread" in d:
            draw(pd.plot_spread, d["spread"].pop("std"), path=plots / f"{stem}_spread.png")
            d["spread"].pop("mean", None)
        if "variance_vs_k" in d:
            draw(pd.plot_variance_vs_k, d["variance_vs_k"], path=plots / f"{stem}_variance_k.png")
        if "calibration" in d:
            draw(pd.plot_calibration, d["calibration"], path=plots / f"{stem}_calibration.png")
        for name, obs in ((d.get("reweighting") or {}).get("observables") or {}).items():
            draw(pd.plot_reweighting, name, obs, path=plots / f"{stem}_reweight_{safe(name)}.png")
    mfile = directory / "model.json"
    desc = json.loads(mfile.read_text())
    desc["diagnostics"] = to_jsonable(diags)
    mfile.write_text(json.dumps(desc, indent=2, default=float))


def _store_target(spec: dict, u: dict):
    """(target events, target weights, {parameter: value}, benchmark) of a store region weighted
    at a reference point: the same pool events weighted at the first other benchmark of the
    setup whose event weights are all non-negative; ``None`` when there is none."""
    from pathlib import Path

    import numpy as np

    from eftflow.errors import InputError
    from eftflow.inference.model.store_source import pool_from_store, reference_theta
    from eftflow.setup import EFTSetup

    pw = u.get("pool_weights")
    if "store" not in u or not isinstance(pw, dict) or "setup" not in pw:
        return None
    base = Path(spec.get("_base", "."))
    st = EFTSetup.from_file(base / str(pw["setup"]))
    ref = reference_theta(st, pw.get("theta", "sm"))
    names = list(st.parameter_names)
    for b in st.physics_benchmarks():
        vec = np.asarray(b.vector(names), float)
        if np.allclose(vec, ref):
            continue
        try:
            x, w = pool_from_store(
                base / str(u["store"]),
                partition=str(u.get("partition", "all")),
                observables=u.get("observables"),
                max_events=u.get("max_events"),
                setup=base / str(pw["setup"]),
                theta=b.name,
            )
        except InputError as err:
            log.info("diagnostics: benchmark %s is no target (%s)", b.name, err.message)
            continue
        return x, w, dict(zip(names, vec.tolist())), b.name
    return None


#: fractions of the way from the reference to the target at which the model is fitted to the
#: pool weighted with the store's own weights (:func:`store_weight_fits`)
STORE_FIT_FRACTIONS = (0.25, 0.5, 0.75)


def store_weight_fits(spec: dict, model, region, u: dict, target, *, max_events: int) -> list[dict]:
    """Fit ``model`` to its pool weighted with the store's own weights at points between the
    reference and the target benchmark (:data:`STORE_FIT_FRACTIONS` of the way), for each free
    parameter of interest: ``{parameter, reference, true, fitted, error, pull, fraction}``.

    The region's total is the model's expected yield at the point (the rate is the model's own,
    from the morphing); only the shape is tested against the Monte Carlo truth. Runs for models
    with this one region only (other regions would need data of their own); ``[]`` otherwise.
    """
    from pathlib import Path

    import numpy as np
    import torch

    from eftflow.inference.model.batchfit import minimize_batched
    from eftflow.inference.model.store_source import pool_from_store

    if len(model.regions) != 1 or not target:
        return []
    _x_t, _w_t, theta_t, _bench = target
    base = Path(spec.get("_base", "."))
    pw = u["pool_weights"]
    asimov = spec.get("asimov") or {}
    ref_vec = model.vector(asimov)
    pois = [p for p in model.poi if not model.fixed[model.index(p)] and p in theta_t]
    out = []
    for f in STORE_FIT_FRACTIONS:
        point = {k: float(ref_vec[model.index(k)]) + f * (v - float(ref_vec[model.index(k)]))
                 for k, v in theta_t.items() if k in model.names}  # fmt: skip
        values = {**asimov, **point}
        x, w = pool_from_store(
            base / str(u["store"]), partition=str(u.get("partition", "all")),
            observables=u.get("observables"), max_events=u.get("max_events"),
            setup=base / str(pw["setup"]), theta=point,
        )  # fmt: skip
        n = min(len(region.pool), int(max_events), len(x))
        with torch.no_grad():
            total = float(model.asimov(values).regions[region.name].weights.sum())
        w = np.asarray(w, float)[:n]
        data = model.observed(
            events={region.name: np.asarray(x, float)[:n]},
            weights={region.name: w / w.sum() * total},
        )
        fr = minimize_batched(model, data, model.vector(values)[None])
        best, err = fr.values[0], fr.errors()[0]
        for p in pois:
            i = model.index(p)
            true = float(point[p])
            e = float(err[i])
            out.append({
                "parameter": p, "fraction": f, "reference": float(ref_vec[i]), "true": true,
                "fitted": float(best[i]), "error": e,
                "pull": (float(best[i]) - true) / e if e > 0 else None,
            })  # fmt: skip
    return out


def model_diagnostics(spec: dict, model, *, max_events: int = 50_000) -> list[dict]:
    """Diagnostics (:func:`eftflow.inference.model.diagnostics.run_diagnostics`) of every
    unbinned process whose log-ratio is an ensemble, on at most ``max_events`` pool events at
    the Asimov point (plus the reweighting closure and calibration for store pools weighted at
    a reference point). One mapping per process, with ``region``, ``process`` and, for the
    reweighting, ``target`` (benchmark and θ)."""
    import numpy as np
    import torch

    from eftflow.inference.model.diagnostics import check_store_fits, run_diagnostics
    from eftflow.inference.model.unbinned import EnsembleLogRatio, UpDownLogRatio

    point = model.vector(spec.get("asimov") or {})
    entries = {u.get("name"): u for u in spec.get("unbinned") or []}
    out = []
    for region in model.regions:
        if region.kind != "unbinned":
            continue
        u = entries.get(region.name) or {}
        n = min(len(region.pool), int(max_events))
        pool, a = region.pool[:n], region.pool_weights[:n]
        target = None
        for proc in region.processes:
            prov = proc.log_ratio
            if isinstance(prov, UpDownLogRatio):
                prov = prov.nominal
            if not isinstance(prov, EnsembleLogRatio):
                continue
            fn = prov.bind(pool, dtype=torch.float64, device=model.device)

            def members(values, fn=fn, prov=prov):
                p = torch.tensor(
                    [[values.get(k, point[model.index(k)]) for k in prov.parameters]],
                    dtype=torch.float64,
                    device=model.device,
                )
                with torch.no_grad():
                    return fn(p)[:, 0].cpu().numpy()  # (K, n)

            kw: dict = {"members_log_r": members({})}
            if target is None:
                target = _store_target(spec, u) or False
            extra = {}
            if target:
                x_t, w_t, theta_t, bench = target
                lr = members(theta_t).mean(0)
                w_t = np.asarray(w_t, float)[:n]
                kw["reweighting"] = {
                    "x_ref": pool,
                    "w_ref": a,
                    "log_r": lr,
                    "x_target": np.asarray(x_t, float)[:n],
                    "w_target": w_t,
                    "names": u.get("observables"),
                    "same_events": True,  # the pool at the target: errors of paired samples
                }
                kw["calibration"] = {
                    "log_r": np.concatenate([lr, lr]),
                    "labels": np.r_[np.ones(n), np.zeros(n)],
                    "weights": np.concatenate([w_t, a]),
                    "events": np.r_[np.arange(n), np.arange(n)],
                }
                extra["target"] = {"benchmark": bench, "theta": theta_t}
            res = run_diagnostics(**kw, rng=np.random.default_rng(0))
            if target and len(region.processes) == 1:
                fits = store_weight_fits(spec, model, region, u, target, max_events=max_events)
                if fits:
                    res["store_fits"] = fits
                    res["warnings"] += check_store_fits(fits, res["thresholds"])
                    res["passed"] = not res["warnings"]
            out.append({"region": region.name, "process": proc.name, **extra, **res})
            log.info(
                "diagnostics of %s/%s: %s",
                region.name,
                proc.name,
                "passed" if res["passed"] else "; ".join(res["warnings"]),
            )
    return out


def run_infer(args) -> int:
    from pathlib import Path

    from eftflow.inference.model.spec import build_model, inference_options, load_model_dir
    from eftflow.store.atomic import atomic_path

    _set_threads(args.threads)
    spec, desc = load_model_dir(args.model)
    model, observed = build_model(spec)
    inf = inference_options(spec, model)
    result = infer_model(model, observed, spec, inf)
    result["model_dir"] = str(Path(args.model).resolve())
    result["closure"] = desc.get("closure")
    out = Path(args.output)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        _write_result(tmp, result, plots=not args.no_plots)
    log.info("wrote %s", out)
    return 0


def run_fit_model(args) -> int:
    from pathlib import Path

    from eftflow.inference.model.spec import write_model_dir
    from eftflow.store.atomic import atomic_path

    _set_threads(args.threads)
    spec, model, observed, inf, closure = _build(args.spec, skip_closure=args.skip_closure)
    result = infer_model(model, observed, spec, inf)
    result["closure"] = closure
    out = Path(args.output)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "model").mkdir()
        write_model_dir(tmp / "model", spec, model, closure=closure)
        if not args.no_diagnostics:
            _add_diagnostics(tmp / "model", spec, model)
        result["model_dir"] = str((out / "model").resolve())
        _write_result(tmp, result, plots=not args.no_plots)
    log.info("wrote %s", out)
    return 0


def demo_options(value: str | None) -> dict:
    """``model.demo`` of ``--config`` (inline JSON or a config file), defaults filled in."""
    from eftflow.cli.common import load_stage_config
    from eftflow.config import load_schema, validate_config

    cfg = load_stage_config(value)
    source = value if value and not value.strip().startswith("{") else "--config"
    sub = {"model": cfg.get("model") or {}}
    schema = {"type": "object", "properties": {"model": load_schema()["properties"]["model"]}}
    validate_config(sub, file=source, schema=schema)
    return dict(sub["model"]["demo"])


def run_write_model_spec(args) -> int:
    from eftflow.inference.model.demo import write_demo_spec

    opts = demo_options(args.config)
    write_demo_spec(
        args.output,
        store=args.store,
        setup=args.setup,
        ensemble=args.ensemble,
        options=opts,
        nuisance_shapes=args.nuisance_shapes,
    )
    return 0
