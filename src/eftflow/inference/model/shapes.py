"""Shape effects of nuisance parameters from the event store: up/down ratio networks.

A ``scale`` or ``pdf`` systematic changes the rate *and* the shapes of the distributions. The
rate part enters the workflow's model as a ``normsys`` (:func:`~eftflow.inference.model.demo.
rate_effects`); the shape part as a pair of x-only networks per nuisance parameter ν,

    g±(x) = p(x | θ_ref, ν = ±1) / p(x | θ_ref, ν = 0),

combined per event with HistFactory's code 4 (:class:`~eftflow.inference.model.unbinned.
UpDownLogRatio`; the ``updown`` entry of a model spec). The densities are normalised, so g±
carry no rate: E₀[g±] = 1.

Each network is a ratio estimator (ALICE by default) trained on a sample augmented from the
store's nuisance weights: half the rows drawn at (θ_ref, ν = ±1), half at (θ_ref, 0), with the
per-event joint ratio r(x, z) = [w±(z)/σ±] / [w₀(z)/σ₀] as the regression target
(:meth:`~eftflow.sampling.SampleAugmenter.sample_train_ratio` with ``nu0``). ``norm``
systematics change no shape and get no networks.

The output directory (``eftflow train-nuisance-shapes``, rule ``train_nuisance_shapes``)::

    <nu>/up/, <nu>/down/          the ensembles (eftflow.ml.ensemble layout)
    <nu>/up.zarr, <nu>/down.zarr  their training sets
    summary.json                  what was trained, effective sample sizes, closure checks
    shapes.png                    learned vs true variations of a few observables (optional)

The closure checks use a partition the networks did not see (``check_partition``, the
validation one by default; its first ``check_events`` events, 200,000 by default, a random
subset since combined stores are shuffled): the weighted mean of g± at ν = 0 (1 if the ratio is normalised),
the correlation of log g±(x) with the per-event log(w±/w₀), and per observable the histogram
of the nominal weights times g±(x) against the histogram of the varied weights (both
normalised): its largest relative difference over the well-filled bins, and its χ² with the
errors of paired samples (both histograms are the same events; ``hist_chi2``), which says
whether that difference is larger than the check events can resolve.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = [
    "SHAPE_DEFAULTS",
    "shape_nuisances",
    "train_nuisance_shapes",
    "load_shapes",
    "updown_entries",
    "worst_closure",
]

log = logging.getLogger(__name__)

#: options (config ``model.demo.nuisance_shapes``)
SHAPE_DEFAULTS = {
    "enabled": True,
    "method": "alice",
    "n_samples": 20000,
    "n_epochs": 10,
    "n_members": 1,
    "hidden": [32, 32],
    "batch_size": 256,
    "learning_rate": 0.003,
    "partition": "train",
    "check_partition": "validation",
    "check_events": 200000,
    "nuisances": None,
}
_METHODS = ("alice", "rolr", "carl")
_SIDES = ((1, "up"), (-1, "down"))


def shape_nuisances(store, setup) -> list[str]:
    """Nuisance parameters of ``setup`` that change shapes and have weights in ``store``: those
    of every systematic type but ``norm``, in the setup's order."""
    from eftflow.sampling.weights import WeightModel

    names = WeightModel(store, setup, partition="all", include_nuisance=True).nuisance_names
    return _with_shape(setup, names)


