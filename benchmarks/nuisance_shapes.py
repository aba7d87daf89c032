"""Benchmark: accuracy and cost of the nuisance-shape networks (``eftflow train-nuisance-shapes``)
on an exact shape, against the number of stored events and of augmented samples.

The store: events with x ~ U(0, 1) (the shape) and y ~ N(0, 1) (an observable the nuisance does
not touch), equal SM weights, a scale nuisance with per-event weights w± = w_sm (1 + κ± x),
κ+ = 0.4, κ− = −0.2, so that g±(x) = (1 + κ± x) / (1 + κ±/2) exactly. For each row the default
networks (ALICE, 32×32, 10 epochs, one member) are trained on the train partition and compared
with the exact log g± on the test events: the RMS and the largest |log ĝ − log g| (x in
[0.05, 0.95]), the weighted mean E₀[ĝ] (1 exactly), and the largest relative difference of the
reweighted against the varied x histogram (12 quantile bins) from the closure checks.

Usage::

    python benchmarks/nuisance_shapes.py                 # the default rows
    python benchmarks/nuisance_shapes.py --rows 2000:5000 10000:20000

Writes a markdown table and ``benchmarks/results/nuisance_shapes.json``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_results

KAPPA = {"up": 0.4, "down": -0.2}
NU = "mu_var_nuisance_param_0"


def _store(work: Path, n: int, seed: int):
    from eftflow.setup import EFTSetup
    from eftflow.store.combine import combine_events
    from eftflow.store.events import EventStoreWriter

    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3}, "w_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    s.add_systematics("scale", "mu_var", scale="mu", scale_variations=(0.5, 1.0, 2.0))
    s.save(work / "setup.h5")
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0.0, 1.0, n), rng.normal(size=n)
    w = np.column_stack([np.full(n, 1e-3), 1e-3 * (1 + x), 1e-3 * (1 + 2 * x)])
    nuis = [f"{NU}_benchmark_0", f"{NU}_benchmark_1"]
    nw = np.column_stack([w[:, 0] * (1 + KAPPA["up"] * x), w[:, 0] * (1 + KAPPA["down"] * x)])
    names = [b.name for b in s.physics_benchmarks()]
    with EventStoreWriter(work / "raw.zarr", ["x", "y"], names, nuisance_names=nuis) as wr:
        wr.append(observables=np.column_stack([x, y]), weights=w,
                  sampling_benchmark=np.zeros(n, np.int64), nuisance_weights=nw)  # fmt: skip
    combine_events([work / "raw.zarr"], work / "events.zarr", seed=seed, setup=work / "setup.h5")
    return work / "events.zarr", work / "setup.h5"


def _row(n_events: int, n_samples: int, epochs: int, seed: int) -> dict:
    import torch

    from eftflow.inference.model.shapes import train_nuisance_shapes
    from eftflow.inference.model.unbinned import EnsembleLogRatio
    from eftflow.store.events import EventStore

    work = Path(tempfile.mkdtemp(prefix="eftflow-bench-shapes-"))
    try:
        store, setup = _store(work, n_events, seed)
        t0 = time.perf_counter()
        summary = train_nuisance_shapes(
            store,
            setup,
            work / "shapes",
            options={"n_samples": n_samples, "n_epochs": epochs},
            seed=seed,
            plot_observables=["x"],
        )
        seconds = time.perf_counter() - t0
        ev = EventStore(store)
        a, b = ev.partition_bounds("test")
        obs = ev.read("observables", a, b)
        inside = (obs[:, 0] > 0.05) & (obs[:, 0] < 0.95)
        row = {"events": n_events, "samples": n_samples, "epochs": epochs}
        for side, kappa in KAPPA.items():
            ens = EnsembleLogRatio.load(work / "shapes" / NU / side, [])
            bound = ens.bind(obs, dtype=torch.float64, device=torch.device("cpu"))
            with torch.no_grad():
                learned = bound(torch.zeros((1, 0), dtype=torch.float64)).mean(0)[0].numpy()
            exact = np.log1p(kappa * obs[:, 0]) - np.log1p(kappa / 2)
            d = (learned - exact)[inside]
            check = summary["nuisances"][NU]["check"][side]
            row[f"{side} rms Δlog g"] = float(np.sqrt(np.mean(d**2)))
            row[f"{side} max Δlog g"] = float(np.abs(d).max())
            row[f"{side} E0[g]"] = check["mean_g"]
            row[f"{side} hist"] = check["max_hist_difference"]["x"]
        row["shape span up"] = float(np.log1p(KAPPA["up"]))
        row["seconds"] = seconds
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows",
        nargs="+",
        default=["2000:5000", "2000:20000", "10000:20000", "10000:80000", "50000:80000"],
        help="EVENTS:SAMPLES per row",
    )
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for spec in args.rows:
        n_events, n_samples = (int(float(v)) for v in spec.split(":"))
        rows.append(_row(n_events, n_samples, args.epochs, args.seed))
    write_results("nuisance_shapes", rows, meta={"epochs": args.epochs, "seed": args.seed})


if __name__ == "__main__":
    main()
