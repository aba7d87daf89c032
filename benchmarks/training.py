"""Training throughput: streaming from zarr vs in-memory, Dask ensemble efficiency, RSS, MadMiner.

Run: ``.venv/bin/python benchmarks/training.py [--quick] [--only batched]`` (``--only batched``:
only batched vs one-at-a-time ensembles, written to results/training_batched.json). Model: SALLY, MLP 2×50 tanh, batch
128, one torch thread per training; data: the analytic toy (x ~ N(0,1), exact score).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

HIDDEN = (50, 50)


def make_set(path: Path, n: int, chunk: int = 100_000) -> Path:
    import zarr
    from zarr.codecs import BloscCodec

    rng = np.random.default_rng(0)
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    for i0 in range(0, n, chunk):
        x = rng.normal(size=min(chunk, n - i0))
        t = np.stack([2 * x, 2 * (x * x - 1)], axis=1)
        if i0 == 0:
            ax = g.create_array("x", shape=(n, 1), chunks=(chunk, 1), dtype="f4",
                                compressors=[BloscCodec(cname="lz4", clevel=5)])  # fmt: skip
            at = g.create_array("t_xz", shape=(n, 2), chunks=(chunk, 2), dtype="f4",
                                compressors=[BloscCodec(cname="lz4", clevel=5)])  # fmt: skip
        ax[i0 : i0 + len(x)] = x[:, None]
        at[i0 : i0 + len(x)] = t
    return path


def cfg(epochs, **kw):
    from eftflow.ml.train import TrainingConfig

    return TrainingConfig(method="sally", hidden=HIDDEN, n_epochs=epochs, batch_size=128,
                          validation_split=0.0, early_stopping=False, **kw)  # fmt: skip


def in_memory(path, epochs, device="cpu"):
    """The same model, loss, optimiser and schedule on tensors held in memory."""
    import torch

    from eftflow.ml.artifacts import build_model
    from eftflow.ml.data import TrainingSet
    from eftflow.ml.train import _model_spec, compute_outputs, torch_threads

    ts = TrainingSet(path)
    x = torch.from_numpy(ts.read("x", 0, ts.n)).to(device)
    t = torch.from_numpy(ts.read("t_xz0", 0, ts.n)).to(device)
    c = cfg(epochs)
    with torch_threads(1):
        torch.manual_seed(0)
        model = build_model({"model": _model_spec(c, 1, 2)}).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=c.learning_rate)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(ts.n, device=device)
            for b in range(0, ts.n, c.batch_size):
                idx = perm[b : b + c.batch_size]
                loss, _ = compute_outputs(model, "sally", {"x": x[idx], "t_xz0": t[idx]})
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), c.clip_grad_norm)
                opt.step()
        return ts.n * epochs / (time.perf_counter() - t0)


def streaming(path, epochs, device="cpu"):
    from eftflow.ml.train import train_estimator

    return train_estimator(path, cfg(epochs, device=device), None)["samples_per_second"]


def rss_child(path, epochs):
    code = (
        "import resource,sys; sys.path.insert(0,'benchmarks'); from training import streaming;"
        f"s=streaming({str(path)!r},{epochs});"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, s)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, sps = out.stdout.split()[-2:]
    return float(rss), float(sps)


def ensemble(path, epochs, n_members=4):
    """Seconds for ``n_members`` one after another, then on 2 Dask workers (cold and warm).

    The sequential run happens in this process, already warmed by an earlier training. The cold
    parallel figure includes each fresh worker's one-off start-up (importing torch's optimiser
    machinery, ``torch._dynamo``, takes ~1-2 s); the warm one is the next ensemble on the same
    workers.
    """
    from eftflow.cluster import dask_client
    from eftflow.ml.ensemble import train_ensemble

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train_ensemble(path, cfg(epochs), n_members, Path(d) / "seq")
        seq = time.perf_counter() - t0
        times = []
        with dask_client({"mode": "local"}, threads=2, memory_mb=4000) as client:
            client.run(lambda: __import__("importlib").import_module("eftflow.ml.ensemble"))
            for run in ("cold", "warm"):
                t0 = time.perf_counter()
                train_ensemble(path, cfg(epochs), n_members, Path(d) / run, client=client)
                times.append(time.perf_counter() - t0)
    return seq, times[0], times[1]


def _cpu_seconds() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def batched_vs_sequential(path, epochs, n_members=4, repeats=2):
    """Wall and CPU seconds (best of ``repeats``) for ``n_members`` SALLY and ALICES members:
    one after another in this process (:func:`train_ensemble`, one torch thread) and batched in
    one process (:func:`train_ensemble_batched`, one torch thread); members per CPU-hour from the
    CPU time. The ALICES set is the SALLY set plus θ0 ~ U(-0.6, 0.6)², y, r_xz, t_xz0 columns."""
    import os

    from eftflow.ml.batched import train_ensemble_batched
    from eftflow.ml.ensemble import train_ensemble

    rows = []
    for method, ts in (("sally", path), ("alices", _ratio_set(path))):
        c = replace(cfg(epochs), method=method)
        for label, run in (
            ("one after another", lambda d, c=c, ts=ts: train_ensemble(ts, c, n_members, d)),
            ("batched in one process",
             lambda d, c=c, ts=ts: train_ensemble_batched(ts, c, n_members, d, threads=1)),
        ):  # fmt: skip
            best = None
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as d:
                    w0, c0 = time.perf_counter(), _cpu_seconds()
                    run(Path(d) / "ens")
                    w, cpu = time.perf_counter() - w0, _cpu_seconds() - c0
                if best is None or cpu < best[1]:
                    best = (w, cpu)
            rows.append({"case": f"ensemble {n_members} members {method.upper()}: {label}",
                         "n": _rows(ts), "epochs": epochs, "seconds": best[0],
                         "CPU seconds": best[1], "members per CPU-hour": n_members * 3600 / best[1],
                         "load avg": os.getloadavg()[0]})  # fmt: skip
        seq, bat = rows[-2]["CPU seconds"], rows[-1]["CPU seconds"]
        rows[-1]["speed-up (CPU)"] = seq / bat
    return rows


def _rows(path) -> int:
    from eftflow.ml.data import TrainingSet

    return TrainingSet(path).n


def _ratio_set(path) -> Path:
    """A single-parameterised ratio set (ALICES columns) next to the SALLY set ``path``."""
    import zarr

    out = Path(path).with_name(Path(path).stem + "_ratio.zarr")
    if out.exists():
        return out
    src = zarr.open_group(str(path), mode="r")
    n = src["x"].shape[0]
    rng = np.random.default_rng(1)
    x = np.asarray(src["x"][:], dtype=np.float64)[:, 0]
    theta0 = rng.uniform(-0.6, 0.6, size=(n, 2))
    f = 1 + theta0[:, 0] * x + theta0[:, 1] * (x * x - 1)
    norm = 1 + theta0[:, 0] ** 2 + 2 * theta0[:, 1] ** 2
    t_xz0 = np.stack([2 * x / f - 2 * theta0[:, 0] / norm,
                      2 * (x * x - 1) / f - 4 * theta0[:, 1] / norm], axis=1)  # fmt: skip
    arrays = {"x": x[:, None], "theta0": theta0, "y": (rng.random(n) < 0.5)[:, None],
              "r_xz": (f * f / norm)[:, None], "t_xz0": t_xz0}  # fmt: skip
    g = zarr.open_group(str(out), mode="w", zarr_format=3)
    for k, v in arrays.items():
        v = np.asarray(v, dtype="f4")
        g.create_array(k, shape=v.shape, chunks=(100_000,) + v.shape[1:], dtype="f4")[:] = v
    return out


def madminer(path, epochs, n_workers):
    from madminer.ml import ScoreEstimator

    from eftflow.ml.data import TrainingSet

    ts = TrainingSet(path)
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/x.npy", ts.read("x", 0, ts.n))
        np.save(f"{d}/t.npy", ts.read("t_xz0", 0, ts.n))
        est = ScoreEstimator(n_hidden=HIDDEN, activation="tanh")
        t0 = time.perf_counter()
        est.train("sally", f"{d}/x.npy", f"{d}/t.npy", n_epochs=epochs, batch_size=128,
                  validation_split=None, early_stopping=False, n_workers=n_workers,
                  verbose="none")  # fmt: skip
        return ts.n * epochs / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["batched"], default=None,
                    help="run only this part (batched: batched vs one-at-a-time ensembles)")  # fmt: skip
    args = ap.parse_args()
    import torch

    n, epochs = (30_000, 2) if args.quick else (100_000, 5)
    rows = []
    meta = {"torch": torch.__version__, "hidden": list(HIDDEN), "batch_size": 128,
            "cores": __import__("os").cpu_count()}  # fmt: skip
    if args.only == "batched":
        with tempfile.TemporaryDirectory() as d:
            small = make_set(Path(d) / "small.zarr", n)
            streaming(small, 1)  # warm-up (imports)
            rows = batched_vs_sequential(small, epochs)
        write_results("training_batched", rows, meta=meta)
        return 0
    with tempfile.TemporaryDirectory() as d:
        small = make_set(Path(d) / "small.zarr", n)
        streaming(small, 1)  # warm-up (imports)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for dev in devices:
            s = max(streaming(small, epochs, dev) for _ in range(2))
            m = max(in_memory(small, epochs, dev) for _ in range(2))
            rows.append({"case": f"SALLY {dev}: streaming zarr", "n": n, "epochs": epochs,
                         "samples/s": s, "vs in-memory": s / m})  # fmt: skip
            rows.append({"case": f"SALLY {dev}: in-memory tensor", "n": n, "epochs": epochs,
                         "samples/s": m, "vs in-memory": 1.0})  # fmt: skip
        seq, cold, warm = ensemble(small, epochs)
        rows.append({"case": "ensemble 4 members: one after another", "n": n, "epochs": epochs,
                     "seconds": seq})  # fmt: skip
        for label, par in (("warm", warm), ("cold workers", cold)):
            rows.append({"case": f"ensemble 4 members: 2 Dask workers, {label}", "n": n,
                         "epochs": epochs, "seconds": par,
                         "parallel efficiency": seq / (2 * par)})  # fmt: skip
        rows += batched_vs_sequential(small, epochs)
        for size in (100_000, 1_000_000) if not args.quick else (30_000, 300_000):
            p = make_set(Path(d) / f"rss{size}.zarr", size)
            rss, sps = rss_child(p, 1)
            rows.append({"case": f"peak RSS, 1 epoch, n = {size:.0e}", "n": size, "epochs": 1,
                         "samples/s": sps, "peak RSS MB": rss})  # fmt: skip
        for workers in (8, 0):
            try:
                sps = madminer(small, epochs, workers)
            except Exception as err:  # noqa: BLE001 - report and go on
                rows.append(
                    {"case": f"MadMiner 0.9.6 SALLY n_workers={workers}", "error": str(err)}
                )
                continue
            rows.append({"case": f"MadMiner 0.9.6 SALLY n_workers={workers}", "n": n,
                         "epochs": epochs, "samples/s": sps})  # fmt: skip
    write_results("training", rows, meta={"torch": torch.__version__, "hidden": list(HIDDEN),
                                          "batch_size": 128, "cores": __import__("os").cpu_count()})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
