"""Parton-level detector against MadMiner's own ``LHEReader`` object building (QA campaign 2).

MadMiner (``madminer.utils.interfaces.lhe._get_objects``) puts undecayed top quarks into the
jets and counts every SM elementary particle but the neutrinos (τ, W, Z, H and tops included) as
visible in MET and HT; the parton backend claims MadMiner's semantics, so both must agree.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from eftflow.analysis.expressions import Expression
from eftflow.detector.parton import PartonDetector


def _events():
    """t t̄ + τ⁻ + ν_τ + g + a neutralino (all status 1) after two incoming gluons."""
    import awkward as ak

    rng = np.random.default_rng(7)
    n = 50
    pids = [21, 21, 6, -6, 15, -16, 21, 1000022]
    status = [-1, -1, 1, 1, 1, 1, 1, 1]
    masses = [0, 0, 173.0, 173.0, 1.777, 0, 0, 100.0]
    recs = []
    for _ in range(n):
        parts = []
        for pid, st, m in zip(pids, status, masses):
            px, py, pz = (0.0, 0.0, 0.0) if st < 0 else rng.normal(0, 60, 3)
            e = np.sqrt(px * px + py * py + pz * pz + m * m) if st > 0 else 500.0
            parts.append({"pid": pid, "status": st, "px": px, "py": py, "pz": pz, "e": e})
        recs.append(parts)
    return ak.Array({"particles": recs}), recs


def _madminer_objects(rec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from madminer.utils.interfaces.lhe import _get_objects
        from madminer.utils.particle import MadMinerParticle

        parts = []
        for p in rec:
            if p["status"] != 1:
                continue
            mp = MadMinerParticle.from_xyzt(p["px"], p["py"], p["pz"], p["e"])
            mp.set_pdgid(p["pid"])
            parts.append(mp)
        return _get_objects(parts, parts)


def test_met_and_jets_follow_madminer():
    pytest.importorskip("madminer")
    events, recs = _events()
    obj = PartonDetector().reconstruct(events, np.random.default_rng(0))
    met = Expression("met.pt").evaluate_array(obj)
    met_phi = Expression("met.phi").evaluate_array(obj)
    n_j = Expression("n_j").evaluate_array(obj)
    j0 = Expression("j[0].pt").evaluate_array(obj)
    for i, rec in enumerate(recs):
        mm = _madminer_objects(rec)
        assert met[i] == pytest.approx(mm["met"].pt, rel=1e-9, abs=1e-9)
        dphi = (met_phi[i] - mm["met"].phi + np.pi) % (2 * np.pi) - np.pi
        assert dphi == pytest.approx(0.0, abs=1e-9)
        assert n_j[i] == len(mm["j"])
        assert j0[i] == pytest.approx(mm["j"][0].pt, rel=1e-9)


def test_met_noise_uses_madminer_ht():
    """HT of the MET noise sums the same visible particles as MadMiner (tops and τ included)."""
    events, recs = _events()
    det = PartonDetector(met_noise=(0.0, 1.0))
    a = det.reconstruct(events, np.random.default_rng(3))
    b = PartonDetector().reconstruct(events, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    ht = np.array(
        [
            sum(
                np.hypot(p["px"], p["py"])
                for p in rec
                if abs(p["pid"]) in (6, 15, 21) and p["status"] == 1
            )
            for rec in recs
        ]
    )
    nx, ny = rng.standard_normal(len(recs)) * ht, rng.standard_normal(len(recs)) * ht
    for k, (f, noise) in enumerate((("met.px", nx), ("met.py", ny))):
        del k
        diff = Expression(f).evaluate_array(a) - Expression(f).evaluate_array(b)
        np.testing.assert_allclose(diff, noise, rtol=1e-9, atol=1e-9)