def _with_shape(setup, names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        syst = setup.systematics.get(setup.nuisance_parameters[name].systematic)
        if syst is None or syst.type != "norm":
            out.append(name)
    return out


def _options(options: Mapping | None) -> dict:
    opt = {**SHAPE_DEFAULTS, **{k: v for k, v in (options or {}).items() if v is not None}}
    unknown = sorted(set(opt) - set(SHAPE_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(SHAPE_DEFAULTS)}",
            field="model.demo.nuisance_shapes",
        )
    if opt["method"] not in _METHODS:
        raise ConfigError(
            f"method {opt['method']!r} cannot train an x-only ratio; use {', '.join(_METHODS)}",
            field="model.demo.nuisance_shapes.method",
        )
    for key in ("n_samples", "n_epochs", "n_members", "batch_size", "check_events"):
        if int(opt[key]) < 1:
            raise ConfigError(
                f"must be positive, got {opt[key]!r}", field=f"model.demo.nuisance_shapes.{key}"
            )
    nus = opt["nuisances"]
    if nus is not None and (
        isinstance(nus, str) or not all(isinstance(n, str) for n in nus) or not nus
    ):
        raise ConfigError(
            f"must be a non-empty list of nuisance parameter names, got {nus!r}",
            field="model.demo.nuisance_shapes.nuisances",
        )
    if opt["partition"] == opt["check_partition"]:
        raise ConfigError(
            f"the closure check needs other events than the training ({opt['partition']!r})",
            field="model.demo.nuisance_shapes.check_partition",
        )
    return opt


def train_nuisance_shapes(
    store,
    setup_file,
    output,
    *,
    options: Mapping | None = None,
    seed: int = 0,
    threads: int = 1,
    memory_mb: float = 256.0,
    plot_observables: Sequence[str] | None = None,
    nuisances: Sequence[str] | None = None,
) -> dict:
    """Train g±(x) for every shape nuisance of the store (or those named, by ``nuisances`` or
    the option of that name); write ``output`` atomically and return its summary (see the
    module docstring)."""
    from eftflow.config import config_hash
    from eftflow.generate.seeds import job_seed
    from eftflow.ml.ensemble import train_ensemble
    from eftflow.ml.train import TrainingConfig
    from eftflow.sampling import SampleAugmenter, benchmark, nuisance_point
    from eftflow.sampling.weights import WeightModel
    from eftflow.setup import EFTSetup
    from eftflow.store.atomic import atomic_path
    from eftflow.store.events import EventStore
    from eftflow.store.helpers import make_provenance

    opt = _options(options)
    if nuisances is None:
        nuisances = opt["nuisances"]
    output = Path(output)
    store_obj = EventStore(store)  # refuses anything but a complete event store
    store_path = str(Path(store_obj.path).resolve())
    setup = EFTSetup.from_file(setup_file)
    all_nu = WeightModel(store_path, setup, partition="all", include_nuisance=True).nuisance_names
    available = _with_shape(setup, all_nu)
    if nuisances is None:
        names = available
    else:
        names = list(nuisances)
        for n in names:
            if n not in available:
                raise InputError(
                    f"{n!r} is no shape nuisance parameter of this store (those with weights "
                    f"for a scale or pdf systematic: {', '.join(available) or 'none'})",
                    file=store_path,
                    field="nuisances",
                )
    if not names:  # as the analysis, which only warns about nuisance weights it lacks
        log.warning(
            "%s: no nuisance parameter with a shape (no nuisance weights of a scale or pdf "
            "systematic; norm systematics change the rate only): nothing to train, the model "
            "takes no shapes",
            store_path,
        )
    reference = setup.reference_benchmark
    aug = SampleAugmenter(store_path, setup, setup_file=setup_file, memory_mb=memory_mb)
    summary: dict = {
        "format": "eftflow.nuisance_shapes/1",
        "store": store_path,
        "setup": str(Path(setup_file).resolve()),
        "reference": reference,
        "options": opt,
        "seed": int(seed),
        "provenance": make_provenance(
            stage="train_nuisance_shapes",
            seed=int(seed),
            config_hash=config_hash({"nuisance_shapes": opt, "seed": int(seed)}),
            inputs=[store_obj.provenance],
        ),
        "nuisances": {},
    }
    t0 = time.perf_counter()
    with atomic_path(output) as tmp:
        tmp.mkdir(parents=True)
        for name in names:
            entry: dict = {"systematic": setup.nuisance_parameters[name].systematic}
            for sign, side in _SIDES:
                nu = np.zeros(len(all_nu))
                nu[all_nu.index(name)] = sign
                s = job_seed(seed, f"{name}/{side}", 0, stage="nuisance_shapes")
                ts = tmp / name / f"{side}.zarr"
                ts.parent.mkdir(exist_ok=True)
                info = aug.sample_train_ratio(
                    benchmark(reference),
                    benchmark(reference),
                    int(opt["n_samples"]),
                    ts,
                    nu0=nuisance_point(nu),
                    partition=opt["partition"],
                    seed=s,
                )
                cfg = TrainingConfig(
                    method=opt["method"],
                    hidden=tuple(opt["hidden"]),
                    n_epochs=int(opt["n_epochs"]),
                    batch_size=int(opt["batch_size"]),
                    learning_rate=float(opt["learning_rate"]),
                    early_stopping=False,
                    seed=s,
                    threads=threads,
                )
                t = time.perf_counter()
                train_ensemble(ts, cfg, int(opt["n_members"]), tmp / name / side)
                entry[side] = {
                    "ensemble": f"{name}/{side}",
                    "training_set": f"{name}/{side}.zarr",
                    "seed": s,
                    "train_seconds": time.perf_counter() - t,
                    "effective_samples": info.get("ess_min"),
                    "distinct_events": info.get("n_distinct_events"),
                }
            summary["nuisances"][name] = entry
        _relocate(tmp, output)
        checks, panels = {}, []
        if names:
            checks, panels = _closure(
                tmp, store_path, setup, names, all_nu, opt["check_partition"], plot_observables,
                int(opt["check_events"]),
            )  # fmt: skip
        for name in names:
            summary["nuisances"][name]["check"] = checks[name]
        if panels:
            import matplotlib.pyplot as plt

            from eftflow.plotting.model import plot_nuisance_shapes

            plt.close(plot_nuisance_shapes(panels, path=tmp / "shapes.png"))
            summary["figure"] = "shapes.png"
        summary["seconds"] = time.perf_counter() - t0
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=True))
    for name in names:
        c = summary["nuisances"][name]["check"]
        up, down = c["up"]["hist_chi2"], c["down"]["hist_chi2"]
        chi2 = ", ".join(f"{o} {_chi2_text(up[o])} / {_chi2_text(down[o])}" for o in up)
        log.info(
            "%s: rate %+.2f %% / %+.2f %%, shape corr. %.2f / %.2f with the joint ratio, "
            "E0[g] = %.3f / %.3f, histogram χ²/ndf (paired) %s",
            name, 100 * (c["up"]["rate"] - 1), 100 * (c["down"]["rate"] - 1),
            c["up"]["correlation"], c["down"]["correlation"], c["up"]["mean_g"],
            c["down"]["mean_g"], chi2 or "-",
        )  # fmt: skip
    return summary


