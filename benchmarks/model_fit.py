"""Fit wall time of the statistical model at analysis scale: 10⁶ unbinned events × 20 nuisances.

The model: an unbinned signal region with N events (a signal process whose per-event
log-ratio depends on the POI θ and on every nuisance ν_j through a cheap parametric form,
``log r = θ x₀ + Σ_j ν_j F_j(x)`` with fixed per-event features F_j, plus a background process
without parameters; each ν_j also scales the signal rate through a code-4 normsys) and a binned
control region (20 bins, a normsys on ν_0..ν_9 and a histosys on ν_10..ν_19, a free background
normalisation), all ν shared between the regions. The data are Asimov data at a point with
θ and every ν away from the starting values, so Migrad has real work to do.

Timed, each with and without the autograd gradient (``ModelFitter(..., grad=True/False)``):
Migrad, Hesse, and MINOS on θ; wall and CPU time (``resource.getrusage``, self + children:
with several torch threads CPU can exceed wall), function and gradient calls, and the load
average of the machine when the row was taken (other jobs share the cores).

The fit "with the gradient" is what :class:`ModelFitter` does by default: Migrad gets the
autograd gradient and Minuit the Hessian from central differences of it (seed and Hesse), so
both Migrad and Hesse run on gradients; "finite diff." is ``ModelFitter(..., grad=False)``
(Minuit's numerical derivatives and second differences).

Run: ``python benchmarks/model_fit.py [--events N] [--nuisances K] [--threads T]``; prints
a markdown table and writes ``benchmarks/results/model_fit.json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def build_model(n_events: int, n_nuis: int, seed: int = 0, device: str = "cpu"):
    """The benchmark model (see the module docstring) and its truth point."""
    import torch

    from eftflow.inference.model import (
        BinnedRegion,
        ExactLogRatio,
        ModelParameter,
        Process,
        StatModel,
        UnbinnedRegion,
        from_pyhf,
    )

    rng = np.random.default_rng(seed)
    pool = rng.normal(size=(n_events, 2))
    nus = [f"nu_{j}" for j in range(n_nuis)]
    # fixed per-event features of the nuisances (a few percent shape effects), float64
    shifts = np.linspace(-1.5, 1.5, n_nuis)
    feats = torch.as_tensor(
        0.05 * np.tanh(pool[:, 1:2] + shifts[None, :]), dtype=torch.float64, device=device
    )
    x0 = torch.as_tensor(pool[:, 0], dtype=torch.float64, device=device)

    def sig_lr(x, p):  # p: (B, 1 + K) = (theta, nu_0..nu_K-1); x is the pool tensor
        return p[:, :1] * x0[None] + p[:, 1:] @ feats.T

    def bkg_lr(x, p):
        return (-0.3 * x0)[None].expand(p.shape[0], -1)

    sig = Process(
        "sig",
        ExactLogRatio(sig_lr, ["theta", *nus]),
        rate=5000.0,
        normsys={
            n: (1.0 + 0.005 * (j + 1), 1.0 / (1.0 + 0.005 * (j + 1))) for j, n in enumerate(nus)
        },
    )
    bkg = Process("bkg", ExactLogRatio(bkg_lr, []), rate=20000.0)
    sr = UnbinnedRegion("sr", pool, [sig, bkg])

    nb = 20
    data = 1000.0 * np.exp(-np.arange(nb) / 10.0)
    mods = [{"name": "mu_bkg", "type": "normfactor", "data": None}]
    half = n_nuis // 2
    for j, n in enumerate(nus):
        if j < half:
            mods.append({"name": n, "type": "normsys", "data": {"hi": 1.02, "lo": 0.98}})
        else:
            d = 0.03 * np.sin(np.arange(nb) + j)
            mods.append(
                {
                    "name": n,
                    "type": "histosys",
                    "data": {
                        "hi_data": (data * (1 + d)).tolist(),
                        "lo_data": (data * (1 - d)).tolist(),
                    },
                }
            )
    ws = {
        "channels": [
            {"name": "cr", "samples": [{"name": "bkg", "data": data.tolist(), "modifiers": mods}]}
        ],
        "observations": [{"name": "cr", "data": data.tolist()}],
        "measurements": [{"name": "m", "config": {"poi": "mu_bkg", "parameters": []}}],
        "version": "1.0.0",
    }
    cr = BinnedRegion("cr", from_pyhf(ws, normsys_code="code4", histosys_code="code4p"))
    pars = [ModelParameter("theta", 0.0, -1.0, 1.0, kind="poi")] + [
        ModelParameter(n, 0.0, -5.0, 5.0, kind="nuisance", constraint="normal") for n in nus
    ]
    model = StatModel([sr, cr], pars, poi="theta", device=device)
    truth = {"theta": 0.05, "mu_bkg": 1.05, **{n: 0.3 * (-1) ** j for j, n in enumerate(nus)}}
    return model, truth


def _timed(fn):
    w0, c0 = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - w0, _cpu() - c0


def time_calls(model, data, reps: int = 3) -> dict:
    """Wall time of one NLL and one NLL + gradient evaluation at the starting point."""
    f, g = model.objective(data), model.gradient(data)
    x = model.init
    f(x), g(x)  # warm the caches (bound providers)
    _, wf, _ = _timed(lambda: [f(x) for _ in range(reps)])
    _, wg, _ = _timed(lambda: [g(x) for _ in range(reps)])
    return {"nll_ms": 1e3 * wf / reps, "nll_grad_ms": 1e3 * wg / reps}


def bench_fit(model, data, truth, *, grad: bool, minos: bool) -> dict:
    from eftflow.inference.model.inference import ModelFitter

    fitter = ModelFitter(model, data, grad=grad)
    fit = fitter.fit
    opt, w_mig, c_mig = _timed(fit.optimize)
    nfev_mig, ngrad_mig = fit.nfev, fit.ngrad
    cov, w_hes, c_hes = _timed(fit.covariance)
    row = {
        "gradient": "autograd" if grad else "finite diff.",
        "n_free": int((~model.fixed).sum()),
        "migrad_wall_s": w_mig,
        "migrad_cpu_s": c_mig,
        "migrad_nfev": nfev_mig,
        "migrad_ngrad": ngrad_mig,
        "hesse_wall_s": w_hes,
        "hesse_cpu_s": c_hes,
        "hesse_nfev": fit.nfev - nfev_mig,
        "hesse_ngrad": fit.ngrad - ngrad_mig,
        "fit_wall_s": w_mig + w_hes,
        "fit_cpu_s": c_mig + c_hes,
        "valid": bool(opt.success and cov.success),
        "theta_hat": float(opt.parameters["theta"]),
        "theta_err": float(cov.errors["theta"]),
        "max_pull_from_truth": float(
            max(
                abs(opt.parameters[n] - v) / max(cov.errors.get(n, 0.0), 1e-300)
                for n, v in truth.items()
            )
        ),
    }
    if minos:
        n0, g0 = fit.nfev, fit.ngrad
        ci, w_min, c_min = _timed(lambda: fitter.minos("theta"))
        row.update(
            minos_wall_s=w_min,
            minos_cpu_s=c_min,
            minos_nfev=fit.nfev - n0,
            minos_ngrad=fit.ngrad - g0,
            minos_errn=ci.errn,
            minos_errp=ci.errp,
            minos_valid=bool(ci.success),
        )
    row["loadavg_1m"] = os.getloadavg()[0]
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, nargs="+", default=[20_000, 1_000_000])
    ap.add_argument("--nuisances", type=int, default=20)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a shared, loaded machine torch's spinning "
        "threads slow each NLL down several-fold; 0 keeps torch's default)",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--no-minos", action="store_true")
    ap.add_argument(
        "--fd-minos-max-events",
        type=int,
        default=100_000,
        help="run MINOS without the gradient only up to this many events (it takes ~3000 NLL "
        "calls: ~10 CPU-min at 10^6 events)",
    )
    ap.add_argument("--only", choices=["autograd", "finite"], default=None)
    ap.add_argument("--name", default="model_fit", help="results/<name>.json")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows, meta = [], {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    meta["device"] = args.device
    if args.device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
    for n_events in args.events:
        (model, truth), w_build, c_build = _timed(
            lambda n=n_events: build_model(n, args.nuisances, device=args.device)
        )
        data = model.asimov(truth)
        calls = time_calls(model, data)
        meta[f"n_events={n_events}"] = {"build_wall_s": w_build, "build_cpu_s": c_build, **calls}
        print(f"# {n_events} events: {calls}", file=sys.stderr)
        for grad in (True, False):
            if args.only and (args.only == "autograd") != grad:
                continue
            minos = not args.no_minos and (grad or n_events <= args.fd_minos_max_events)
            row = {"device": args.device, "n_events": n_events, "n_nuisances": args.nuisances}
            row.update(calls)
            row.update(bench_fit(model, data, truth, grad=grad, minos=minos))
            rows.append(row)
            print(f"# {row['gradient']}: fit {row['fit_wall_s']:.1f} s wall", file=sys.stderr)
    write_results(args.name, rows, meta=meta)


if __name__ == "__main__":
    main()
