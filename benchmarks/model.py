"""Benchmark of the statistical model: batched torch NLL (toys/s), combined-model fit time,
NLL + gradient time against N events and number of nuisances, and the two ways of learning
systematics (ν-parameterised network vs up/down interpolation) on the analytic toy.

Run: ``python benchmarks/model.py [--quick]``; prints a markdown table and writes
``benchmarks/results/model.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "model"))


def _toy_model(n_pool, device, provider=None, kappa=0.05):
    from conftest import toy_model  # the tests' builder: exact toy region (+ CR)

    model, toy = toy_model(n_pool=n_pool, kappa=kappa, binned=True, provider=provider)
    if device != "cpu":
        from eftflow.inference.model import StatModel

        model = StatModel(
            model.regions,
            [p for p in model.parameters if p.name in ("theta_1", "nu_shape")],
            poi="theta_1",
            device=device,
        )
    return model, toy


def bench_nll_scaling(device, sizes, nuis):
    """NLL + gradient time of an unbinned region with n events and k normalisation nuisances."""
    import torch

    from eftflow.inference.model import (
        ExactLogRatio,
        ModelParameter,
        Process,
        StatModel,
        UnbinnedRegion,
    )

    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        for k in nuis:
            x = rng.normal(size=n)
            names = [f"nu_{j}" for j in range(k)]

            def lr(xt, p):
                return (
                    0.1 * p[:, :1] * xt[None, :, 0]
                    - 0.005 * p[:, :1] ** 2
                    + 0.0 * p.sum(1, keepdim=True)
                )

            proc = Process(
                "s",
                ExactLogRatio(lr, ["mu"]),
                rate=1000.0,
                normsys={nm: (1.05, 0.95) for nm in names},
            )
            m = StatModel(
                [UnbinnedRegion("sr", x, [proc])],
                [ModelParameter("mu", 0.0, -5, 5, kind="poi")],
                device=device,
            )
            data = m.asimov({"mu": 0.5})
            p = m.tensor(m.init[None]).requires_grad_(True)
            for _ in range(2):
                torch.autograd.grad(m.nll(p, data).sum(), p)
            reps = 5
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.autograd.grad(m.nll(p, data).sum(), p)
            if device == "cuda":
                torch.cuda.synchronize()
            rows.append(
                {
                    "device": device,
                    "n_events": n,
                    "n_nuisances": k,
                    "nll_grad_ms": 1e3 * (time.perf_counter() - t0) / reps,
                }
            )
    return rows


def bench_toys(device, n_pool, n_toys):
    from eftflow.inference.model.inference import toy_study

    model, _ = _toy_model(n_pool, device)
    res = toy_study(model, {"theta_1": 0.1}, n_toys, np.random.default_rng(1), batch=n_toys)
    return {
        "device": device,
        "n_pool": n_pool,
        "n_toys": n_toys,
        "toys_per_second": res["toys_per_second"],
        "pull_widths": {k: v["width"] for k, v in res["pulls"].items()},
        "coverage": res["coverage"],
    }


def bench_neyman(device, n_pool, grid_n, n_toys):
    from eftflow.inference.model.inference import neyman_construction

    model, _ = _toy_model(n_pool, device)
    data = model.asimov({"theta_1": 0.1})
    res = neyman_construction(
        model,
        data,
        np.linspace(0.0, 0.2, grid_n),
        n_toys,
        np.random.default_rng(2),
        batch=grid_n * n_toys,
    )
    return {
        "device": device,
        "grid": grid_n,
        "toys_per_point": n_toys,
        "toys_per_second": res.toys_per_second,
        "interval": list(res.interval),
    }


def bench_fit(n_pool):
    from eftflow.inference.model.inference import ModelFitter

    model, _ = _toy_model(n_pool, "cpu")
    data = model.asimov({"theta_1": 0.1})
    t0 = time.perf_counter()
    fit = ModelFitter(model, data)
    fit.run()
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit.minos("theta_1")
    t_minos = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit.impacts("theta_1")
    return {
        "n_pool": n_pool,
        "fit_s": t_fit,
        "minos_s": t_minos,
        "impacts_s": time.perf_counter() - t0,
        "nfev": fit.fit.nfev,
    }


def bench_systematics(n_train, epochs):
    import torch

    from eftflow.inference.model import ExactLogRatio, UpDownLogRatio
    from eftflow.inference.model.inference import toy_study
    from eftflow.inference.model.systematics import (
        nuisance_accuracy,
        train_nuisance_network,
        train_updown_networks,
    )
    from eftflow.inference.model.toy import SystToy
    from eftflow.ml.train import TrainingConfig

    toy = SystToy(luminosity=1000.0, kappa=0.2, delta=np.log(1.1))
    cfg = TrainingConfig(
        method="alice",
        hidden=(32, 32),
        n_epochs=epochs,
        batch_size=256,
        learning_rate=3e-3,
        validation_split=0.2,
        early_stopping=False,
    )
    rng = np.random.default_rng(3)
    out = Path(tempfile.mkdtemp())
    prov_a, secs_a = train_nuisance_network(toy, n_train, cfg, out, rng, n_members=1)
    var, secs_b = train_updown_networks(toy, n_train, cfg, out, rng)

    def exact(x, p):
        z = torch.zeros_like(p[:, 0])
        return toy.log_ratio(x, torch.stack([p[:, 0], z], 1), torch.stack([p[:, 1], z], 1))

    def nominal(x, p):
        z = torch.zeros_like(p[:, 0])
        return toy.log_ratio(x[:, 0], torch.stack([p[:, 0], z], 1), torch.stack([z, z], 1))

    prov_b = UpDownLogRatio(ExactLogRatio(nominal, ["theta_1"]), var)
    x = rng.normal(size=5000)
    nus = [-2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0]
    res = {}
    for label, prov, secs in (("nu_network", prov_a, secs_a), ("updown_code4", prov_b, secs_b)):
        acc = nuisance_accuracy(prov, exact, x, [0.0, 0.2], nus)
        model, _ = _toy_model(1500, "cpu", provider=prov, kappa=0.2)
        cov = toy_study(model, {"theta_1": 0.1}, 200, np.random.default_rng(4), batch=200)
        res[label] = {
            "train_seconds": secs,
            "rms_inside": acc["rms_inside"],
            "rms_outside": acc["rms_outside"],
            "pulls": {k: v["width"] for k, v in cov["pulls"].items()},
            "pull_means": {k: v["mean"] for k, v in cov["pulls"].items()},
            "coverage": {k: v["coverage"] for k, v in cov["coverage"]["theta_1"].items()},
        }
    res["note"] = (
        "nu_network learns θ and ν together (the θ dependence is learned too); "
        "updown uses the exact nominal θ dependence and learns only g±(x)"
    )
    return res


def _cpu():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def bench_closure(n_toys, n_train, epochs, luminosity=1000.0, kappa=0.05):
    """Issue #11 closure: toys drawn independently from the exact generator, fitted with the
    exact log-ratio (reference), the ν-network and the up/down baseline; plus the bimodal
    κ = 0.2 configuration of the earlier benchmark with the exact likelihood."""
    import math
    import os

    from eftflow.inference.model import UpDownLogRatio
    from eftflow.inference.model.inference import toy_study
    from eftflow.inference.model.systematics import train_nuisance_network, train_updown_networks
    from eftflow.inference.model.toy import SystToy, build_toy_model, exact_provider
    from eftflow.ml.train import TrainingConfig

    toy = SystToy(luminosity=luminosity, kappa=kappa, delta=math.log(1.1))
    rng = np.random.default_rng(11)
    out = Path(tempfile.mkdtemp())
    cfg = TrainingConfig(
        method="alices",
        hidden=(32, 32),
        n_epochs=epochs,
        batch_size=256,
        learning_rate=3e-3,
        validation_split=0.1,
        early_stopping=False,
    )
    c0 = _cpu()
    nu_net, secs_a = train_nuisance_network(
        toy, n_train, cfg, out, rng, theta_range=(-0.2, 0.4), nu_range=(-3.0, 3.0)
    )
    cfg_b = TrainingConfig(
        method="alice",
        hidden=(16, 16),
        n_epochs=epochs,
        batch_size=256,
        learning_rate=3e-3,
        validation_split=0.1,
        early_stopping=False,
    )
    var, secs_b = train_updown_networks(toy, n_train // 2, cfg_b, out, rng)
    rows = {}
    provs = {
        "exact": (exact_provider(toy), 0.0),
        "nu_network": (nu_net, secs_a),
        "updown_code4": (UpDownLogRatio(exact_provider(toy, nominal=True), var), secs_b),
    }
    train_cpu = _cpu() - c0
    for label, (prov, secs) in provs.items():
        model = build_toy_model(toy, provider=prov, n_pool=500)
        c1, t1 = _cpu(), time.perf_counter()
        res = toy_study(
            model,
            {"theta_1": 0.1},
            n_toys,
            np.random.default_rng(2024),
            batch=n_toys,
            generator=toy.toy_generator(model, "sr"),
        )
        rows[label] = {
            "train_seconds": secs,
            "pull_means": {k: v["mean"] for k, v in res["pulls"].items()},
            "pull_widths": {k: v["width"] for k, v in res["pulls"].items()},
            "coverage": {k: v["coverage"] for k, v in res["coverage"]["theta_1"].items()},
            "fit_wall_s": time.perf_counter() - t1,
            "fit_cpu_s": _cpu() - c1,
            "loadavg": os.getloadavg(),
        }
    # the earlier configuration: kappa = 0.2 makes theta_1 -> -theta_1, nu_shape -> nu + 4θ/κ
    # an almost equivalent second minimum; even the exact likelihood fails the pull criterion
    toy2 = SystToy(luminosity=luminosity, kappa=0.2, delta=math.log(1.1))
    m2 = build_toy_model(toy2, n_pool=500)
    res = toy_study(
        m2,
        {"theta_1": 0.1},
        n_toys,
        np.random.default_rng(2024),
        batch=n_toys,
        generator=toy2.toy_generator(m2, "sr"),
    )
    rows["exact_kappa0.2"] = {
        "pull_means": {k: v["mean"] for k, v in res["pulls"].items()},
        "pull_widths": {k: v["width"] for k, v in res["pulls"].items()},
        "coverage": {k: v["coverage"] for k, v in res["coverage"]["theta_1"].items()},
    }
    rows["setup"] = {
        "n_toys": n_toys,
        "luminosity": luminosity,
        "kappa": kappa,
        "n_train": n_train,
        "epochs": epochs,
        "train_cpu_s": train_cpu,
        "toys": "independent exact draws",
    }
    return rows


def bench_binned_vs_unbinned(luminosity=1000.0, kappa=0.05):
    """Asimov 68 % interval width on theta_1: unbinned vs the same events in 5–40 bins."""
    import math

    from test_model_systematics_coverage import expected_width

    from eftflow.inference.model import StatModel
    from eftflow.inference.model.histogrammed import HistogrammedRegion
    from eftflow.inference.model.toy import SystToy, build_toy_model

    toy = SystToy(luminosity=luminosity, kappa=kappa, delta=math.log(1.1))
    model = build_toy_model(toy, n_pool=4000)
    out = {"unbinned": expected_width(model)}
    sr = model.regions[0]
    for nb in (5, 10, 20, 40):
        edges = np.r_[-np.inf, np.linspace(-3, 3, nb + 1)[1:-1], np.inf]
        for mode in ("histosys", "exact"):
            hr = HistogrammedRegion("sr_h", sr, edges, mode=mode, histosys=["nu_shape"])
            mb = StatModel(
                [hr, model.regions[1]],  # the toy's own control region
                [p for p in model.parameters if p.name in ("theta_1", "nu_shape")],
                poi="theta_1",
                device="cpu",
            )
            out[f"{nb}_bins_{mode}"] = expected_width(mb)
    return out


def bench_spread(n_toys, n_train=3000, members=5, luminosity=300.0, kappa=0.05):
    """Finite training statistics: a deliberately small training set, K members; coverage of
    theta_1 intervals fitted with the ensemble mean, with and without the spread term."""
    import math

    from eftflow.inference.model.ensemble_stat import SpreadTerm, spread_coverage
    from eftflow.inference.model.systematics import train_nuisance_network
    from eftflow.inference.model.toy import SystToy, build_toy_model
    from eftflow.ml.train import TrainingConfig

    toy = SystToy(luminosity=luminosity, kappa=kappa, delta=math.log(1.1))
    cfg = TrainingConfig(
        method="alices",
        hidden=(16, 16),
        n_epochs=10,
        batch_size=128,
        learning_rate=3e-3,
        validation_split=0.1,
        early_stopping=False,
    )
    ens, _ = train_nuisance_network(
        toy,
        n_train,
        cfg,
        Path(tempfile.mkdtemp()),
        np.random.default_rng(5),
        n_members=members,
        theta_range=(-0.2, 0.4),
        nu_range=(-3.0, 3.0),
    )
    exact = build_toy_model(toy, n_pool=300)
    plain = build_toy_model(toy, provider=ens, n_pool=300)
    spread = build_toy_model(toy, provider=ens, n_pool=300, spread=SpreadTerm("gamma_sr"))
    res = spread_coverage(
        exact,
        {"exact": exact, "no_spread": plain, "spread": spread},
        {"theta_1": 0.1},
        n_toys,
        np.random.default_rng(6),
        generator=toy.toy_generator(exact, "sr"),
    )
    res["setup"] = {"n_train": n_train, "members": members, "luminosity": luminosity}
    return res


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--closure-only", action="store_true", help="only the issue #11 closure parts")
    ap.add_argument("--toys", type=int, default=0, help="toys per closure study (default 400)")
    ap.add_argument(
        "--parts", default="binned,closure,spread", help="closure parts to run (comma-separated)"
    )
    args = ap.parse_args()
    if args.closure_only:
        return closure_main(args)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    nuis = [1, 20, 100]
    out = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "devices": devices,
    }
    out["nll_scaling"] = [r for d in devices for r in bench_nll_scaling(d, sizes, nuis)]
    out["toys"] = [bench_toys(d, 2000, 200) for d in devices]
    out["neyman"] = [bench_neyman(d, 2000, 9, 50) for d in devices]
    out["fit"] = bench_fit(5000)
    out["systematics"] = bench_systematics(
        10_000 if args.quick else 40_000, 5 if args.quick else 15
    )
    print("| device | N events | nuisances | NLL+grad (ms) |\n|---|---|---|---|")
    for r in out["nll_scaling"]:
        print(f"| {r['device']} | {r['n_events']} | {r['n_nuisances']} | {r['nll_grad_ms']:.2f} |")
    print("\n| device | toys/s (fit study, pool 2000) | toys/s (Neyman) |\n|---|---|---|")
    for t, n in zip(out["toys"], out["neyman"]):
        print(f"| {t['device']} | {t['toys_per_second']:.1f} | {n['toys_per_second']:.1f} |")
    f = out["fit"]
    print(
        f"\ncombined fit (pool {f['n_pool']} + binned CR): fit {f['fit_s']:.2f} s, "
        f"MINOS {f['minos_s']:.2f} s, impacts {f['impacts_s']:.2f} s"
    )
    print(
        "\n| systematics | train s | RMS Δlog r |ν|≤1 | |ν|>1 | pull widths | "
        "coverage 68/95 |\n|---|---|---|---|---|---|"
    )
    for k in ("nu_network", "updown_code4"):
        s = out["systematics"][k]
        print(
            f"| {k} | {s['train_seconds']:.1f} | {s['rms_inside']:.4f} | "
            f"{s['rms_outside']:.4f} | {s['pulls']} | {s['coverage']} |"
        )
    path = Path(__file__).parent / "results" / "model.json"
    path.write_text(json.dumps(out, indent=2, default=float))
    print(f"\nwritten {path}")


def closure_main(args) -> None:
    """Closure, binned-vs-unbinned and spread coverage; merged into the JSON file."""
    path = Path(__file__).parent / "results" / "model.json"
    out = json.loads(path.read_text()) if path.exists() else {}
    n_toys = args.toys or (200 if args.quick else 400)
    parts = args.parts.split(",")
    if "binned" in parts:
        out["binned_vs_unbinned"] = bench_binned_vs_unbinned()
        _save(path, out)
    print("| fit | Asimov 68 % width of theta_1 |\n|---|---|")
    for k, v in out.get("binned_vs_unbinned", {}).items():
        print(f"| {k} | {v:.5f} |")
    if "closure" in parts:
        out["closure"] = bench_closure(
            n_toys, 40_000 if args.quick else 100_000, 8 if args.quick else 12
        )
        _save(path, out)
    print("\n| provider | pull means | pull widths | coverage 68/95 |\n|---|---|---|---|")
    for k, r in out.get("closure", {}).items():
        if k == "setup":
            continue
        fmt = lambda d: ", ".join(f"{a} {b:+.3f}" for a, b in d.items())  # noqa: E731
        print(f"| {k} | {fmt(r['pull_means'])} | {fmt(r['pull_widths'])} | {r['coverage']} |")
    if "spread" in parts:
        out["spread"] = bench_spread(n_toys)
        _save(path, out)
    print(
        "\n| spread study | cov 68 | cov 95 | mean σ̂ | pull mean | pull width |\n|---|---|---|---|---|---|"
    )
    for k in ("exact", "no_spread", "spread") if "spread" in out else ():
        r = out["spread"][k]
        print(
            f"| {k} | {r['0.68']:.3f} | {r['0.95']:.3f} | {r['mean_error']:.4f} | "
            f"{r['pull_mean']:+.3f} | {r['pull_width']:.3f} |"
        )
    print(f"\nwritten {path}")


def _save(path, out):
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2, default=float))
    tmp.replace(path)


if __name__ == "__main__":
    main()
