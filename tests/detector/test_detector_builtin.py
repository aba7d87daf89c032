"""Builtin detector: mass peak, efficiencies and resolutions as the card says, jets, b-tags, fakes, MET."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from eftflow.analysis.expressions import Expression
from eftflow.detector.builtin import BuiltinDetector
from eftflow.detector.card import load_card
from eftflow.errors import ConfigError, ExpressionError, InputError

NO_SMEAR = {"resolution": None, "efficiency": "1.0"}


def detector(**overrides):
    return BuiltinDetector(load_card(None, overrides=overrides))


def values(objects, text, default=np.nan):
    return Expression(text).evaluate_array(objects, default=default)


def test_dimuon_mass_peak_and_width_as_card(make_dilepton):
    ev, _ = make_dilepton(20_000, mass=91.19, n_hadrons=5)
    det = detector(muon={"efficiency": "1.0", "isolation": {"max": 10.0}})
    obj = det.reconstruct(ev, np.random.default_rng(1))
    mll = values(obj, "(mu[0] + mu[1]).m")
    assert np.isfinite(mll).mean() > 0.95  # both muons in acceptance
    mll = mll[np.isfinite(mll)]
    # expected width from the card's pT resolution, propagated per event: σ_m/m = ½ √(Σ (σ_i/pt_i)²)
    res = det.card.formula("muon.resolution.pt")
    ptt = np.hypot(
        ak.to_numpy(ak.flatten(ev.particles.px[:, :2])),
        ak.to_numpy(ak.flatten(ev.particles.py[:, :2])),
    )
    etat = np.arcsinh(ak.to_numpy(ak.flatten(ev.particles.pz[:, :2])) / ptt)
    rel = (res(pt=ptt, eta=etat, e=ptt * np.cosh(etat), phi=0 * ptt) / ptt).reshape(-1, 2)
    expected = 91.19 * 0.5 * np.sqrt(np.mean((rel**2).sum(axis=1)))
    assert abs(np.median(mll) - 91.19) < 0.05
    assert np.std(mll) == pytest.approx(expected, rel=0.1)


def test_muon_efficiency_as_card(make_dilepton):
    ev, _ = make_dilepton(20_000, n_hadrons=2)
    det = detector(
        muon={
            "efficiency": "0.9",
            "resolution": None,
            "isolation": {"max": 10.0},
            "eta_max": 10.0,
            "pt_min": 1.0,
        }
    )
    obj = det.reconstruct(ev, np.random.default_rng(2))
    n_mu = obj["mu"].n_objects
    p, n = n_mu / 40_000, 40_000
    assert abs(p - 0.9) < 4 * np.sqrt(0.9 * 0.1 / n)
    assert obj["l"].n_objects == n_mu and obj["e"].n_objects == 0


def test_eta_dependent_efficiency_table(make_dilepton):
    ev, _ = make_dilepton(20_000, n_hadrons=2)
    table = {"eta_edges": [0, 1.0, 10.0], "pt_edges": [0, 1e9], "values": [[1.0], [0.5]]}
    det = detector(
        muon={
            "efficiency": table,
            "resolution": None,
            "isolation": {"max": 10.0},
            "eta_max": 10.0,
            "pt_min": 1.0,
        }
    )
    obj = det.reconstruct(ev, np.random.default_rng(3))
    flat = ak.flatten(ev.particles[:, :2])
    eta_true = np.arcsinh(
        ak.to_numpy(flat.pz) / np.hypot(ak.to_numpy(flat.px), ak.to_numpy(flat.py))
    )
    expected = np.sum(np.where(np.abs(eta_true) < 1, 1.0, 0.5))
    assert abs(obj["mu"].n_objects - expected) < 4 * np.sqrt(0.25 * np.sum(np.abs(eta_true) >= 1))


def test_pt_resolution_width_as_card(make_dilepton):
    ev, _ = make_dilepton(10_000, n_hadrons=2)
    det = detector(
        muon={
            "efficiency": "1.0",
            "resolution": {"pt": "0.05 * pt"},
            "isolation": {"max": 10.0},
            "eta_max": 10.0,
            "pt_min": 0.0,
        }
    )
    obj = det.reconstruct(ev, np.random.default_rng(4))
    # the mu- (charge -1) is the first particle of each event
    reco = values(obj, "mu[0].pt if mu[0].charge < 0 else mu[1].pt")
    true = np.hypot(ak.to_numpy(ev.particles.px[:, 0]), ak.to_numpy(ev.particles.py[:, 0]))
    pull = (reco - true) / true
    pull = pull[np.isfinite(pull)]  # a few muons fly beyond the detector (abs(eta) > 4.9)
    assert len(pull) > 9900
    assert np.std(pull) == pytest.approx(0.05, rel=0.05)
    assert abs(np.mean(pull)) < 0.003


def test_isolation_removes_leptons_in_jets(make_dilepton):
    ev, _ = make_dilepton(500, n_hadrons=2)
    # put a 30 GeV pion right on top of the first muon of every event
    p = ev.particles
    mu = p[:, 0]
    pion = ak.zip(
        {
            "pid": np.full(len(ev), 211),
            "status": np.ones(len(ev), np.int64),
            "px": mu.px * 0.7,
            "py": mu.py * 0.7,
            "pz": mu.pz * 0.7,
            "e": mu.e * 0.7,
            "charge": np.ones(len(ev)),
        }
    )
    parts = ak.concatenate([p, pion[:, None]], axis=1)
    ev2 = ak.zip({"particles": parts, "weights": ev.weights}, depth_limit=1)
    det = detector(muon={"efficiency": "1.0", "resolution": {}, "eta_max": 10.0, "pt_min": 0.0})
    obj = det.reconstruct(ev2, np.random.default_rng(5))
    assert obj["mu"].n_objects == len(ev)  # only the second muon of each event is isolated
    assert np.all(values(obj, "mu[0].charge") == 1.0)


def test_jets_match_fastjet_directly(make_dilepton):
    import fastjet

    ev, _ = make_dilepton(300, jet=True, n_hadrons=30)
    det = detector(
        jet={**NO_SMEAR, "pt_min": 5.0, "eta_max": 10.0, "input_eta_max": 100.0},
        muon={"isolation": {"max": 10.0}, "eta_max": 100.0, "pt_min": 0.0, **NO_SMEAR},
    )
    obj = det.reconstruct(ev, np.random.default_rng(6))
    hadrons = ev.particles[np.abs(ev.particles.pid) == 211]
    vec = ak.zip(
        {"px": hadrons.px, "py": hadrons.py, "pz": hadrons.pz, "E": hadrons.e},
        with_name="Momentum4D",
    )
    jets = fastjet.ClusterSequence(
        vec, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
    ).inclusive_jets(min_pt=5.0)
    pt_ref = ak.sort(np.hypot(jets.px, jets.py), axis=1, ascending=False)
    assert ak.to_list(ak.num(pt_ref)) == np.diff(obj["j"].offsets).tolist()
    np.testing.assert_allclose(obj["j"].fields["pt"], ak.to_numpy(ak.flatten(pt_ref)), rtol=1e-9)


def test_btag_from_hard_b_quark(make_dilepton):
    ev, _ = make_dilepton(400, jet=True, n_hadrons=0)
    jet_dir = ev.particles[:, 2:]  # the collimated pions
    n = len(ev)
    tagged = np.arange(n) % 2 == 0
    bx = ak.to_numpy(ak.sum(jet_dir.px, axis=1))
    by = ak.to_numpy(ak.sum(jet_dir.py, axis=1))
    hard = ak.unflatten(
        ak.zip(
            {
                "pid": np.where(tagged, 5, 21),
                "status": np.full(n, -23),
                "px": bx,
                "py": by,
                "pz": np.zeros(n),
                "e": np.hypot(bx, by),
                "charge": np.zeros(n),
            }
        ),
        np.ones(n, int),
    )
    ev2 = ak.zip({"particles": ev.particles, "hard": hard, "weights": ev.weights}, depth_limit=1)
    det = detector(
        jet={**NO_SMEAR, "btag": {"efficiency": "1.0", "mistag_c": "0.0", "mistag_light": "0.0"}}
    )
    obj = det.reconstruct(ev2, np.random.default_rng(7))
    btag = values(obj, "j[0].btag")
    assert np.array_equal(btag, tagged.astype(float))


def test_jet_fake_rate_turns_jets_into_electrons(make_dilepton):
    ev, _ = make_dilepton(200, jet=True, n_hadrons=0)
    det = detector(electron={"fake_rate_jet": "1.0"}, jet=NO_SMEAR)
    obj = det.reconstruct(ev, np.random.default_rng(8))
    assert obj["j"].n_objects == 0
    assert obj["e"].n_objects == len(ev)
    assert set(np.unique(obj["e"].fields["charge"])) <= {-1.0, 1.0}
    assert obj["l"].n_objects == obj["e"].n_objects + obj["mu"].n_objects


def test_met_is_the_neutrino(make_dilepton):
    ev, _ = make_dilepton(300, n_hadrons=3)
    p = ev.particles
    # turn the mu+ into a neutrino: MET = its pT (no smearing)
    pid = ak.where(ak.local_index(p.pid) == 1, 14, p.pid)
    ev2 = ak.zip({"particles": ak.with_field(p, pid, "pid"), "weights": ev.weights}, depth_limit=1)
    det = detector(muon={**NO_SMEAR, "isolation": {"max": 10.0}}, jet=NO_SMEAR)
    obj = det.reconstruct(ev2, np.random.default_rng(9))
    # truth MET: minus the vector sum of everything visible (all within |eta| < 4.9 here)
    vis = ak.local_index(p.pid) != 1
    mx = -ak.to_numpy(ak.sum(p.px[vis], axis=1))
    my = -ak.to_numpy(ak.sum(p.py[vis], axis=1))
    np.testing.assert_allclose(values(obj, "met.pt"), np.hypot(mx, my), rtol=1e-9)
    np.testing.assert_allclose(values(obj, "met.phi"), np.arctan2(my, mx), rtol=1e-9)


def test_reproducible_with_seed(make_dilepton):
    ev, _ = make_dilepton(300)
    det = detector()
    a = det.reconstruct(ev, np.random.default_rng(11))
    b = det.reconstruct(ev, np.random.default_rng(11))
    c = det.reconstruct(ev, np.random.default_rng(12))
    assert np.array_equal(a["mu"].fields["pt"], b["mu"].fields["pt"])
    assert not np.array_equal(a["mu"].fields["pt"], c["mu"].fields["pt"])


def test_card_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'muons'"):
        load_card({"muons": {}})
    with pytest.raises(
        ExpressionError, match=r"muon.efficiency: 'foo' at column 1 is an unknown name"
    ):
        load_card({"muon": {"efficiency": "foo * 2"}})
    with pytest.raises(ConfigError, match="either a pt or an e resolution"):
        load_card({"muon": {"resolution": {"pt": "1", "e": "1"}}})
    with pytest.raises(ConfigError, match="table values must have shape"):
        load_card(
            {"muon": {"efficiency": {"eta_edges": [0, 1], "pt_edges": [0, 1], "values": [[1, 2]]}}}
        )
    bad = tmp_path / "card.yaml"
    bad.write_text("jet: {algorithm: siscone}\n")
    with pytest.raises(ConfigError, match=f"{bad}: jet.algorithm: unknown jet algorithm"):
        load_card(bad)
    with pytest.raises(ConfigError, match="detector card not found"):
        load_card(tmp_path / "missing.yaml")


@pytest.mark.parametrize("value", ["1.5", "-0.5", "2 * abs(eta)", "1.0 if eta > 0 else -0.1"])
def test_efficiency_outside_0_1_on_the_events_is_an_error(make_dilepton, value):
    ev, _ = make_dilepton(50)
    det = BuiltinDetector(
        load_card(None, overrides={"muon": {"efficiency": value}}, config_file="cfg.yaml")
    )
    with pytest.raises(InputError, match="must be a probability in") as err:
        det.reconstruct(ev, np.random.default_rng(1))
    assert err.value.file == "cfg.yaml"
    assert err.value.field == "detector.builtin.card_overrides.muon.efficiency"


def test_probability_errors_name_the_card_file_and_key(tmp_path, make_dilepton):
    card = tmp_path / "card.yaml"
    card.write_text("jet:\n  btag: {mistag_light: 'abs(eta) + 1.2'}\n")
    ev, _ = make_dilepton(100, jet=True, n_hadrons=0)  # light jets
    det = BuiltinDetector(load_card(card))
    with pytest.raises(InputError) as err:
        det.reconstruct(ev, np.random.default_rng(1))
    assert err.value.file == str(card) and err.value.field == "jet.btag.mistag_light"
    for value in (1.5, -0.5, {"eta_edges": [0, 3], "pt_edges": [0, 1e9], "values": [[1.1]]}):
        with pytest.raises(ConfigError, match=r"must be a probability in \[0, 1\]") as err:
            load_card(None, overrides={"electron": {"fake_rate_jet": value}}, config_file="c.yaml")
        assert (err.value.file, err.value.field) == (
            "c.yaml",
            "detector.builtin.card_overrides.electron.fake_rate_jet",
        )
    with pytest.raises(ConfigError) as err:
        load_card(None, overrides={"muon": {"efficiency": "pt +"}}, config_file="c.yaml")
    assert (err.value.file, err.value.field) == (
        "c.yaml",
        "detector.builtin.card_overrides.muon.efficiency",
    )
    with pytest.raises(ConfigError) as err:
        load_card(None, overrides={"jet": {"R": "x"}}, config_file="c.yaml")
    assert (err.value.file, err.value.field) == ("c.yaml", "detector.builtin.card_overrides.jet.R")
