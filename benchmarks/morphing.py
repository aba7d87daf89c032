"""Morphing weights + gradients at 10⁶ θ points with 6 components (2 parameters, quadratic).

Goal: ≤ 0.3 µs per θ (MadMiner 0.9.6 needs ~30 µs per θ, one θ per call).
Run: ``.venv/bin/python benchmarks/morphing.py [--n 1000000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_results

from eftflow.physics.morphing import Morpher, find_components, optimize_basis


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--madminer-n", type=int, default=2000)
    args = ap.parse_args()
    comps = find_components([2, 2], 2)
    basis, _ = optimize_basis(comps, [(-1, 1), (-1, 1)], seed=1)
    m = Morpher(comps, basis)
    theta = np.random.default_rng(0).uniform(-1, 1, (args.n, 2))
    rows = []
    t_w = best_of(lambda: m.weights(theta))
    t_g = best_of(lambda: m.gradients(theta))
    t_both = t_w + t_g
    rows.append(
        {
            "implementation": "eftflow (numpy, vectorised)",
            "n_theta": args.n,
            "weights_s": t_w,
            "gradients_s": t_g,
            "us_per_theta": 1e6 * t_both / args.n,
        }
    )
    try:
        import dask.array as da

        th = da.from_array(theta, chunks=(250_000, 2))
        t_d = best_of(lambda: (m.weights(th).compute(), m.gradients(th).compute()))
        rows.append(
            {
                "implementation": "eftflow (dask, 4 chunks)",
                "n_theta": args.n,
                "weights_s": "",
                "gradients_s": "",
                "us_per_theta": 1e6 * t_d / args.n,
            }
        )
    except ImportError:
        pass
    try:
        from madminer.utils.morphing import PhysicsMorpher

        pm = PhysicsMorpher(parameter_max_power=[2, 2], parameter_range=[(-1, 1), (-1, 1)])
        pm.set_components(comps)
        pm.set_basis(basis_numpy=basis)
        sub = theta[: args.madminer_n]

        def run_mm():
            for t in sub:
                pm.calculate_morphing_weights(t)
                pm.calculate_morphing_weight_gradient(t)

        t_mm = best_of(run_mm, repeat=1)
        np.testing.assert_allclose(
            pm.calculate_morphing_weights(sub[0]), m.weights(sub[0]), atol=1e-9
        )
        rows.append(
            {
                "implementation": "MadMiner 0.9.6 (per θ)",
                "n_theta": args.madminer_n,
                "weights_s": "",
                "gradients_s": "",
                "us_per_theta": 1e6 * t_mm / args.madminer_n,
            }
        )
    except ImportError:
        rows.append({"implementation": "MadMiner (not installed)"})
    write_results(
        "morphing", rows, meta={"components": int(comps.shape[0]), "goal_us_per_theta": 0.3}
    )


if __name__ == "__main__":
    main()
