"""Section "Statistical model": results/run_inference/<name> (or results/fit_model/<name>).

For every model of the run: the data that were fitted (Asimov data at the injected point, or
observed data), the Asimov closure gate, best fit with Hesse and MINOS errors against the
injected values, nuisance pulls, ranked impacts, the coverage measured with toys, CLs limits and
the Neyman interval, with the figures ``eftflow infer`` wrote; and the diagnostics of the
ensembles that ``eftflow build-model`` wrote into the built model (``model.json`` under
``diagnostics``, figures in its ``plots/``): ensemble spread, variance against K, classifier
calibration and the reweighting closure χ²/ndf per observable. Reads results only.
"""

from __future__ import annotations

from pathlib import Path

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, report_section

__all__ = ["model_names"]

#: where the inference results of a model live, in order of preference
_STAGES = ("run_inference", "fit_model")


def model_names(config: dict) -> list[str]:
    """The models of a run: ``model.specs`` and, when enabled, the workflow's own model."""
    section = config.get("model") or {}
    names = list(section.get("specs") or {})
    demo = section.get("demo") or {}
    if demo.get("enabled", True) and "demo" in section and demo.get("name", "demo") not in names:
        names.append(demo.get("name", "demo"))
    return names


def _result_dirs(ctx: ReportContext) -> list[tuple[str, Path]]:
    names = model_names(ctx.config)
    found: dict[str, Path] = {}
    for stage in _STAGES:
        base = ctx.path(stage)
        candidates = names or (
            sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        )
        for name in candidates:
            if name not in found and (base / name / "result.json").is_file():
                found[name] = base / name
    missing = [n for n in names if n not in found]
    if missing:
        path = ctx.path("run_inference", missing[0], "result.json")
        raise SectionSkipped(f"{ctx.display(path)} does not exist")
    return sorted(found.items())


def _fit_table(res: dict) -> str:
    names = res.get("parameters") or []
    fit = res.get("fit") or {}
    values = dict(zip(fit.get("names") or names, fit.get("values") or []))
    errors = (res.get("covariance") or {}).get("errors") or {}
    if not errors:
        cov = res.get("covariance") or {}
        mat = cov.get("matrix") or []
        errors = {n: mat[i][i] ** 0.5 for i, n in enumerate(cov.get("names") or [])}
    injected = res.get("injected") or {}
    minos = res.get("minos") or {}
    fixed = dict(zip(fit.get("names") or names, fit.get("fixed") or [False] * len(names)))
    rows = []
    for n in names:
        m = minos.get(n) or {}
        rows.append(
            [
                n + (" (POI)" if n in (res.get("poi") or []) else ""),
                injected.get(n, "—"),
                values.get(n),
                "fixed" if fixed.get(n) else errors.get(n, "—"),
                -m["errn"] if "errn" in m else "—",
                m.get("errp", "—"),
            ]
        )
    what = "Asimov data" if res.get("data") != "observed" else "observed data"
    return H.table(
        rows,
        header=["parameter", "injected", "fitted", "Hesse error", "MINOS −", "MINOS +"],
        caption=f"Fit of {what}",
    )


def _closure(res: dict) -> str:
    c = res.get("closure")
    if not c:
        return H.note("The Asimov closure gate was not run for this model.", "warn")
    dev = c.get("deviation_in_errors") or {}
    worst = max(dev.items(), key=lambda kv: abs(kv[1]), default=(None, 0.0))
    return H.note(
        f"Asimov closure gate: {'passed' if c.get('passed') else 'FAILED'} "
        f"(largest deviation {H.num(abs(worst[1]))} σ for {worst[0]}, allowed {H.num(c.get('eps'))} σ)."
    )


def _toys(res: dict) -> list[str]:
    toys = res.get("toys")
    if not toys:
        return [H.note("No toys were run (inference.toys in the model spec): no coverage figure.")]
    rows = []
    for p, levels in (toys.get("coverage") or {}).items():
        for lv, c in sorted(levels.items(), key=lambda kv: float(kv[0])):
            rows.append([p, float(lv), c["coverage"], c["binomial_error"]])
    out = [
        H.table(
            rows,
            header=["POI", "nominal CL", "coverage", "binomial error"],
            caption=f"Coverage of the profile-likelihood intervals, {toys.get('n_toys')} toys "
            f"({H.num(toys.get('toys_per_second'))} toys/s)",
        )
    ]
    pulls = toys.get("pulls") or {}
    if pulls:
        out.append(
            H.details(
                "Pulls over the toys (mean, width)",
                H.table(
                    [[n, v["mean"], v["width"]] for n, v in pulls.items()],
                    header=["parameter", "mean", "width"],
                ),
            )
        )
    return out


