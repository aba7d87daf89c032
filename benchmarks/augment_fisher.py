"""Benchmark: sample augmentation and Fisher information, eftflow vs MadMiner 0.9.6, on toy stores.

For each N, a toy event store (the analytic toy of ``eftflow.generate.toy``, events at the SM,
weights at 6 benchmarks) is written once; then each tool runs in its own child process (so peak
RSS is per tool) the steps of the issue:

* ``xsec``: morphing weights + cross sections at 100 θ,
* ``local``: ``sample_train_local`` at the SM, 100 000 samples,
* ``ratio``: ``sample_train_ratio`` with 100 random θ0 vs the SM, 100 000 samples,
* ``truth``: ``truth_information`` at 2 θ,

MadMiner reads the same events exported with ``export_madminer`` (only for N ≤ --madminer-max).
Each step is timed in wall and CPU seconds (CPU of all threads of the child process) with the load
average; an untimed warm-up call comes first for eftflow (imports, first store open), as
MadMiner's imports and file opening are untimed too. With ``--repeat R`` the children run R times,
alternating the tools, and the medians are reported. Prints a markdown table with the speed-ups and
writes ``benchmarks/results/augment_fisher.json`` (rows of other labels are kept).

Usage::

    python benchmarks/augment_fisher.py --n 1000000 --threads 2 --repeat 3
    python benchmarks/augment_fisher.py --n 1000000 10000000 100000000 --madminer-max 0 \\
        --label scaling --workdir /tmp/aug-scaling
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
STEPS = ("xsec", "local", "ratio", "truth")


def make_store(path: Path, n: int, chunk: int = 200_000) -> None:
    import numpy as np

    from eftflow.generate.toy import toy_dsigma, toy_setup
    from eftflow.store.events import EventStoreWriter

    setup = toy_setup()
    setup.save(path.parent / "setup.h5")
    bv = setup.benchmark_array()
    rng = np.random.default_rng(1)
    n_tr = int(0.6 * n)
    attrs = {"partitions": {"train": [0, n_tr], "validation": [n_tr, int(0.8 * n)], "test": [int(0.8 * n), n]},
             "signal_events": [n, 0, 0, 0, 0, 0]}  # fmt: skip
    with EventStoreWriter(
        path,
        ["x", "x2"],
        [b.name for b in setup.physics_benchmarks()],
        chunk_size=chunk,
        attrs=attrs,
    ) as w:
        for i0 in range(0, n, chunk):
            k = min(chunk, n - i0)
            x = rng.normal(size=k)
            ps = toy_dsigma(x, np.zeros(2))
            wts = np.stack([toy_dsigma(x, t, sigma0=10.0) for t in bv], axis=1) / ps[:, None] / n
            w.append(observables=np.c_[x, x * x], weights=wts, sampling_benchmark=np.zeros(k, int))


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: Linux's VmHWM (reset at exec, so not inherited
    from the parent that forked this child, unlike ``ru_maxrss``), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(times: dict, step: str, fn) -> None:
    """Run ``fn()``; record wall and CPU seconds (all threads of this process) and the load."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    times[step] = time.perf_counter() - t
    times[f"{step}_cpu"] = time.process_time() - c
    times[f"{step}_load"] = os.getloadavg()[0]


def child(tool: str, store: str, setup: str, h5: str, threads: int, outdir: str, steps) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    thetas100 = rng.uniform(-1, 1, (100, 2))
    times: dict = {}
    out = Path(outdir)
    if tool == "eftflow":
        from eftflow.inference.fisher import FisherInformation
        from eftflow.sampling import (
            SampleAugmenter,
            benchmark,
            cross_sections,
            random_morphing_points,
        )

        # warm-up, untimed (imports of zarr and numpy submodules, first store open), as
        # MadMiner's imports and file opening are untimed too
        cross_sections(store, setup, thetas100[:1], n_workers=threads)
        sa = SampleAugmenter(store, setup, n_workers=threads)
        fi = FisherInformation(store, setup, n_workers=threads)
        steps_fn = {
            "xsec": lambda: cross_sections(store, setup, thetas100, n_workers=threads),
            "local": lambda: sa.sample_train_local(benchmark("sm"), 100_000, out / "local.zarr", seed=1),
            "ratio": lambda: sa.sample_train_ratio(
                random_morphing_points(100, [("flat", -1, 1)] * 2), benchmark("sm"), 100_000,
                out / "ratio.zarr", seed=2),
            "truth": lambda: [fi.truth_information(t, 300_000.0) for t in ([0.0, 0.0], [0.5, -0.5])],
        }  # fmt: skip
    else:
        import logging

        from madminer.fisherinformation import FisherInformation as MMFisher
        from madminer.sampling import SampleAugmenter as MMAugmenter
        from madminer.sampling import benchmark, morphing_points, random_morphing_points

        logging.getLogger("madminer").setLevel(logging.WARNING)
        sa = MMAugmenter(h5)
        fi = MMFisher(h5)
        steps_fn = {
            "xsec": lambda: sa.cross_sections(morphing_points(thetas100)),
            "local": lambda: sa.sample_train_local(benchmark("sm"), 100_000, folder=outdir, filename="local"),
            "ratio": lambda: sa.sample_train_ratio(
                random_morphing_points(100, [("flat", -1, 1)] * 2), benchmark("sm"), 100_000,
                folder=outdir, filename="ratio"),
            "truth": lambda: [fi.truth_information(np.array(t), 300_000.0) for t in ([0.0, 0.0], [0.5, -0.5])],
        }  # fmt: skip
    for step in steps:
        _timed(times, step, steps_fn[step])
        times[f"{step}_peak_rss_mb"] = _peak_rss_mb()
    times["peak_rss_mb"] = _peak_rss_mb()
    return times