def _relocate(tmp: Path, final: Path) -> None:
    """Point the members' recorded training sets at where they will be after the rename."""
    for spec_file in tmp.glob("*/*/member_*.json"):
        spec = json.loads(spec_file.read_text())
        ts = spec.get("training_set")
        if isinstance(ts, str) and ts.startswith(str(tmp)):
            spec["training_set"] = str(final.resolve()) + ts[len(str(tmp)) :]
            spec_file.write_text(json.dumps(spec, indent=2, allow_nan=True))


def _closure(directory, store, setup, names, all_nu, partition, plot_observables, max_events):
    """Closure checks of the trained networks on ``partition`` (see the module docstring) and
    the panels of the figure, (nuisance, side, observable, edges, learned, true) each."""
    import torch

    from eftflow.sampling.weights import WeightModel, load_chunk

    from .unbinned import EnsembleLogRatio

    wm = WeightModel(store, setup, partition=partition, include_nuisance=True)
    obs_names = list(wm.store.observable_names)
    plot = [o for o in (plot_observables or []) if o in obs_names]
    missing = [o for o in (plot_observables or []) if o not in obs_names]
    if missing:
        log.warning("not in the store, not plotted: %s", ", ".join(missing))
    ref = setup.benchmarks[setup.reference_benchmark].vector(setup.parameter_names)
    m = wm.theta_matrix(ref[None, :])[0]
    nets = {
        (n, side): EnsembleLogRatio.load(directory / n / side, [])
        for n in names
        for _, side in _SIDES
    }
    xs, w0s, aa, bb, n = [], [], [], [], 0
    for i0, i1 in wm.chunk_ranges():  # the first events only: the partitions are shuffled
        if n >= max_events:
            break
        ch = load_chunk(wm.ctx, i0, min(i1, i0 + max_events - n), None, with_x=True)
        xs.append(ch.x)
        w0s.append(ch.W @ m)
        aa.append(ch.a)
        bb.append(ch.b)
        n += len(ch.x)
    if not xs or sum(len(x) for x in xs) == 0:
        raise InputError(
            f"the {partition!r} partition has no events for the closure check",
            file=store,
            field="model.demo.nuisance_shapes.check_partition",
        )
    x, w0 = np.concatenate(xs), np.concatenate(w0s)
    a, b = np.concatenate(aa, axis=1), np.concatenate(bb, axis=1)
    p = w0 / w0.sum()
    checks: dict = {}
    panels = []
    for n in names:
        k = all_nu.index(n)
        checks[n] = {}
        for sign, side in _SIDES:
            bound = nets[(n, side)].bind(x, dtype=torch.float64, device=torch.device("cpu"))
            with torch.no_grad():
                lg = bound(torch.zeros((1, 0), dtype=torch.float64)).mean(0)[0].numpy()
            wv = w0 * np.exp(sign * a[k] + b[k])
            joint = np.log(wv / w0)
            g = np.exp(lg)
            checks[n][side] = {
                "rate": float(wv.sum() / w0.sum()),
                "mean_g": float(np.sum(p * g)),
                "correlation": _wcorr(lg, joint, p),
                "shape_rms": float(np.sqrt(np.sum(p * (lg - np.sum(p * lg)) ** 2))),
                "joint_rms": float(np.sqrt(np.sum(p * (joint - np.sum(p * joint)) ** 2))),
                "events": int(len(x)),
                "max_hist_difference": {},
            }
            checks[n][side]["hist_chi2"] = {}
            for o in plot:
                col = x[:, obs_names.index(o)]
                edges, learned, true = _hist_pair(col, w0, w0 * g, wv)
                ok = true[1] > 0
                diff = np.abs(learned[0][ok] / true[0][ok] - 1) if ok.any() else np.array([])
                checks[n][side]["max_hist_difference"][o] = float(diff.max()) if diff.size else None
                checks[n][side]["hist_chi2"][o] = _paired_chi2(col, w0, lg, wv)
                panels.append((n, side, o, edges, learned, true))
    return checks, panels


