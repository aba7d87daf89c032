"""A real builtin Drell–Yan sample through the whole chain: generator → Pythia 8 shower →
builtin detector (default card) → observables (mℓℓ, pT, η, cos θ*) → combined store.

Two generator jobs of the Z-peak slice (60 < mℓℓ < 120 GeV, e and μ) are showered and hadronised
(MPI off for speed), reconstructed with the default card, analysed and combined. The tests check
the reconstructed Z peak, the mℓℓ resolution against the card's lepton resolutions, the
two-lepton efficiency against the card's efficiency × acceptance computed from the
generator-level leptons, and that every benchmark weight is carried through.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from eftflow.analysis.objects import ObjectStore
from eftflow.detector.base import DetectorJob
from eftflow.detector.builtin import BuiltinDetector
from eftflow.detector.card import load_card
from eftflow.detector.sources import open_source
from eftflow.generate.base import GenerationJob
from eftflow.generate.builtin import BuiltinGenerator
from eftflow.setup import EFTSetup
from eftflow.store.combine import combine_events
from eftflow.store.events import EventStore
from eftflow.store.particles import ParticleStore

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

MZ = 91.1876
N_PER_JOB = 400
N_JOBS = 2
KINDS = {11: "electron", 13: "muon"}
ANALYSIS = {
    "observables": [
        {"name": "m_ll", "definition": "(l[0] + l[1]).m", "required": True},
        {"name": "pt_ll", "definition": "(l[0] + l[1]).pt", "required": True},
        {"name": "pt_l1", "definition": "l[0].pt"},
        {"name": "eta_l1", "definition": "l[0].eta"},
        {"name": "eta_l2", "definition": "l[1].eta"},
        {"name": "cos_theta", "definition": "cos_theta_cs(l[0], l[1])", "default": -2.0},
    ],
    "cuts": ["n_l >= 2"],
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from eftflow.analysis.analyse import analyse_events
    from eftflow.shower.pythia import shower_lhe

    d = tmp_path_factory.mktemp("dy_chain")
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_parameter("eft", 2, "Y", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0, "Y": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3, "Y": 0.0}, "w_pos", verbose=False)
    s.add_benchmark({"W": 0.0, "Y": 1e-3}, "y_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    names = [b.name for b in s.physics_benchmarks()]
    jobs = []
    for k in range(N_JOBS):
        lhe = d / f"dy{k}.lhe.gz"
        gen = BuiltinGenerator().generate(
            GenerationJob(
                "mll_60_120", k, N_PER_JOB, 101 + k, lhe, s, options={"mll": [60.0, 120.0]}
            )
        )
        # batch_size below the number of events: Pythia must still be reading the file when the
        # weight names are taken from the first batch
        sh = shower_lhe(
            lhe,
            d / f"sh{k}.zarr",
            names,
            seed=7 + k,
            config={"mode": "no_mpi", "batch_size": 100, "chunk_size": 250},
        )
        det = BuiltinDetector()
        src = open_source(d / f"sh{k}.zarr", names, sampling_benchmark=0)
        det.simulate(DetectorJob(src, d / f"obj{k}.zarr", seed=31 + k, chunk_size=250))
        ana = analyse_events(d / f"obj{k}.zarr", d / f"ev{k}.zarr", ANALYSIS, setup=s)
        jobs.append({"gen": gen, "shower": sh, "analysis": ana, "k": k})
    info = combine_events(
        [d / f"ev{k}.zarr" for k in range(N_JOBS)],
        d / "combined.zarr",
        seed=5,
        k_factors=1.0 / N_JOBS,
        chunk_size=128,
    )
    return {"dir": d, "names": names, "jobs": jobs, "combine": info, "card": load_card(None)}


# -- helpers ----------------------------------------------------------------------------------
def _pt_eta_phi(px, py, pz):
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / pt), np.arctan2(py, px)


def _generator_leptons(shower_store: Path, card):
    """Per event the hardest final-state ℓ⁻ and ℓ⁺ of the hard-process flavour.

    Returns arrays of shape (n, 2): pid, pt, eta, phi, e and ``iso`` (Σ pT of the other visible
    particles above the card's isolation ``pt_min`` within its cone, divided by the lepton's pT).
    """
    store = ParticleStore(shower_store)
    invisible = np.asarray(card.get("invisible_pids"))
    eta_in = float(card.get("jet.input_eta_max"))
    out = {k: [[], []] for k in ("pid", "pt", "eta", "phi", "e", "iso")}
    for c in store.iter_chunks(1000):
        hard = c.hard
        flav = ak.max(np.abs(hard.pid[np.abs(hard.status) == 23]), axis=1)
        flav = ak.to_numpy(ak.fill_none(flav, 0))
        assert np.isin(flav, list(KINDS)).all()
        p = c.particles
        ppt = np.hypot(p.px, p.py)
        peta, pphi = np.arcsinh(p.pz / ppt), np.arctan2(p.py, p.px)
        flat_pid = np.abs(ak.to_numpy(ak.flatten(p.pid)))
        visible = ak.unflatten(~np.isin(flat_pid, invisible), ak.num(p.pid))
        visible = visible & (np.abs(peta) < eta_in)
        for i, sign in enumerate((1, -1)):  # ℓ⁻ (pid > 0), then ℓ⁺
            sel = p[(p.pid == sign * flav) & (p.status > 0)]
            lead = sel[ak.argmax(np.hypot(sel.px, sel.py), axis=1, keepdims=True)][:, 0]
            px, py, pz, e = (
                ak.to_numpy(ak.fill_none(lead[f], np.nan)).astype(np.float64)
                for f in ("px", "py", "pz", "e")
            )
            pt, eta, phi = _pt_eta_phi(px, py, pz)
            iso = np.empty(len(pt))
            for code, kind in KINDS.items():
                cone = float(card.get(f"{kind}.isolation.cone"))
                ptmin = float(card.get(f"{kind}.isolation.pt_min"))
                dphi = np.abs((pphi - phi + np.pi) % (2 * np.pi) - np.pi)
                dr2 = (peta - eta) ** 2 + dphi**2
                inside = visible & (dr2 < cone**2) & (dr2 > 1e-12) & (ppt > ptmin)
                s = ak.to_numpy(ak.sum(ppt * inside, axis=1)) / pt
                iso = np.where(flav == code, s, iso)
            for k, v in zip(out, (sign * flav, pt, eta, phi, e, iso)):
                out[k][i].append(v)
    return {k: np.stack([np.concatenate(v[0]), np.concatenate(v[1])], 1) for k, v in out.items()}


def _pair_mass(pt, eta, phi, m=0.0):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    s = [a.sum(axis=1) for a in (px, py, pz, e)]
    return np.sqrt(np.maximum(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2, 0.0))


def _card_values(card, path, pid, pt, eta, e):
    out = np.empty_like(pt)
    for code, kind in KINDS.items():
        sel = np.abs(pid) == code
        f = card.formula(f"{kind}.{path}")
        out[sel] = f(pt=pt[sel], eta=eta[sel], e=e[sel], phi=np.zeros(sel.sum()))
    return out


def _matched_reco(chain, k, gen):
    """Reconstructed leptons matched (same pid, ΔR < 0.05) to the two generator leptons."""
    objs = ObjectStore(chain["dir"] / f"obj{k}.zarr").read()["objects"]
    lep = objs["l"]
    n = objs.n_events
    reco_pt = np.full((n, 2), np.nan)
    evt = lep.event_index()
    f = lep.fields
    for i in range(2):
        g = {key: gen[key][evt, i] for key in ("pid", "eta", "phi")}
        dphi = np.abs((f["phi"] - g["phi"] + np.pi) % (2 * np.pi) - np.pi)
        dr = np.hypot(f["eta"] - g["eta"], dphi)
        ok = (f["pid"] == g["pid"]) & (dr < 0.05)
        reco_pt[evt[ok], i] = f["pt"][ok]
    return objs, reco_pt


# -- tests ------------------------------------------------------------------------------------
def test_chain_runs_and_combines(chain):
    info = chain["combine"]
    n_sel = sum(j["analysis"]["n_out"] for j in chain["jobs"])
    assert info["n_events"] == n_sel > 0.3 * N_JOBS * N_PER_JOB
    out = EventStore(chain["dir"] / "combined.zarr")
    assert out.observable_names == [o["name"] for o in ANALYSIS["observables"]]
    assert out.benchmark_names == chain["names"]
    # the events were generated at the SM benchmark (id 0); ids and counts survive the combination
    assert out.attrs["signal_events"] == [n_sel] + [0] * (len(chain["names"]) - 1)
    assert out.attrs["background_events"] == 0
    ids = np.concatenate([c["sampling_benchmark"] for c in out.iter_chunks()])
    assert (ids == 0).all()
    obs = np.concatenate([c["observables"] for c in out.iter_chunks()])
    assert np.all(np.abs(obs[:, 5]) <= 1.0)  # cos θ* of every selected pair is defined
    assert np.all(obs[:, 2] >= 10.0) and np.all(np.abs(obs[:, 3:5]) < 2.5)


def test_z_peak_and_mass_resolution_follow_the_card(chain):
    card = chain["card"]
    out = EventStore(chain["dir"] / "combined.zarr")
    m_ll = np.concatenate([c["observables"][:, 0] for c in out.iter_chunks()])
    peak = m_ll[(m_ll > 80) & (m_ll < 100)]
    assert len(peak) > 200
    assert abs(np.median(peak) - MZ) < 1.0

    pulls = []
    for j in chain["jobs"]:
        gen = _generator_leptons(j["shower"].output, card)
        objs, reco_pt = _matched_reco(chain, j["k"], gen)
        both = np.isfinite(reco_pt).all(axis=1)
        # relative resolution of each lepton from the card: σ(pT)/pT for muons, σ(E)/E for
        # electrons (the same for pT at fixed η), so σ(mℓℓ)/mℓℓ = ½ √(Σ (σ/x)²)
        rel = np.empty((both.sum(), 2))
        for i in range(2):
            pt, eta, e, pid = (gen[x][both, i] for x in ("pt", "eta", "e", "pid"))
            sig = np.empty_like(pt)
            mu = np.abs(pid) == 13
            sig[mu] = (
                card.formula("muon.resolution.pt")(
                    pt=pt[mu], eta=eta[mu], e=e[mu], phi=np.zeros(mu.sum())
                )
                / pt[mu]
            )
            el = ~mu
            sig[el] = (
                card.formula("electron.resolution.e")(
                    pt=pt[el], eta=eta[el], e=e[el], phi=np.zeros(el.sum())
                )
                / e[el]
            )
            rel[:, i] = sig
        m_gen = _pair_mass(gen["pt"][both], gen["eta"][both], gen["phi"][both])
        m_reco = _pair_mass(reco_pt[both], gen["eta"][both], gen["phi"][both])
        sigma_m = 0.5 * m_gen * np.sqrt((rel**2).sum(axis=1))
        pulls.append((m_reco - m_gen) / sigma_m)
    pulls = np.concatenate(pulls)
    assert len(pulls) > 200
    # resolution as the card says: pulls ~ N(0, 1) (std error of the width ≈ 1/√(2n) ≈ 4 %)
    assert abs(np.mean(pulls)) < 0.25
    assert 0.85 < np.std(pulls) < 1.15


def test_two_lepton_efficiency_matches_card(chain):
    card = chain["card"]
    n_two, expected, var, n_all = 0, 0.0, 0.0, 0
    for j in chain["jobs"]:
        gen = _generator_leptons(j["shower"].output, card)
        pt, eta, e, pid = gen["pt"], gen["eta"], gen["e"], gen["pid"]
        eff = np.stack(
            [
                _card_values(card, "efficiency", pid[:, i], pt[:, i], eta[:, i], e[:, i])
                for i in (0, 1)
            ],
            1,
        )
        ptmin = np.where(np.abs(pid) == 13, card.get("muon.pt_min"), card.get("electron.pt_min"))
        etamax = np.where(np.abs(pid) == 13, card.get("muon.eta_max"), card.get("electron.eta_max"))
        iso_max = np.where(
            np.abs(pid) == 13,
            card.get("muon.isolation.max"),
            card.get("electron.isolation.max"),
        )
        # acceptance and isolation (mostly lost to collinear FSR photons) from the generator
        # leptons and particles, the efficiency from the card
        acc = (pt >= ptmin) & (np.abs(eta) < etamax) & (gen["iso"] <= iso_max)
        p = np.prod(eff * acc, axis=1)
        expected += p.sum()
        var += (p * (1 - p)).sum()
        n_two += j["analysis"]["n_out"]
        n_all += j["analysis"]["n_in"]
        assert j["analysis"]["n_in"] == j["shower"].n_accepted
    # a Poisson-binomial count: the observed number of two-lepton events within 3σ
    assert abs(n_two - expected) < 3 * np.sqrt(var) + 2, (n_two, expected, np.sqrt(var), n_all)


def test_benchmark_weights_carried_through(chain):
    names = chain["names"]
    out = EventStore(chain["dir"] / "combined.zarr")
    w_out = np.concatenate([c["weights"] for c in out.iter_chunks()])
    expected_rows, sigma_eff = [], np.zeros(len(names))
    for j in chain["jobs"]:
        gen, sh, ana = j["gen"], j["shower"], j["analysis"]
        sigma = np.array([gen.cross_sections[b] for b in names])
        objs = ObjectStore(chain["dir"] / f"obj{j['k']}.zarr").read()
        w = objs["weights"]
        assert w.shape == (sh.n_accepted, len(names))
        # nothing dropped by the shower here: the weights of a job sum to its cross sections
        assert sh.n_dropped == 0
        np.testing.assert_allclose(w.sum(axis=0), sigma, rtol=1e-9)
        keep = np.diff(objs["objects"]["l"].offsets) >= 2
        expected_rows.append(w[keep] / N_JOBS)
        # unweighted at the SM: Σ w_SM over the selection = σ_SM × selection efficiency
        np.testing.assert_allclose(
            w[keep, 0].sum(), sigma[0] * ana["n_out"] / ana["n_in"], rtol=1e-9
        )
        np.testing.assert_allclose(
            [ana["cross_sections"][b] for b in names], w[keep].sum(axis=0), rtol=1e-9
        )
        sigma_eff += w[keep].sum(axis=0) / N_JOBS
    np.testing.assert_allclose(w_out.sum(axis=0), sigma_eff, rtol=1e-9)
    # the same rows (every benchmark of every selected event), only shuffled
    exp = np.concatenate(expected_rows)
    key = np.lexsort(exp.T[::-1])
    got = np.lexsort(w_out.T[::-1])
    np.testing.assert_allclose(w_out[got], exp[key], rtol=1e-12)
    # the EFT benchmarks differ from the SM event by event: real per-benchmark weights
    assert np.any(np.abs(w_out[:, 1] / w_out[:, 0] - 1) > 1e-6)
