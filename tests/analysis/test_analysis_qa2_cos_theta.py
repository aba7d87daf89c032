"""Generator truth → parton detector → analysis expressions, checked event by event (QA 2).

At LO the lepton pair has no transverse momentum, so the Collins–Soper angle equals the true
cos θ* (quark vs ℓ⁻ in the ℓℓ rest frame) whenever the quark moves along the pair's boost, and
its negative otherwise. The truth is taken from the LHE record with pylhe, the reconstruction
goes through the LHE source, the parton detector and the expression engine.
"""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.analysis.expressions import Expression
from eftflow.detector.parton import PartonDetector
from eftflow.detector.sources import open_source
from eftflow.generate.base import GenerationJob
from eftflow.generate.builtin import BuiltinGenerator
from eftflow.setup import EFTSetup

pytest.importorskip("pythia8mc")
pylhe = pytest.importorskip("pylhe")


def test_collins_soper_and_pair_mass_match_generator_truth(tmp_path):
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3}, "w", verbose=False)
    out = tmp_path / "dy.lhe.gz"
    BuiltinGenerator().generate(
        GenerationJob("x", 0, 500, 9, out, s, options={"mll": [200.0, 1000.0]})
    )
    truth = []
    for ev in pylhe.LHEFile.fromfile(str(out)).events:
        ps = ev.particles
        q = next(p for p in ps if p.status == -1 and p.id > 0)
        lm = next(p for p in ps if p.status == 1 and p.id > 0)
        lp = next(p for p in ps if p.status == 1 and p.id < 0)
        p4 = np.array([[lm.px, lm.py, lm.pz, lm.e], [lp.px, lp.py, lp.pz, lp.e]])
        tot = p4.sum(0)
        m = np.sqrt(tot[3] ** 2 - tot[:3] @ tot[:3])
        # LO: the pair is at rest transversely; boost along z into its rest frame
        b = tot[2] / tot[3]
        g = 1 / np.sqrt(1 - b * b)
        pz_l = g * (lm.pz - b * lm.e)
        e_l = g * (lm.e - b * lm.pz)
        cos_q = np.sign(q.pz) * pz_l / np.sqrt(e_l**2 - lm.m**2 if lm.m else e_l**2)
        truth.append((cos_q, np.sign(q.pz) * np.sign(tot[2]), m, lm.px, lm.py))
    truth = np.array(truth)
    src = open_source(out, ["sm", "w"])
    chunk = next(iter(src.iter_chunks(10_000)))
    obj = PartonDetector().reconstruct(chunk, np.random.default_rng(0))
    cs = Expression("cos_theta_cs(l[0], l[1])").evaluate_array(obj)
    np.testing.assert_allclose(cs, truth[:, 0] * truth[:, 1], atol=1e-6)
    # argument order does not matter (the ℓ⁻ is found by charge)
    np.testing.assert_allclose(Expression("cos_theta_cs(l[1], l[0])").evaluate_array(obj), cs)
    np.testing.assert_allclose(
        Expression("(l[0] + l[1]).m").evaluate_array(obj), truth[:, 2], rtol=1e-7
    )
    # leading lepton is the harder one; at LO both have the same pT, so check pT and MET
    pt_true = np.hypot(truth[:, 3], truth[:, 4])
    np.testing.assert_allclose(Expression("l[0].pt").evaluate_array(obj), pt_true, rtol=1e-7)
    assert np.all(Expression("l[0].pt >= l[1].pt").evaluate_array(obj) == 1)
    np.testing.assert_allclose(Expression("met.pt").evaluate_array(obj), 0.0, atol=1e-6)
    # missing objects get the default of the observable, not garbage
    assert np.all(Expression("n_j").evaluate_array(obj) == 0)