def _median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--madminer-max", type=int, default=1_000_000)
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    ap.add_argument("--repeat", type=int, default=1, help="child runs per tool, alternating tools")
    ap.add_argument("--label", default="side-by-side", help="run label (rows with the same "
                    "tool, N and label are replaced in the JSON file, others kept)")  # fmt: skip
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", nargs=7, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        tool, store, setup, h5, threads, outdir, steps = args.child
        res = child(tool, store, setup, h5, int(threads), outdir, steps.split(","))
        print(json.dumps(res))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="eftflow-bench-aug-"))
    rows = []
    for n in args.n:
        d = work / f"n{n}"
        d.mkdir(parents=True, exist_ok=True)
        store = d / "events.zarr"
        if not store.exists():
            t0, c0 = time.perf_counter(), time.process_time()
            make_store(store, n)
            print(f"store n={n}: {time.perf_counter() - t0:.1f} s wall, "
                  f"{time.process_time() - c0:.1f} s CPU", file=sys.stderr)  # fmt: skip
        tools = ["eftflow"]
        h5 = d / "events.h5"
        if n <= args.madminer_max:
            try:
                import madminer  # noqa: F401

                from eftflow.store.madminer_io import export_madminer

                if not h5.exists():
                    export_madminer(store, d / "setup.h5", h5)
                tools.append("madminer")
            except ImportError:
                pass
        runs: dict = {t: [] for t in tools}
        for _ in range(args.repeat):
            for tool in tools:
                out = d / f"out-{tool}"
                out.mkdir(exist_ok=True)
                cmd = [sys.executable, __file__, "--child", tool, str(store), str(d / "setup.h5"),
                       str(h5), str(args.threads), str(out), ",".join(args.steps)]  # fmt: skip
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                times = json.loads(res.stdout.strip().splitlines()[-1])
                runs[tool].append(times)
                print(f"done {tool} n={n}: {times}", file=sys.stderr)
        for tool in tools:
            keys = runs[tool][0].keys()
            med = {k: _median([r[k] for r in runs[tool]]) for k in keys}
            rows.append({"tool": tool, "n_events": n, "threads": args.threads, "label": args.label,
                         "repeat": args.repeat, "statistic": "median", **med})  # fmt: skip
    cols = [s for s in STEPS if s in args.steps]
    print("| tool | events | " + " | ".join(f"{s} wall [s] | {s} CPU [s]" for s in cols)
          + " | peak RSS [MB] | load |")  # fmt: skip
    print("|---|---|" + "---|---|" * len(cols) + "---|---|")
    for r in rows:
        cells = " | ".join(f"{r[s]:.3g} | {r[s + '_cpu']:.3g}" for s in cols)
        load = max(r[f"{s}_load"] for s in cols)
        print(
            f"| {r['tool']} | {r['n_events']:.0e} | {cells} | {r['peak_rss_mb']:.0f} | {load:.1f} |"
        )
    by = {(r["tool"], r["n_events"]): r for r in rows}
    for n in args.n:
        e, m = by.get(("eftflow", n)), by.get(("madminer", n))
        if e and m:
            sp = ", ".join(f"{s} {m[s] / e[s]:.1f}× wall / {m[s + '_cpu'] / e[s + '_cpu']:.1f}× CPU"
                           for s in cols)  # fmt: skip
            print(f"\nspeed-up at N={n:.0e} (MadMiner / eftflow, medians): {sp}")
    out = HERE / "results" / "augment_fisher.json"
    out.parent.mkdir(exist_ok=True)
    old = json.loads(out.read_text()).get("rows", []) if out.exists() else []
    new_keys = {(r["tool"], r["n_events"], r["label"]) for r in rows}
    kept = [r for r in old if (r.get("tool"), r.get("n_events"), r.get("label")) not in new_keys
            and "label" in r]  # fmt: skip
    out.write_text(json.dumps({
        "rows": kept + rows, "steps": list(STEPS), "cpu_count": os.cpu_count(),
        "note": "wall and CPU seconds (CPU: all threads of the child process); load = 1-min load "
                "average after the step; 2-core machine shared with other jobs: wall times are noisy",
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
