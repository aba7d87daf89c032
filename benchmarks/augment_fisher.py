"""Benchmark: sample augmentation and Fisher information, eftflow vs MadMiner 0.9.6, on toy stores.

For each N, a toy event store (the analytic toy of ``eftflow.generate.toy``, events at the SM,
weights at 6 benchmarks) is written once; then each tool runs in its own child process (so peak
RSS is per tool) the steps of the issue:

* ``xsec``: morphing weights + cross sections at 100 θ,
* ``local``: ``sample_train_local`` at the SM, 100 000 samples,
* ``ratio``: ``sample_train_ratio`` with 100 random θ0 vs the SM, 100 000 samples,
* ``truth``: ``truth_information`` at 2 θ,

MadMiner reads the same events exported with ``export_madminer`` (only for N ≤ --madminer-max).
Prints a markdown table and writes ``benchmarks/results/augment_fisher.json``.

Usage::

    python benchmarks/augment_fisher.py --n 1000000 10000000 --threads 2
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


def child(tool: str, store: str, setup: str, h5: str, threads: int, outdir: str) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    thetas100 = rng.uniform(-1, 1, (100, 2))
    times = {}
    if tool == "eftflow":
        from eftflow.inference.fisher import FisherInformation
        from eftflow.sampling import (
            SampleAugmenter,
            benchmark,
            cross_sections,
            random_morphing_points,
        )

        cross_sections(
            store, setup, thetas100[:1]
        )  # warm-up: imports (dask, zarr); MadMiner's are untimed too

        t = time.perf_counter()
        cross_sections(store, setup, thetas100, n_workers=threads)
        times["xsec"] = time.perf_counter() - t
        sa = SampleAugmenter(store, setup, n_workers=threads)
        t = time.perf_counter()
        sa.sample_train_local(benchmark("sm"), 100_000, Path(outdir) / "local.zarr", seed=1)
        times["local"] = time.perf_counter() - t
        t = time.perf_counter()
        sa.sample_train_ratio(random_morphing_points(100, [("flat", -1, 1)] * 2), benchmark("sm"), 100_000,
                              Path(outdir) / "ratio.zarr", seed=2)  # fmt: skip
        times["ratio"] = time.perf_counter() - t
        fi = FisherInformation(store, setup, n_workers=threads)
        t = time.perf_counter()
        for theta in ([0.0, 0.0], [0.5, -0.5]):
            fi.truth_information(theta, 300_000.0)
        times["truth"] = time.perf_counter() - t
    else:
        import logging

        from madminer.fisherinformation import FisherInformation as MMFisher
        from madminer.sampling import SampleAugmenter as MMAugmenter
        from madminer.sampling import benchmark, morphing_points, random_morphing_points

        logging.getLogger("madminer").setLevel(logging.WARNING)
        sa = MMAugmenter(h5)
        t = time.perf_counter()
        sa.cross_sections(morphing_points(thetas100))
        times["xsec"] = time.perf_counter() - t
        t = time.perf_counter()
        sa.sample_train_local(benchmark("sm"), 100_000, folder=outdir, filename="local")
        times["local"] = time.perf_counter() - t
        t = time.perf_counter()
        sa.sample_train_ratio(random_morphing_points(100, [("flat", -1, 1)] * 2), benchmark("sm"), 100_000,
                              folder=outdir, filename="ratio")  # fmt: skip
        times["ratio"] = time.perf_counter() - t
        fi = MMFisher(h5)
        t = time.perf_counter()
        for theta in ([0.0, 0.0], [0.5, -0.5]):
            fi.truth_information(np.array(theta), 300_000.0)
        times["truth"] = time.perf_counter() - t
    times["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--madminer-max", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", nargs=6, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        tool, store, setup, h5, threads, outdir = args.child
        print(json.dumps(child(tool, store, setup, h5, int(threads), outdir)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="eftflow-bench-aug-"))
    rows = []
    for n in args.n:
        d = work / f"n{n}"
        d.mkdir(parents=True, exist_ok=True)
        store = d / "events.zarr"
        if not store.exists():
            make_store(store, n)
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
        for tool in tools:
            out = d / f"out-{tool}"
            out.mkdir(exist_ok=True)
            cmd = [
                sys.executable,
                __file__,
                "--child",
                tool,
                str(store),
                str(d / "setup.h5"),
                str(h5),
                str(args.threads),
                str(out),
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            times = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append({"tool": tool, "n_events": n, "threads": args.threads, **times})
            print(f"done {tool} n={n}: {times}", file=sys.stderr)
    print(
        "| tool | events | threads | xsec 100 θ [s] | local 1e5 [s] | ratio 100 θ, 1e5 [s] | truth 2 θ [s] | truth events/s/core | peak RSS [MB] |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rate = 2 * r["n_events"] / r["truth"] / r["threads"]
        print(f"| {r['tool']} | {r['n_events']:.0e} | {r['threads']} | {r['xsec']:.2f} | {r['local']:.2f} | {r['ratio']:.2f} | "
              f"{r['truth']:.2f} | {rate:.3g} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    out = HERE / "results" / "augment_fisher.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps({"rows": rows, "steps": list(STEPS), "cpu_count": os.cpu_count()}, indent=1)
    )


if __name__ == "__main__":
    main()
