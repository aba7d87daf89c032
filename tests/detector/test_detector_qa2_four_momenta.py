"""Builtin detector: a smeared jet's energy agrees with its smeared pT, η and mass."""

from __future__ import annotations

import numpy as np

from eftflow.detector.builtin import BuiltinDetector
from eftflow.detector.card import load_card


def test_smeared_jet_four_momentum_is_consistent(make_dilepton):
    ev, _ = make_dilepton(200, jet=True, n_hadrons=10)
    det = BuiltinDetector(
        load_card(
            None,
            overrides={
                "jet": {
                    "efficiency": "1.0",
                    "pt_min": 5.0,
                    "resolution": {"pt": "0.1 * pt", "eta": "0.2"},
                }
            },
        )
    )
    jets = det.reconstruct(ev, np.random.default_rng(3))["j"].fields
    assert len(jets["pt"]) > 100
    e_from_kinematics = np.sqrt((jets["pt"] * np.cosh(jets["eta"])) ** 2 + jets["m"] ** 2)
    np.testing.assert_allclose(jets["e"], e_from_kinematics, rtol=1e-9)


def test_parton_mass_follows_independent_e_and_pt_smearing():
    """MadMiner builds the smeared particle from (pT, η, φ, E): its mass follows from them."""
    from eftflow.detector.base import get_detector
    from eftflow.detector.sources import lhe_chunk_to_awkward

    from .test_detector_parton import lhe_events

    ev = lhe_events(2000, seed=4)
    chunk = lhe_chunk_to_awkward(ev, ev.weights)
    det = get_detector(
        "parton",
        {
            "smearing": [
                {
                    "pdgids": [11],
                    "energy_resolution_abs": 3.0,
                    "energy_resolution_rel": 0.0,
                    "pt_resolution_abs": 0.0,
                    "pt_resolution_rel": 0.02,
                }
            ]
        },
    )
    e = det.reconstruct(chunk, np.random.default_rng(2))["e"].fields
    p2 = (e["pt"] * np.cosh(e["eta"])) ** 2
    np.testing.assert_allclose(e["m"], np.sqrt(np.maximum(e["e"] ** 2 - p2, 0.0)), atol=1e-9)
    assert (e["m"] > 1.0).mean() > 0.3  # the electrons' mass is no longer ~0.5 MeV
