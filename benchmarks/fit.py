"""Benchmark of the statistics toolkit.

* one Migrad fit + Hesse + Minos (all parameters) of an N-parameter correlated Gaussian chi2
  (N = 10 and 20), minuit and scipy backends;
* an asymptotic exclusion on a 50 x 50 theta grid of a 10-bin Poisson model with 3 profiled
  nuisances (expected + observed), and the same with marginalised nuisances.

Prints a markdown table and writes ``benchmarks/results/fit.json``.
Run: ``python benchmarks/fit.py``.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

from eftflow.inference.asimov import BinnedPoissonModel, Systematic
from eftflow.inference.fit import Fit, Parameters
from eftflow.inference.limits import model_exclusion


def gaussian_fit(n: int, backend: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    cov = a @ a.T / n + np.eye(n)
    inv = np.linalg.inv(cov)
    mu = rng.normal(size=n)

    def chi2(p):
        r = p - mu
        return float(r @ inv @ r)

    fit = Fit(chi2, Parameters({f"p{i}": 0.0 for i in range(n)}), backend=backend)
    t0 = time.perf_counter()
    res = fit.optimize()
    t1 = time.perf_counter()
    cov_res = fit.covariance()
    t2 = time.perf_counter()
    for name in fit.parameters.names:
        fit.confidence(name)
    t3 = time.perf_counter()
    err = np.max(np.abs(cov_res.matrix - cov) / np.sqrt(np.outer(np.diag(cov), np.diag(cov))))
    return {
        "n_params": n,
        "backend": backend,
        "migrad_s": t1 - t0,
        "hesse_s": t2 - t1,
        "minos_all_s": t3 - t2,
        "total_s": t3 - t0,
        "success": bool(res.success),
        "max_cov_error_rel": float(err),
        "nfev": fit.nfev,
    }


def grid_limits(mode: str, n_grid: int = 50, order: int = 5) -> dict:
    bins = 10
    sm = np.geomspace(500.0, 2.0, bins)
    lin = np.linspace(0.0, 0.3, bins) * sm
    quad = np.linspace(0.0, 0.5, bins) * sm

    def yields(th):
        return np.stack(
            [
                sm + lin * th[0] + quad * (th[0] ** 2 + th[1] ** 2 + th[0] * th[1]),
                np.full(bins, 30.0),
            ]
        )

    systs = [
        Systematic("lumi", {"sig": 0.02, "bkg": 0.02}),
        Systematic("xsec", {"sig": 0.05}),
        Systematic("bkg_shape", {"bkg": np.linspace(-0.2, 0.2, bins)}),
    ]
    model = BinnedPoissonModel(yields, n_bins=bins, samples=["sig", "bkg"], systematics=systs)
    data = model.make_data(np.round(yields(np.array([0.1, -0.1])).sum(axis=0)))
    axes = [np.linspace(-1, 1, n_grid), np.linspace(-1, 1, n_grid)]
    t0 = time.perf_counter()
    res = model_exclusion(model, axes, data=data, theta_asimov=[0.0, 0.0], mode=mode, refine=False)
    dt = time.perf_counter() - t0
    n_points = 2 * n_grid * n_grid
    return {
        "grid": f"{n_grid}x{n_grid}",
        "mode": mode,
        "n_nuisances": 3,
        "n_bins": bins,
        "seconds_expected_plus_observed": dt,
        "points_per_s": n_points / dt,
        "expected_excluded": int(res["expected"].excluded.sum()),
    }


def main() -> None:
    fits = [gaussian_fit(n, b) for n in (10, 20) for b in ("minuit", "scipy")]
    print("fits done", flush=True)
    grids = [grid_limits("profile"), grid_limits("marginalise", n_grid=20, order=5)]
    print(
        "| problem | backend | Migrad [s] | Hesse [s] | Minos (all) [s] | total [s] | max cov err |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in fits:
        print(
            f"| Gaussian {r['n_params']} par | {r['backend']} | {r['migrad_s']:.3f} | "
            f"{r['hesse_s']:.3f} | {r['minos_all_s']:.3f} | {r['total_s']:.3f} | "
            f"{r['max_cov_error_rel']:.1e} |"
        )
    print()
    print("| theta grid | nuisances (3) | time obs+exp [s] | grid points / s |")
    print("|---|---|---|---|")
    for r in grids:
        print(
            f"| {r['grid']} | {r['mode']} | {r['seconds_expected_plus_observed']:.2f} | "
            f"{r['points_per_s']:.0f} |"
        )
    out = {"machine": platform.platform(), "cpus": os.cpu_count(), "fits": fits, "grids": grids}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fit.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh, indent=2)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
