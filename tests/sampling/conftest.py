"""Toy event stores for the sampling and Fisher tests (built with numpy, written through EventStoreWriter)."""

from __future__ import annotations

import numpy as np
import pytest

SIGMA0 = 10.0


def write_toy_store(
    path,
    setup,
    n: int,
    seed: int,
    *,
    sampling=("sm",),
    partitions=(0.6, 0.2, 0.2),
    chunk: int = 100_000,
    nuisance: str | None = None,
    sigma0: float = SIGMA0,
    attrs: dict | None = None,
):
    """Events x ~ p(x|θ_s) for each sampling benchmark (n each), weights at all benchmarks.

    Each sample's weights sum to σ(θ_b) (MadMiner's convention; the mixing factors are applied by
    the reader). ``nuisance``: None, "norm" (w+ = 1.1 w_ref) or "shape" (w+ = w_ref·exp(0.1 x)).
    """
    from eftflow.generate.toy import sample_toy, toy_cross_section, toy_dsigma
    from eftflow.store.events import EventStoreWriter

    rng = np.random.default_rng(seed)
    phys = setup.physics_benchmarks()
    names = [b.name for b in phys]
    bv = setup.benchmark_array()
    ids = [names.index(s) for s in sampling]
    xs, sb = [], []
    for i in ids:
        xs.append(sample_toy(n, bv[i], rng))
        sb.append(np.full(n, i))
    x = np.concatenate(xs)
    sb = np.concatenate(sb)
    perm = rng.permutation(x.size)
    x, sb = x[perm], sb[perm]
    total = x.size
    a = dict(attrs or {})
    if partitions is not None:
        n_tr = int(round(partitions[0] * total))
        n_va = int(round(partitions[1] * total))
        a["partitions"] = {
            "train": [0, n_tr],
            "validation": [n_tr, n_tr + n_va],
            "test": [n_tr + n_va, total],
        }
    a["signal_events"] = [int(np.sum(sb == i)) for i in range(len(names))]
    nu_names = None
    if nuisance:
        nu_names = [b.name for b in setup.benchmarks.values() if b.is_nuisance]
    with EventStoreWriter(
        path, ["x", "x2"], names, chunk_size=chunk, nuisance_names=nu_names, attrs=a
    ) as w:
        for i0 in range(0, total, chunk):
            xx, ss = x[i0 : i0 + chunk], sb[i0 : i0 + chunk]
            ps = toy_dsigma(xx, bv[ss]) / toy_cross_section(bv[ss])  # p(x|θ_s), σ0 = 1
            wts = np.stack([toy_dsigma(xx, t, sigma0=sigma0) for t in bv], axis=1) / ps[:, None] / n
            kw = {}
            if nuisance:
                ref = wts[:, 0]
                kw["nuisance_weights"] = (
                    1.1 * ref if nuisance == "norm" else ref * np.exp(0.1 * xx)
                )[:, None]
            w.append(
                observables=np.stack([xx, xx * xx], axis=1),
                weights=wts,
                sampling_benchmark=ss,
                **kw,
            )
    return path


def nuisance_setup(kind: str):
    """The toy setup with one nuisance parameter ('norm' via add_systematics, or a shape one)."""
    from eftflow.generate.toy import toy_setup
    from eftflow.physics.parameters import Benchmark, NuisanceParameter

    s = toy_setup()
    if kind == "norm":
        s.add_systematics("norm", "lumi", norm_variation=1.1)
    else:
        s.benchmarks["shape_up"] = Benchmark(
            "shape_up", {p: 0.0 for p in s.parameters}, is_nuisance=True
        )
        s.nuisance_parameters["shape"] = NuisanceParameter("shape", "shape", "shape_up", None)
    return s


@pytest.fixture(scope="session")
def toy():
    from eftflow.generate.toy import toy_setup

    return toy_setup()


@pytest.fixture(scope="session")
def big_store(tmp_path_factory, toy):
    """10⁶ toy events at the SM, partitioned 60/20/20."""
    return write_toy_store(tmp_path_factory.mktemp("big") / "toy.zarr", toy, 1_000_000, 11)


@pytest.fixture(scope="session")
def small_store(tmp_path_factory, toy):
    """2·10⁴ toy events at the SM, partitioned 60/20/20, chunks of 5000."""
    return write_toy_store(
        tmp_path_factory.mktemp("small") / "toy.zarr", toy, 20_000, 12, chunk=5000
    )
