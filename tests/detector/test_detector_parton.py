"""Parton-level detector: MadMiner-style smearing of LHE objects, MET noise, LHE → object store."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.analysis.expressions import Expression
from eftflow.analysis.objects import ObjectStore
from eftflow.detector.base import DetectorJob, get_detector
from eftflow.errors import ConfigError


def lhe_events(n: int, seed: int = 0):
    """u ū → e⁻ e⁺ + g + ν (incoming partons status -1, a status-2 Z, outgoing status 1)."""
    from eftflow.generate.lhe_events import LHEEvents

    rng = np.random.default_rng(seed)
    pt = rng.uniform(30, 60, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    eta = rng.uniform(-1, 1, n)
    z = np.zeros(n)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    p = np.sqrt(px**2 + py**2 + pz**2)
    cols = {
        "pid": [2, -2, 23, 11, -11, 21, 12],
        "status": [-1, -1, 2, 1, 1, 1, 1],
    }
    px_ = np.stack([z, z, z, px, -px, py, 0.5 * px], axis=1)
    py_ = np.stack([z, z, z, py, -py, px, 0.5 * py], axis=1)
    pz_ = np.stack([z + 500, z - 500, z, pz, -pz, z, z], axis=1)
    e_ = np.stack([z + 500, z + 500, 2 * p, p, p, pt, 0.5 * pt], axis=1)
    w = np.stack([np.full(n, 1e-3), np.full(n, 2e-3)], axis=1)
    return LHEEvents.from_fixed(
        pid=np.tile(cols["pid"], (n, 1)),
        status=np.tile(cols["status"], (n, 1)),
        px=px_,
        py=py_,
        pz=pz_,
        e=e_,
        xwgtup=w[:, 0],
        weights=w,
        weight_ids=["sm", "bsm"],
    )


@pytest.fixture
def lhe_file(tmp_path):
    from eftflow.generate.lhe_events import LHEInit
    from eftflow.generate.lhe_write import LHEWriter

    path = tmp_path / "events.lhe.gz"
    with LHEWriter(path, init=LHEInit(), weight_ids=["sm", "bsm"]) as w:
        w.write(lhe_events(4000))
    return path


def test_no_smearing_reproduces_lhe(lhe_file, tmp_path):
    from eftflow.detector.sources import open_source

    src = open_source(lhe_file, ["bsm", "sm"])
    det = get_detector("parton", {})
    res = det.simulate(DetectorJob(src, tmp_path / "o.zarr", seed=1, chunk_size=1500))
    store = ObjectStore(tmp_path / "o.zarr")
    assert res.n_events == store.n_events == 4000
    assert store.benchmark_names == ["bsm", "sm"]
    chunk = store.read()
    np.testing.assert_allclose(chunk["weights"].sum(axis=0), [2e-3 * 4000, 1e-3 * 4000], rtol=1e-9)
    ev = lhe_events(4000)
    o = chunk["objects"]
    pt = np.hypot(ev.px, ev.py).reshape(4000, 7)
    np.testing.assert_allclose(Expression("e[0].pt").evaluate_array(o), pt[:, 3], rtol=1e-8)
    np.testing.assert_allclose(
        Expression("(l[0] + l[1] + j[0]).pt").evaluate_array(o), pt[:, 5], rtol=1e-6
    )
    # MET = minus the visible sum (the neutrino, the Z (status 2) and the beams are not visible)
    np.testing.assert_allclose(Expression("met.pt").evaluate_array(o), pt[:, 5], rtol=1e-6)
    assert np.all(Expression("n_l == 2 and n_j == 1 and n_mu == 0").evaluate_array(o) == 1)
    assert np.all(Expression("l[0].charge + l[1].charge").evaluate_array(o) == 0)


def test_smearing_widths_as_configured():
    import awkward as ak

    from eftflow.detector.sources import lhe_chunk_to_awkward

    ev = lhe_events(20_000, seed=3)
    chunk = lhe_chunk_to_awkward(ev, ev.weights)
    det = get_detector(
        "parton",
        {
            "smearing": [
                {
                    "pdgids": [11],
                    "energy_resolution_abs": 0.0,
                    "energy_resolution_rel": 0.0,
                    "pt_resolution_abs": 0.0,
                    "pt_resolution_rel": 0.1,
                    "eta_resolution_abs": 0.05,
                    "phi_resolution_abs": 0.02,
                },
                {"pdgids": [21], "energy_resolution_abs": 2.0, "energy_resolution_rel": 0.0},
            ],
            "met_noise": {"abs": 5.0, "rel": 0.0},
        },
    )
    o = det.reconstruct(chunk, np.random.default_rng(1))
    truth = ak.to_numpy(ak.flatten(chunk.particles[chunk.particles.pid == 11]))
    pt_true = np.hypot(truth["px"], truth["py"])
    eta_true = np.arcsinh(truth["pz"] / pt_true)
    pt_reco = Expression("e[0].pt if e[0].charge < 0 else e[1].pt").evaluate_array(o)
    eta_reco = Expression("e[0].eta if e[0].charge < 0 else e[1].eta").evaluate_array(o)
    assert np.std((pt_reco - pt_true) / pt_true) == pytest.approx(0.1, rel=0.05)
    assert np.std(eta_reco - eta_true) == pytest.approx(0.05, rel=0.05)
    # gluon: energy smeared by 2 GeV absolute, pT from the on-shell condition (massless: E = p)
    g = ak.to_numpy(ak.flatten(chunk.particles[chunk.particles.pid == 21]))
    e_reco = Expression("j[0].e").evaluate_array(o)
    assert np.std(e_reco - g["e"]) == pytest.approx(2.0, rel=0.05)
    # MET noise: 5 GeV per component on top of minus the (smeared) visible sum
    resid = Expression("met.px + visible.px").evaluate_array(o)
    assert np.std(resid) == pytest.approx(5.0, rel=0.05)


def test_parton_config_errors():
    with pytest.raises(ConfigError, match="both pT and energy"):
        get_detector(
            "parton",
            {
                "smearing": [
                    {"pdgids": [11], "energy_resolution_abs": None, "pt_resolution_abs": None}
                ]
            },
        )
    with pytest.raises(ConfigError, match=r"detector.smearing\[0\].energy_res: unknown key"):
        get_detector("parton", {"smearing": [{"pdgids": [11], "energy_res": 1}]})
    with pytest.raises(ConfigError, match="unknown key 'cards'"):
        get_detector("parton", {"cards": 1})
    with pytest.raises(ConfigError, match="unknown detector backend 'pgs'"):
        get_detector("pgs", {})
