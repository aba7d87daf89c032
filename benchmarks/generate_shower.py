"""Builtin Drell–Yan generation and Pythia 8 shower: events/s per core and peak RSS vs N.

Run: ``python benchmarks/generate_shower.py [--quick]``. Every measurement runs in a fresh
subprocess (one core) so that its peak RSS (``ru_maxrss``) is its own. Prints a markdown table
and writes ``benchmarks/results/generate_shower.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from eftflow.setup import EFTSetup
from eftflow.generate.base import GenerationJob
from eftflow.generate.builtin import BuiltinGenerator
from eftflow.shower.pythia import shower_lhe
kind, n, workdir, mode, big = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5]
s = EFTSetup()
s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
s.add_parameter("eft", 2, "Y", parameter_range=(-1e-3, 1e-3))
s.add_benchmark({"W": 0.0, "Y": 0.0}, "sm", verbose=False)
s.set_morphing(max_overall_power=2, seed=1)
lhe = workdir / f"gen{n}.lhe.gz"
t0 = time.perf_counter()
ru0 = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = ru0.ru_utime + ru0.ru_stime
if kind == "generate":
    BuiltinGenerator().generate(GenerationJob("mll_120_200", 0, n, 7, lhe, s, options={"chunk_size": 20000}))
    done = n
else:
    names = [b.name for b in s.physics_benchmarks()]
    r = shower_lhe(workdir / f"gen{big}.lhe.gz", workdir / f"sh{n}{mode}.zarr", names, seed=3, config={"mode": mode, "max_events": n})
    done = r.n_accepted
dt = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime - cpu0
print(json.dumps({"events": done, "seconds": dt, "rate": done / dt, "cpu_seconds": cpu,
                  "rate_per_cpu_s": done / cpu, "load_avg_1min": __import__("os").getloadavg()[0],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(kind, n, workdir, mode="-", big=0):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(n), str(workdir), mode, str(big)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller N (10x fewer events)")
    ap.add_argument(
        "--large", action="store_true", help="also 10^6 events (generation and parton shower)"
    )
    args = ap.parse_args()
    q = 10 if args.quick else 1
    sizes = [10_000 // q, 100_000 // q] + ([1_000_000] if args.large else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in sizes:
            rows.append(
                ("builtin generation (hard process → LHE)", "-", n, measure("generate", n, work))
            )
        for mode, n in (("full", 300 // q * 1), ("no_mpi", 1000 // q)):
            rows.append((f"shower ({mode})", mode, n, measure("shower", n, work, mode, sizes[-1])))
        for n in sizes:
            rows.append(("shower (parton)", "parton", n, measure("shower", n, work, "parton", n)))
    print("| step | N | events/s (wall) | events/CPU-s | peak RSS (MB) | load |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _, _n, r in rows:
        print(
            f"| {name} | {r['events']} | {r['rate']:.0f} | {r['rate_per_cpu_s']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['load_avg_1min']:.1f} |"
        )
    result = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "rows": [{"step": name, "mode": mode, "n": n, **r} for name, mode, n, r in rows],
        "note": "events/CPU-s is the per-core rate (CPU time of the measuring process); "
        "the full shower is measured on a few hundred events only (hours for 10^6).",
    }
    out = Path(__file__).parent / "results" / "generate_shower.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