def _chi2_text(v: Mapping) -> str:
    return f"{v['chi2']:.1f}/{v['ndf']}"


def _paired_chi2(col, w0, log_g, w_varied, n_bins: int = 12) -> dict:
    """χ² of the nominal histogram times ĝ against the varied one (both normalised), with the
    errors of paired samples: the same events carry both weights
    (:func:`~eftflow.inference.model.diagnostics.reweighting_closure` with ``same_events``)."""
    from eftflow.inference.model.diagnostics import reweighting_closure

    ok = np.isfinite(col)
    col = col[ok]
    o = reweighting_closure(
        col, w0[ok], log_g[ok], col, w_varied[ok], bins=n_bins, names=["x"], same_events=True
    )["observables"]["x"]
    return {"chi2": o["chi2"], "ndf": o["ndf"], "p_value": o["p_value"]}


def _wcorr(u, v, p) -> float:
    du, dv = u - np.sum(p * u), v - np.sum(p * v)
    den = np.sqrt(np.sum(p * du * du) * np.sum(p * dv * dv))
    return float(np.sum(p * du * dv) / den) if den > 0 else float("nan")


def _hist_pair(col, w0, w_learned, w_true, n_bins: int = 12):
    """Ratios to the nominal of the learned and the true varied histograms (each normalised),
    in quantile bins of the nominal; returns (edges, (ratio, error), (ratio, nominal counts))."""
    finite = np.isfinite(col)
    col, w0, w_learned, w_true = col[finite], w0[finite], w_learned[finite], w_true[finite]
    edges = np.unique(np.quantile(col, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([col.min() - 0.5, col.max() + 0.5])
    idx = np.clip(np.searchsorted(edges, col, side="right") - 1, 0, len(edges) - 2)
    nb = len(edges) - 1
    h0 = np.bincount(idx, w0, nb) / w0.sum()
    hl = np.bincount(idx, w_learned, nb) / w_learned.sum()
    ht = np.bincount(idx, w_true, nb) / w_true.sum()
    counts = np.bincount(idx, minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        rl = np.where(h0 > 0, hl / h0, np.nan)
        rt = np.where(h0 > 0, ht / h0, np.nan)
    # bins with fewer than 20 events are not compared (their ratios are noise)
    return edges, (rl, counts), (rt, counts >= 20)


def worst_closure(check: Mapping) -> tuple[float | None, dict | None]:
    """(largest histogram difference, χ² entry with the largest χ²/ndf) over the observables of
    one side's closure ``check``; ``None`` where the check has none."""
    hist = [v for v in (check.get("max_hist_difference") or {}).values() if v is not None]
    chi2 = [v for v in (check.get("hist_chi2") or {}).values() if v and v.get("ndf")]
    worst = max(chi2, key=lambda v: v["chi2"] / v["ndf"], default=None)
    return (max(hist) if hist else None), worst


def load_shapes(directory) -> dict:
    """The summary of a :func:`train_nuisance_shapes` directory (checked to be complete)."""
    directory = Path(directory)
    path = directory / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            "not a nuisance-shapes directory (no summary.json)", file=str(directory)
        ) from None
    except ValueError as err:
        raise InputError(f"malformed JSON ({err})", file=str(path)) from None
    if summary.get("format") != "eftflow.nuisance_shapes/1" or not isinstance(
        summary.get("nuisances"), dict
    ):
        raise InputError("not a nuisance-shapes summary", file=str(path), field="format")
    for name, entry in summary["nuisances"].items():
        for _, side in _SIDES:
            ens = directory / str((entry.get(side) or {}).get("ensemble", ""))
            if not (ens / "ensemble.json").is_file():
                raise InputError(
                    f"the {side} ensemble of {name!r} is missing",
                    file=str(ens),
                    field=f"nuisances.{name}.{side}",
                )
    return summary


def updown_entries(directory, *, observables: Sequence[str], relative_to=None) -> dict:
    """``{nu: {up: path, down: path}}`` for a model spec's ``updown``, checked against the
    observables the model's events have (paths relative to ``relative_to`` where given)."""
    import os

    directory = Path(directory)
    summary = load_shapes(directory)
    out = {}
    for name, entry in summary["nuisances"].items():
        sides = {}
        for _, side in _SIDES:
            ens = directory / entry[side]["ensemble"]
            spec = json.loads((ens / "member_0.json").read_text())
            got = list((spec.get("training_set_attrs") or {}).get("observable_names") or [])
            if got and got != list(observables):
                raise InputError(
                    f"the {side} network of {name!r} takes the observables "
                    f"({', '.join(got)}), the model's events ({', '.join(observables)})",
                    file=str(ens),
                    field="observable_names",
                )
            p = ens.resolve()
            sides[side] = os.path.relpath(p, Path(relative_to).resolve()) if relative_to else str(p)
        out[name] = sides
    return out
