"""Benchmark: combine + shuffle + split of toy event stores, eftflow vs MadMiner's combine_and_shuffle.

Toy data: 3 observables, 6 benchmarks (the 2-parameter quadratic toy setup; ``--observables`` and
``--parameters`` make wider events), sampling ids spread
over the benchmarks, split into input stores of ≤ 10⁶ events (≤ 5·10⁶ for the largest size).
Every measurement runs in a fresh subprocess (the two tools alternate, ``--repeat`` times each,
each going first in every other round; the best run of each is compared, and the ratio of
medians is recorded too) that reports its wall
time and peak RSS
(``VmHWM`` of ``/proc/self/status``), its CPU time, and the RSS after imports (baseline). MadMiner
gets the same events, exported to its HDF5 layout beforehand (not timed). Before timing, each
child writes and reads one tiny file with its own library (first-use costs of zarr's codec
registry or of h5py are not part of combining N events).

Usage::

    python benchmarks/combine.py                      # 1e6 and 1e7, MadMiner at both
    python benchmarks/combine.py --sizes 1e6 1e7 3e7 --madminer-max 1e7 --workdir /tmp/bench
    python benchmarks/combine.py --sizes 1e6 --observables 30 --parameters 3 --json combine_wide.json

Writes a markdown table to stdout and ``benchmarks/results/combine.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of this process in MB.

    /proc is used rather than ru_maxrss, which Linux carries over from the forking parent.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _warm_up_eftflow(work: Path) -> None:
    """One tiny store written and read (first-use costs: codec registries, thread pools)."""
    from eftflow.store.events import EventStore, EventStoreWriter

    path = work / "warm-up.zarr"
    with EventStoreWriter(path, ["x"], ["sm"], chunk_size=4) as w:
        w.append(observables=np.ones((10, 1)), weights=np.ones((10, 1)))
    EventStore(path).read("weights")
    shutil.rmtree(path)


def _warm_up_h5py(work: Path) -> None:
    """One tiny HDF5 file written and read (the same first-use costs for h5py)."""
    import h5py

    path = work / "warm-up.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.ones((10, 1)))
    with h5py.File(path, "r") as f:
        f["x"][()]
    path.unlink()


def _child(argv: list[str]) -> None:
    """Run one measurement (in a subprocess) and print a JSON line."""
    kind, out, *inputs = argv
    if kind == "eftflow":
        import zarr  # noqa: F401  (imports are not timed, as MadMiner's h5py import is not)

        from eftflow.store.combine import combine_events

        _warm_up_eftflow(Path(out).parent)

        base, c0 = _rss_mb("VmRSS"), _cpu_s()
        t = time.perf_counter()
        info = combine_events(
            inputs, out, seed=1, memory_mb=float(os.environ.get("BENCH_MEMORY_MB", "1000"))
        )
        wall = time.perf_counter() - t
        extra = {"n_blocks": info["n_blocks"]}
    else:
        import logging

        logging.disable(logging.WARNING)
        from madminer.sampling import combine_and_shuffle

        _warm_up_h5py(Path(out).parent)

        base, c0 = _rss_mb("VmRSS"), _cpu_s()
        t = time.perf_counter()
        combine_and_shuffle(inputs, out)
        wall = time.perf_counter() - t
        extra = {}
    cpu = _cpu_s() - c0
    out = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": _rss_mb(), "baseline_rss_mb": base, **extra}
    print(json.dumps({**out, "load_avg_1min": os.getloadavg()[0]}))


def _measure(kind: str, out: Path, inputs: list[Path], env=None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(out), *map(str, inputs)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _setup(work: Path, n_parameters: int = 2):
    from eftflow.setup import EFTSetup

    s = EFTSetup()
    for k in range(1, n_parameters + 1):
        s.add_parameter("toy", k, f"theta_{k}", morphing_max_power=2, parameter_range=(-1.0, 1.0))
    s.add_benchmark({f"theta_{k}": 0.0 for k in range(1, n_parameters + 1)}, "sm")
    s.set_morphing(max_overall_power=2, seed=3)
    path = work / "setup.h5"
    s.save(path)
    return path, list(s.benchmarks)


def _make_inputs(
    work: Path, n: int, names: list[str], per_store: int, n_observables: int = 3
) -> list[Path]:
    from eftflow.store.events import EventStoreWriter

    paths = []
    rng = np.random.default_rng(n % 1000 + 17)
    done, k = 0, 0
    while done < n:
        m = min(per_store, n - done)
        path = work / f"in_{n}_{k}.zarr"
        obs = [f"x{i}" for i in range(n_observables)]
        with EventStoreWriter(path, obs, names, chunk_size=100_000) as w:
            for i in range(0, m, 1_000_000):
                b = min(1_000_000, m - i)
                w.append(
                    observables=rng.normal(size=(b, n_observables)),
                    weights=rng.uniform(0.5, 1.5, size=(b, len(names))) / n,
                    sampling_benchmark=rng.integers(0, len(names), b),
                )
        paths.append(path)
        done += m
        k += 1
    return paths


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument(
        "--madminer-max", type=float, default=1e7, help="largest size also run with MadMiner"
    )
    ap.add_argument("--memory-mb", type=float, default=1000, help="eftflow combine memory budget")
    ap.add_argument(
        "--observables",
        type=int,
        default=3,
        help="observables per event (default 3: 80-byte events)",
    )
    ap.add_argument(
        "--parameters",
        type=int,
        default=2,
        help="parameters of the quadratic morphing setup: 2 → 6 benchmarks, 3 → 10",
    )
    ap.add_argument("--workdir", default="/tmp/eftflow-bench-combine")
    ap.add_argument("--json", default="combine.json", help="file name under benchmarks/results/")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each tool per size, alternating (best and median are reported)",
    )
    args = ap.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    setup, names = _setup(work, args.parameters)
    env = dict(os.environ, BENCH_MEMORY_MB=str(args.memory_mb))
    rows = []
    try:
        for size in args.sizes:
            n = int(size)
            per_store = 1_000_000 if n <= 10**7 else 5_000_000
            per_store = min(per_store, max(n // 4, 1))
            t = time.perf_counter()
            inputs = _make_inputs(work, n, names, per_store, args.observables)
            gen_s = time.perf_counter() - t
            repeat = args.repeat if n <= 10**7 else 1  # one run of the largest sizes
            with_mm = n <= args.madminer_max and args.madminer_max > 0
            h5s = []
            if with_mm:
                from eftflow.store.madminer_io import export_madminer

                for p in inputs:
                    export_madminer(p, setup, p.with_suffix(".h5"))
                    h5s.append(p.with_suffix(".h5"))
            # the two tools alternate, each going first in every other round, so that both meet
            # the same state of the machine (the first run after a pause is often slower)
            runs, mm_runs = [], []
            for r in range(repeat):
                kinds = ["eftflow", "madminer"] if with_mm else ["eftflow"]
                for kind in kinds if r % 2 == 0 else kinds[::-1]:
                    if kind == "eftflow":
                        out = work / f"out_{n}_{r}.zarr"
                        runs.append(_measure("eftflow", out, inputs, env))
                        shutil.rmtree(out, ignore_errors=True)
                    else:
                        mm_runs.append(_measure("madminer", work / f"mm_{n}.h5", h5s))
                        (work / f"mm_{n}.h5").unlink(missing_ok=True)
            best = min(runs, key=lambda x: x["wall_s"])
            row = {
                "n_events": n,
                "n_inputs": len(inputs),
                "bytes_per_event": 8 * (args.observables + len(names) + 1),
                "generate_s": gen_s,
                "repeats": repeat,
                "eftflow": best,
                "eftflow_wall_s_all": [r["wall_s"] for r in runs],
                "eftflow_peak_rss_max_mb": max(r["peak_rss_mb"] for r in runs),
                "eftflow_events_per_s": n / best["wall_s"],
            }
            if with_mm:
                mm = min(mm_runs, key=lambda x: x["wall_s"])
                row["madminer"] = mm
                row["madminer_wall_s_all"] = [r["wall_s"] for r in mm_runs]
                row["speedup"] = mm["wall_s"] / best["wall_s"]
                row["speedup_cpu"] = mm["cpu_s"] / best["cpu_s"]
                row["speedup_median"] = float(
                    np.median(row["madminer_wall_s_all"]) / np.median(row["eftflow_wall_s_all"])
                )
                for p in h5s:
                    p.unlink(missing_ok=True)
            for p in inputs:
                shutil.rmtree(p, ignore_errors=True)
            rows.append(row)
            print(f"done {n:.0e}: {json.dumps(row)}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("| events | inputs | eftflow wall / CPU [s] | eftflow peak RSS [MB] (baseline) | blocks "
          "| MadMiner wall / CPU [s] | MadMiner peak RSS [MB] (baseline) | speed-up wall / CPU (median) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        e, m = r["eftflow"], r.get("madminer")
        mm = (
            f"{m['wall_s']:.2f} / {m['cpu_s']:.2f} | {m['peak_rss_mb']:.0f} ({m['baseline_rss_mb']:.0f}) "
            f"| {r['speedup']:.1f}× / {r['speedup_cpu']:.1f}× ({r['speedup_median']:.1f}×)"
            if m
            else "– | – | –"
        )
        print(
            f"| {r['n_events']:.0e} | {r['n_inputs']} | {e['wall_s']:.2f} / {e['cpu_s']:.2f} | {e['peak_rss_mb']:.0f} "
            f"({e['baseline_rss_mb']:.0f}) | {e['n_blocks']} | {mm} |"
        )
    out = HERE / "results" / args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "memory_mb": args.memory_mb,
        "observables": args.observables,
        "benchmarks": len(names),
        "date": time.strftime("%Y-%m-%d"),
    }
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nwritten {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
