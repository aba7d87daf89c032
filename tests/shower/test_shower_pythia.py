"""Pythia 8 shower of builtin LHE events: weights stay aligned, drops are counted, seeds, CLI, HepMC."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.generate.base import GenerationJob
from eftflow.generate.builtin import BuiltinGenerator
from eftflow.physics.drellyan import EWParameters, cos_theta_star, weight_ratios
from eftflow.setup import EFTSetup
from eftflow.shower.pythia import shower_lhe
from eftflow.store.particles import ParticleStore

pythia8mc = pytest.importorskip("pythia8mc")

PARTON = {"mode": "parton", "batch_size": 16, "chunk_size": 25}


@pytest.fixture(scope="module")
def setup():
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_parameter("eft", 2, "Y", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0, "Y": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3, "Y": 0.0}, "w_pos", verbose=False)
    s.add_benchmark({"W": 0.0, "Y": 1e-3}, "y_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    return s


@pytest.fixture(scope="module")
def lhe(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("lhe") / "dy.lhe.gz"
    job = GenerationJob("mll_1000_3000", 3, 80, 17, out, setup)
    BuiltinGenerator().generate(job)
    return out


def _recomputed_ratios(chunk, theta):
    """EFT/SM ratio from each stored event's own hard-process record."""
    hard = chunk.hard
    n = len(hard)
    inc = hard[hard.status == -21]
    quark = inc[inc.pid > 0][:, 0]
    lep = hard[(np.abs(hard.status) == 23)]
    lm, lp = lep[lep.pid > 0][:, 0], lep[lep.pid < 0][:, 0]

    def p4(x):
        return np.column_stack([ak.to_numpy(x[c]) for c in ("px", "py", "pz", "e")])

    cos = cos_theta_star(p4(quark), p4(lm), p4(lp))
    shat = ak.to_numpy(chunk.info.sHat)
    assert len(cos) == n
    return weight_ratios(shat, cos, ak.to_numpy(quark.pid), theta, ["W", "Y"], EWParameters())


class VetoEveryFifth(pythia8mc.UserHooks):
    def __init__(self):
        pythia8mc.UserHooks.__init__(self)
        self.n = 0

    def canVetoProcessLevel(self):
        return True

    def doVetoProcessLevel(self, process):
        self.n += 1
        return self.n % 5 == 0


def test_weights_stay_aligned_and_drops_are_counted(setup, lhe, tmp_path):
    names = [b.name for b in setup.physics_benchmarks()]
    out = tmp_path / "sh.zarr"
    # without ISR the hard-process entries of the event record keep the LHE kinematics exactly
    # (ISR recoil and primordial kT boost them in place), so the ratio can be recomputed per event
    cfg = {
        **PARTON,
        "max_failure_fraction": 0.5,
        "pythia_settings": ["PartonLevel:ISR = off", "BeamRemnants:primordialKT = off"],
    }
    res = shower_lhe(lhe, out, names, seed=5, config=cfg, user_hooks=VetoEveryFifth())
    assert res.n_read == 80 and res.n_dropped == 16 and res.n_accepted == 64
    store = ParticleStore(out)
    assert store.n_events == 64 and store.attrs["n_dropped"] == 16
    theta = setup.benchmark_array()
    for chunk in store.iter_chunks(30):
        w = ak.to_numpy(chunk.weights)
        np.testing.assert_allclose(w / w[:, :1], _recomputed_ratios(chunk, theta), rtol=1e-9)
        assert ak.all(ak.num(chunk.particles) > 2)
        assert ak.all(chunk.particles.status > 0)
    # each dropped event took its weight with it: Σ w = σ × 64/80 (all SM weights equal)
    assert res.cross_sections["sm"] == pytest.approx(store.read_weights()[0, 0] * 64, rel=1e-12)