def _limits(res: dict) -> list[str]:
    out = []
    if not res.get("cls") and not res.get("neyman"):
        out.append(
            H.note("No CLs limit and no Neyman construction were run for this model "
                   "(inference.cls, inference.neyman in the model spec).")
        )  # fmt: skip
    for p, c in (res.get("cls") or {}).items():
        exp = c.get("expected") or []
        if isinstance(exp, dict):  # {"-2sigma": ..., "+0sigma": ...} (UpperLimitResult.to_dict)
            exp = [exp.get(f"{n:+d}sigma", "—") for n in (-2, -1, 0, 1, 2)]
        out.append(
            H.table(
                [[p, c.get("cl"), c.get("observed"), *exp]],
                header=["POI", "CL", "observed", "−2σ", "−1σ", "expected", "+1σ", "+2σ"][
                    : 3 + len(exp)
                ],
                caption="CLs upper limit (asymptotic q̃)",
            )
        )
    ny = res.get("neyman")
    if ny:
        lo, hi = ny.get("interval") or (None, None)
        out.append(
            H.note(
                f"Neyman construction for {ny.get('poi')} at CL {H.num(ny.get('cl'))}: "
                f"[{H.num(lo)}, {H.num(hi)}] ({ny.get('n_toys')} toys per point, "
                f"{H.num(ny.get('toys_per_second'))} toys/s)."
            )
        )
    return out


def _figures(base: Path) -> list[str]:
    plots = base / "plots"
    order = ("pulls", "impacts", "coverage", "profile", "contour")
    files = sorted(plots.glob("*.png"), key=lambda p: (
        next((k for k, o in enumerate(order) if p.stem.startswith(o)), len(order)), p.name))  # fmt: skip
    return [H.image(p, p.stem.replace("_", " ")) for p in files]


def _model_json(ctx: ReportContext, name: str, res: dict) -> tuple[Path | None, dict | None]:
    """(built model directory, its model.json) of a result, when it is still there."""
    recorded = ctx.resolve(res["model_dir"]) if res.get("model_dir") else None
    for d in (recorded, ctx.path("build_model", name)):
        if d and (Path(d) / "model.json").is_file():
            try:
                return Path(d), ctx.json(Path(d) / "model.json")
            except SectionSkipped:
                continue
    return None, None


def _diagnostics(ctx: ReportContext, name: str, res: dict) -> list[str]:
    mdir, desc = _model_json(ctx, name, res)
    diags = (desc or {}).get("diagnostics")
    if diags is None:
        return [H.note("No ensemble diagnostics were recorded for this model.", "skip")]
    if not diags:
        return [H.note("Ensemble diagnostics: no process of the model uses a ratio ensemble.")]
    rows, rw_rows, fit_rows, warnings = [], [], [], []
    for d in diags:
        who = f"{d['region']}/{d['process']}"
        sp, vk, cal = d.get("spread") or {}, d.get("variance_vs_k") or {}, d.get("calibration")
        var = vk.get("variance") or []
        rows.append(
            [
                who,
                sp.get("n_members", "—"),
                sp.get("median_std", "—"),
                sp.get("max_std", "—"),
                var[0] if var else "—",
                var[-1] if var else "—",
                vk.get("slope") if vk.get("slope") is not None else "—",
                f"{H.num(cal['chi2'])}/{cal['ndf']}" if cal else "—",
                cal["p_value"] if cal else "—",
            ]
        )
        target = (d.get("target") or {}).get("benchmark", "target")
        for obs, o in ((d.get("reweighting") or {}).get("observables") or {}).items():
            rw_rows.append([who, target, obs, o["chi2"], o["ndf"], o["chi2_ndf"], o["p_value"]])
        for f in d.get("store_fits") or []:
            pull = "—" if f.get("pull") is None else f"{f['pull']:+.2f}"
            fit_rows.append([who, f["parameter"], f["true"], f["fitted"], f["error"], pull])
        warnings += [f"{who}: {w}" for w in d.get("warnings") or []]
    out = [
        H.table(
            rows,
            header=[
                "region/process",
                "members",
                "median σ(log r̂)",
                "max σ(log r̂)",
                "Var, K=1",
                "Var, all K",
                "slope (−1 expected)",
                "calibration χ²/ndf",
                "calibration p",
            ],
            caption="Ensemble diagnostics at the Asimov point: per-event spread of the members' "
            "log r̂, variance of the ensemble mean against ensemble size, classifier calibration",
        )
    ]
    if rw_rows:
        out.append(
            H.table(
                rw_rows,
                header=["region/process", "target", "observable", "χ²", "ndf", "χ²/ndf", "p"],
                caption="Reweighting closure: reference events reweighted with r̂ against the "
                "target benchmark",
            )
        )
    if fit_rows:
        out.append(
            H.table(
                fit_rows,
                header=["region/process", "parameter", "true", "fitted", "error", "pull"],
                caption="Fits to the store's own weights: the pool weighted with the Monte Carlo "
                "truth at points between the reference and the target, fitted with the model "
                "(its rate, the store's shape). Unlike the Asimov closure and the toys, these "
                "data are not the model's own prediction: a fit further from the reference than "
                "the truth means an estimator too insensitive, a fit closer one too noisy (the "
                "pull also carries the pool's Monte Carlo noise, a few tenths for hundreds of "
                "events)",
            )
        )
    if warnings:
        out.append(H.note("Diagnostic warnings (not a failure): " + "; ".join(warnings), "warn"))
    else:
        out.append(H.note("Every ensemble diagnostic is within its thresholds."))
    if mdir is not None:
        out += [
            H.image(p, p.stem.replace("_", " "))
            for p in sorted((mdir / "plots").glob("diag_*.png"))
        ]
    return out


