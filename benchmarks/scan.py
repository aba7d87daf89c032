"""Scan throughput: likelihood evaluations per second with 1 and 2 MPI ranks.

A cheap 2-parameter likelihood (an expression observable and a Gaussian component) scanned by
the ``random`` scanner in batches of 1000, HDF5 printer. Prints a markdown table and writes
``benchmarks/results/scan.json``.

    .venv/bin/python benchmarks/scan.py [--points 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

SCAN = """\
seed: 1
models:
  EFT:
    parameters:
      cW: {{prior: flat, range: [-1, 1]}}
      cY: {{prior: gaussian, mean: 0, sigma: 0.5}}
components:
  xsec_pred: {{function: expression, options: {{expr: "1 + 0.4*cW + 0.2*cY + 0.3*cW**2"}}}}
  xsec: {{function: gaussian, options: {{prediction: xsec_pred, observed: 1.1, sigma: 0.05, sigma_theory: 0.02}}}}
scanner: {{name: random, options: {{n_points: {n}, batch_size: {batch}}}}}
printer: {{name: hdf5, buffer: 5000}}
"""


def run(ranks: int, n: int, batch: int, tmp: Path) -> dict:
    scan = tmp / "scan.yaml"
    scan.write_text(SCAN.format(n=n, batch=batch))
    out = tmp / f"out{ranks}"
    bindir = Path(sys.executable).parent
    cmd = [sys.executable, "-m", "eftflow", "scan", str(scan), "-o", str(out), "--force"]
    if ranks > 1:
        cmd = [str(bindir / "mpiexec"), "-n", str(ranks), *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary = json.loads(res.stdout)
    secs = summary["info"]["seconds"]
    return {
        "ranks": ranks,
        "points": summary["n_points"],
        "seconds": secs,
        "points_per_s": summary["n_points"] / secs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(r, args.points, args.batch, Path(tmp)) for r in (1, 2)]
    print("| MPI ranks | points | seconds | points/s |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['ranks']} | {r['points']} | {r['seconds']:.2f} | {r['points_per_s']:.0f} |")
    result = {
        "benchmark": "scan",
        "rows": rows,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
    }
    path = Path(__file__).parent / "results" / "scan.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