def test_too_many_rejections_fail_and_leave_nothing(setup, lhe, tmp_path):
    out = tmp_path / "sh.zarr"
    with pytest.raises(Exception, match="rejected 16 of 80"):
        shower_lhe(lhe, out, ["sm"], seed=5, config=PARTON, user_hooks=VetoEveryFifth())
    assert not list(tmp_path.iterdir())


def test_same_seed_same_showers(setup, lhe, tmp_path):
    def run(seed, name):
        shower_lhe(lhe, tmp_path / name, ["sm"], seed=seed, config={**PARTON, "max_events": 20})
        return ak.to_numpy(
            ak.flatten(next(ParticleStore(tmp_path / name).iter_chunks(20)).particles.px)
        )

    a, b, c = run(3, "a.zarr"), run(3, "b.zarr"), run(4, "c.zarr")
    assert np.array_equal(a, b) and (len(a) != len(c) or not np.array_equal(a, c))


def test_file_smaller_than_one_batch_keeps_every_weight(setup, lhe, tmp_path):
    """A batch that reaches the end of the file still maps every benchmark weight (Pythia's info
    snapshot then lists only ``Weight``): one big batch = many small ones."""
    names = [b.name for b in setup.physics_benchmarks()]
    one = {**PARTON, "batch_size": 500, "chunk_size": 1000}
    shower_lhe(lhe, tmp_path / "one.zarr", names, seed=5, config=one)
    shower_lhe(lhe, tmp_path / "many.zarr", names, seed=5, config=PARTON)
    xs_one = ParticleStore(tmp_path / "one.zarr").cross_sections()
    xs_many = ParticleStore(tmp_path / "many.zarr").cross_sections()
    assert len(set(np.round(xs_one, 12))) == len(names)  # distinct weights, not one copied
    np.testing.assert_allclose(xs_one, xs_many, rtol=1e-12)


def test_missing_benchmark_weight_is_a_clear_error(lhe, tmp_path):
    out = tmp_path / "sh.zarr"
    with pytest.raises(InputError, match="benchmark 'nope' has no weight") as err:
        shower_lhe(lhe, out, ["sm", "nope"], seed=1, config=PARTON)
    assert err.value.file == str(lhe) and err.value.field == "initrwgt"
    assert not list(tmp_path.iterdir())


def test_full_shower_cli_and_hepmc(setup, lhe, tmp_path):
    """The CLI with full hadronisation (MPI off for speed) and HepMC3 output."""
    import pyhepmc

    from eftflow.cli import main

    setup_file = tmp_path / "setup.h5"
    setup.save(setup_file)
    out, hep = tmp_path / "sh.zarr", tmp_path / "sh.hepmc"
    cfg = '{"mode": "no_mpi", "max_events": 6, "batch_size": 4}'
    rc = main(
        [
            "shower-events",
            str(lhe),
            "--setup",
            str(setup_file),
            "--config",
            cfg,
            "-o",
            str(out),
            "--hepmc",
            str(hep),
        ]
    )
    assert rc == 0
    store = ParticleStore(out)
    assert store.n_events == 6 and store.benchmark_names == [
        b.name for b in setup.physics_benchmarks()
    ]
    chunk = next(store.iter_chunks(6))
    n_final = ak.to_numpy(ak.num(chunk.particles))
    assert np.all(n_final > 20)  # hadronised
    with pyhepmc.open(hep) as f:
        events = list(f)
    assert len(events) == 6
    assert events[0].weight_names == ["Weight", *store.benchmark_names]
    assert [sum(p.status == 1 for p in ev.particles) for ev in events] == n_final.tolist()
    np.testing.assert_allclose(
        [ev.weights[1:] for ev in events], ak.to_numpy(chunk.weights), rtol=1e-15
    )
    # the shower seed is derived from (global seed, sample, job) of the LHE provenance
    assert store.provenance["seed"] != 0 and store.provenance["generator"]["job_index"] == 3
    assert len(store.provenance["config_hash"]) == 16  # the shower section and global seed