def _shapes(ctx: ReportContext, name: str) -> list[str]:
    """The up/down networks of the workflow's own model (rule train_nuisance_shapes)."""
    from eftflow.inference.model.shapes import worst_closure

    demo = (ctx.config.get("model") or {}).get("demo") or {}
    summary_path = ctx.path("train_nuisance_shapes", "summary.json")
    enabled = (demo.get("nuisance_shapes") or {}).get("enabled", True)
    if name != demo.get("name", "demo") or not enabled or not summary_path.is_file():
        return []
    summary = ctx.json(summary_path)
    rows = []
    for nu, entry in (summary.get("nuisances") or {}).items():
        for side in ("up", "down"):
            c = (entry.get("check") or {}).get(side) or {}
            hist, worst = worst_closure(c)
            rows.append(
                [
                    nu,
                    "+1" if side == "up" else "−1",
                    c.get("rate", "—"),
                    c.get("mean_g", "—"),
                    c.get("shape_rms", "—"),
                    c.get("correlation", "—"),
                    "—" if hist is None else hist,
                    f"{worst['chi2']:.1f}/{worst['ndf']}" if worst else "—",
                    (entry.get(side) or {}).get("effective_samples", "—"),
                ]
            )
    if not rows:
        return [
            H.note(
                "Shapes of the nuisance parameters: the store has no weights of a scale or pdf "
                "nuisance parameter, so the model takes none (their rates neither).",
                "warn",
            )
        ]
    opts = summary.get("options") or {}
    out = [
        H.table(
            rows,
            header=[
                "nuisance",
                "ν",
                "rate ratio",
                "E₀[ĝ] (1 expected)",
                "RMS of log ĝ",
                "corr. with log w±/w₀",
                "max hist. difference",
                "worst hist. χ²/ndf (paired)",
                "ESS (training)",
            ],
            caption=f"Shapes of the nuisance parameters: {opts.get('method', '?')} networks "
            "ĝ±(x) = p(x|ν=±1)/p(x|ν=0) in the model as up/down variations (code 4), the rate "
            f"ratio as a normsys; checked on the {opts.get('check_partition', '?')} events "
            "(weighted by the nominal)",
        )
    ]
    figure = summary_path.parent / str(summary.get("figure") or "shapes.png")
    if figure.is_file():
        out.append(
            H.image(
                figure,
                "Each observable's histogram at ν = ±1 over ν = 0: the varied weights (lines) "
                "against the nominal weights times ĝ(x) (points)",
            )
        )
    return out


#: information ratio model/truth above which the report warns: MINOS on a likelihood that is not
#: quadratic and the Fisher information at one point can differ by some ten percent, and the pool
#: the model is fitted on is a Monte Carlo sample of its own
TRUTH_EXCESS = 1.25


