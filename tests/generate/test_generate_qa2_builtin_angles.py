"""Builtin generator: Pythia's own angular distribution against the documented formula (QA 2).

Independent of eftflow's kinematics code: the LHE file is read with pylhe and cos θ* is computed
here with numpy (quark = the incoming parton with positive id, ℓ⁻ = positive lepton id). Given
each event's ŝ and quark flavour, the formula's forward-backward asymmetry A_FB(ŝ, q) is the
expected value of sign(cos θ*); the mean over events must agree with the data within errors.
A flip of the angle convention (antiquark, or ℓ⁺) changes the sign of A_FB, which is ~0.6 here.
Second check: the per-event weight ratio is the formula's |M(θ)|²/|M_SM|² at that (ŝ, q, cos θ*).
"""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.generate.base import GenerationJob
from eftflow.generate.builtin import BuiltinGenerator
from eftflow.physics.drellyan import EWParameters, squared_me
from eftflow.setup import EFTSetup

pytest.importorskip("pythia8mc")
pylhe = pytest.importorskip("pylhe")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_parameter("eft", 2, "Y", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0, "Y": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3, "Y": 0.0}, "w_pos", verbose=False)
    s.add_benchmark({"W": 0.0, "Y": -1e-3}, "y_neg", verbose=False)
    out = tmp_path_factory.mktemp("gen") / "dy.lhe.gz"
    job = GenerationJob("hm", 0, 3000, 5, out, s, options={"mll": [500.0, 1500.0]})
    res = BuiltinGenerator().generate(job)
    return s, res, out


def _read(path):
    rows = []
    for ev in pylhe.LHEFile.fromfile(str(path)).events:
        ps = ev.particles
        inc = [p for p in ps if p.status == -1]
        q = next(p for p in inc if p.id > 0)
        lm = next(p for p in ps if p.status == 1 and p.id > 0)
        lp = next(p for p in ps if p.status == 1 and p.id < 0)
        w = [ev.weights[k] for k in ("sm", "w_pos", "y_neg")]
        rows.append([q.id, q.px, q.py, q.pz, q.e, lm.px, lm.py, lm.pz, lm.e,
                     lp.px, lp.py, lp.pz, lp.e, *w])  # fmt: skip
    a = np.array(rows)
    return a[:, 0].astype(int), a[:, 1:5], a[:, 5:9], a[:, 9:13], a[:, 13:]


def _cos_star(q, lm, lp):
    """Boost with the explicit Lorentz matrix, then the angle of ℓ⁻ to the quark."""
    tot = lm + lp
    out = np.empty(len(q))
    for i in range(len(q)):
        b = tot[i, :3] / tot[i, 3]
        b2 = b @ b
        g = 1 / np.sqrt(1 - b2)
        lam = np.eye(4)
        lam[3, 3] = g
        lam[3, :3] = lam[:3, 3] = -g * b
        lam[:3, :3] += (g - 1) * np.outer(b, b) / b2
        # vectors ordered (px, py, pz, e)
        q3, l3 = (lam @ q[i])[:3], (lam @ lm[i])[:3]
        out[i] = q3 @ l3 / np.linalg.norm(q3) / np.linalg.norm(l3)
    return out


def test_forward_backward_asymmetry_matches_formula(sample):
    _, _, out = sample
    qid, q, lm, lp, _ = _read(out)
    cos = _cos_star(q, lm, lp)
    shat = (lm + lp)[:, 3] ** 2 - np.sum((lm + lp)[:, :3] ** 2, axis=1)
    ew = EWParameters.from_pythia(_pythia())

    # f(c) = a (1 + c)² + b (1 − c)²  =>  a = f(1)/4, b = f(−1)/4, A_FB = 3/4 (a − b)/(a + b)
    q_abs = np.abs(qid)
    a = squared_me(shat, np.ones(len(shat)), q_abs, [[0.0]], ["W"], ew)[:, 0]
    b = squared_me(shat, -np.ones(len(shat)), q_abs, [[0.0]], ["W"], ew)[:, 0]
    expected = 0.75 * (a - b) / (a + b)
    sgn = np.sign(cos)
    err = np.sqrt(np.var(sgn - expected) / len(sgn))
    assert abs(sgn.mean() - expected.mean()) < 4 * err
    assert expected.mean() > 0.4  # a large asymmetry: a flipped convention would fail by ~20σ


def test_event_weight_ratios_are_the_formula(sample):
    s, _, out = sample
    qid, q, lm, lp, w = _read(out)
    cos = _cos_star(q, lm, lp)
    shat = (lm + lp)[:, 3] ** 2 - np.sum((lm + lp)[:, :3] ** 2, axis=1)
    ew = EWParameters.from_pythia(_pythia())
    theta = s.benchmark_array()
    me = squared_me(shat, cos, np.abs(qid), theta, ["W", "Y"], ew)
    np.testing.assert_allclose(w[:, 1:] / w[:, :1], me[:, 1:] / me[:, :1], rtol=1e-6)
    # W > 0 and Y < 0 at 0.5-1.5 TeV: W destructive, Y < 0 constructive (sign convention)
    assert (w[:, 1].sum() < w[:, 0].sum()) and (w[:, 2].sum() > w[:, 0].sum())


def _pythia():
    import pythia8mc

    from eftflow.generate.builtin import pythia_settings

    p = pythia8mc.Pythia("", False)
    for st in pythia_settings((500.0, 1500.0), 1):
        p.readString(st)
    p.init()
    return p
