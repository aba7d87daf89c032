"""Fixtures for analysis tests: a small object store written from synthetic reconstructed events."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.analysis.objects import Collection, EventObjects, ObjectStoreWriter, merge_collections


def synthetic_objects(n: int, seed: int = 0) -> EventObjects:
    """Reconstructed-looking events: 0–3 muons, 0–1 electrons, 0–4 jets, MET; pT-ordered."""
    rng = np.random.default_rng(seed)

    def coll(counts, pid=None, **extra):
        k = int(counts.sum())
        q = rng.choice([-1.0, 1.0], k)
        f = {
            "pt": rng.uniform(10, 120, k),
            "eta": rng.uniform(-2.4, 2.4, k),
            "phi": rng.uniform(-np.pi, np.pi, k),
            "m": np.full(k, 0.1),
            "charge": q,
        }
        if pid:
            f["pid"] = -pid * q
        f.update({name: fn(k) for name, fn in extra.items()})
        return Collection.from_fields(counts, **f).sorted_by("pt")

    mu = coll(rng.integers(0, 4, n), 13)
    e = coll(rng.integers(0, 2, n), 11)
    j = coll(rng.integers(0, 5, n), btag=lambda k: (rng.random(k) < 0.2).astype(float))
    a = Collection.from_fields(np.zeros(n, int), pt=[], eta=[], phi=[], m=[], charge=[])
    met = coll(np.ones(n, int))
    return EventObjects(
        n, {"e": e, "mu": mu, "l": merge_collections(e, mu), "a": a, "j": j, "met": met}
    )


@pytest.fixture
def object_store(tmp_path):
    """(path, EventObjects, weights): 5000 events, the six benchmarks of ``dy_setup`` + its nuisance benchmark."""
    objects = synthetic_objects(5000)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.5, 1.5, (5000, 1)) * np.array([[1.0, 1.1, 0.9, 1.05, 0.95, 1.2, 1.02]]) * 1e-3
    path = tmp_path / "objects.zarr"
    names = [
        "sm",
        "w_pos",
        "y_pos",
        *[f"morphing_basis_vector_{i}" for i in (3, 4, 5)],
        "lumi_nuisance_param_0_benchmark_0",
    ]
    with ObjectStoreWriter(path, names, chunk_size=2500, detector={"backend": "test"}) as wr:
        for i0 in range(0, 5000, 1500):
            i1 = min(i0 + 1500, 5000)
            wr.append(objects.events(i0, i1), w[i0:i1], np.zeros(i1 - i0, int))
    return path, objects, w


@pytest.fixture
def dy_setup():
    """W, Y quadratic morphing with the three named benchmarks and a lumi systematic (as the default config)."""
    from eftflow.setup import EFTSetup

    s = EFTSetup()
    s.add_parameter("eft", 1, "W", morphing_max_power=2, parameter_range=(-1e-3, 1e-3))
    s.add_parameter("eft", 2, "Y", morphing_max_power=2, parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0, "Y": 0.0}, "sm")
    s.add_benchmark({"W": 1e-3, "Y": 0.0}, "w_pos")
    s.add_benchmark({"W": 0.0, "Y": 1e-3}, "y_pos")
    s.set_morphing(max_overall_power=2, n_trials=5, n_test_thetas=20, seed=1)
    s.add_systematics("norm", "lumi", norm_variation=1.02)
    return s