def _information(ctx: ReportContext, name: str, res: dict) -> list[str]:
    """The demo model's error on its POI next to what the run's Fisher analyses expect for the
    same fit (the same parameters fixed, the nuisances profiled, at the model's luminosity)."""
    import numpy as np

    from eftflow.inference.fisher import expected_error
    from eftflow.inference.model.demo import DEMO_DEFAULTS

    demo = (ctx.config.get("model") or {}).get("demo") or {}
    path = ctx.path("compute_fisher_information", "fisher_information.json")
    poi = (res.get("poi") or [None])[0] if isinstance(res.get("poi"), list) else res.get("poi")
    m = (res.get("minos") or {}).get(poi) or {}
    if name != demo.get("name", "demo") or not path.is_file() or not m.get("errp"):
        return []
    fisher = ctx.json(path)
    fit = res.get("fit") or {}
    fixed = [n for n, f in zip(fit.get("names") or [], fit.get("fixed") or []) if f]
    lum = float(demo.get("luminosity", DEMO_DEFAULTS["luminosity"]))
    sigma = 0.5 * (abs(m["errn"]) + m["errp"])
    rows, notes = [[f"the model (MINOS, mean of − and +; L = {H.num(lum)} pb⁻¹)", sigma, "1"]], []
    analyses = [
        (f"Fisher: {k} ({a.get('kind')})", a) for k, a in (fisher.get("analyses") or {}).items()
    ]
    evaluation = ctx.path("evaluate_estimator", "evaluation.json")
    if evaluation.is_file():  # the score ensemble's detector-level information
        ev = ctx.json(evaluation)
        if isinstance(ev.get("detector_plus_rate"), dict):
            label = f"{str(ev.get('method', 'score')).upper()} ensemble: detector level + rate"
            analyses.append((label + " (no nuisance parameters)", ev["detector_plus_rate"]))
    for label, a in analyses:
        block = a.get("profiled") or a
        info = np.asarray(block["information"], float)
        names = list(a["parameter_names"])[: len(info)]
        if poi not in names:
            continue
        err = expected_error(info, names, poi, fixed=[n for n in fixed if n in names],
                             scale=lum / float(a.get("luminosity") or fisher["luminosity"]))  # fmt: skip
        ratio = (err / sigma) ** 2 if np.isfinite(err) else float("inf")
        rows.append([label, err, ratio])
        if a.get("kind") == "truth" and ratio > TRUTH_EXCESS:
            notes.append(
                H.note(
                    f"The model's error on {poi} is smaller than the truth level allows "
                    f"({H.num(sigma)} against {H.num(err)}; information ratio {H.num(ratio)}): "
                    "no detector-level model can hold more information than the parton-level "
                    "weights. An estimator whose log r̂ has per-event noise in its θ dependence "
                    "claims information it does not have (and pulls fits towards the "
                    "reference): see the fits to the store's own weights above, and train it "
                    "on more events.",
                    "warn",
                )
            )
        if a.get("kind") in ("histo", "histo2d", "rate") and ratio < 1:
            notes.append(
                H.note(
                    f"The model's error on {poi} is larger than “{label}” expects "
                    f"({H.num(sigma)} against {H.num(err)}): the estimator extracts less "
                    "information than that simple analysis; check its training.",
                    "warn",
                )
            )
    first = next(iter((fisher.get("analyses") or {}).values()), {})
    point = dict(zip(first.get("parameter_names") or [], fisher.get("theta") or []))
    injected = res.get("injected") or {}
    where = ""
    if any(abs(float(injected.get(k, v)) - float(v)) > 0 for k, v in point.items()):
        where = " (the Fisher information is at another θ than the fit's Asimov point)"
    caption = (
        f"Information reached: the error on {poi} against the run's Fisher analyses for the same "
        f"fit ({', '.join(fixed) or 'no parameter'} fixed, nuisance parameters profiled with unit "
        "constraints, scaled to the model's luminosity; the estimator-spread term is the model's "
        "own). The last column is the model's information relative to each, (σ_analysis / "
        "σ_model)²: below 1 the analysis holds more (the truth level is a bound no "
        "detector-level analysis reaches), above 1 the model extracts more" + where
    )
    header = ["", f"σ({poi})", "information: model / analysis"]
    return [H.table(rows, header=header, caption=caption), *notes]


@report_section("Statistical model", order=75)
def statistical_model(ctx: ReportContext) -> str:
    found = _result_dirs(ctx)
    if not found:
        return H.note(
            "No statistical model was fitted in this run (config model.specs is empty and "
            "model.demo is off; see docs/statistical-model.md)."
        )
    out = []
    for name, base in found:
        res = ctx.json(base / "result.json")
        out.append(f"<h3>{H.esc(name)}</h3>")
        out.append(H.note(f"From {ctx.display(base)}."))
        out.append(_closure(res))
        out += _diagnostics(ctx, name, res)
        out += _shapes(ctx, name)
        out.append(_fit_table(res))
        out += _information(ctx, name, res)
        out += _toys(res)
        out += _limits(res)
        out += _figures(base)
    return "\n".join(out)
