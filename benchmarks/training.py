"""Training throughput: streaming from zarr vs in-memory, Dask ensemble efficiency, RSS, MadMiner.

Run: ``.venv/bin/python benchmarks/training.py [--quick]``. Model: SALLY, MLP 2×50 tanh, batch
128, one torch thread per training; data: the analytic toy (x ~ N(0,1), exact score).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
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
    args = ap.parse_args()
    import torch

    n, epochs = (30_000, 2) if args.quick else (100_000, 5)
    rows = []
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
