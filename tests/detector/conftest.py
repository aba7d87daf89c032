"""Fixtures for detector tests: synthetic particle-level events (no Pythia) and the fake Delphes."""

from __future__ import annotations

import numpy as np
import pytest

MZ, GZ = 91.1876, 2.4952


def dilepton_events(
    n: int,
    *,
    lepton_pid: int = 13,
    n_hadrons: int = 20,
    n_benchmarks: int = 2,
    seed: int = 1,
    jet: bool = False,
    mass: float | None = None,
):
    """n events: a lepton pair from a Breit-Wigner Z (or fixed ``mass``) with a random boost,
    ``n_hadrons`` soft pions spread in η–φ, optionally a hard collimated 'jet' of pions.

    Returns an awkward Array with fields particles (pid, status, px, py, pz, e, charge) and weights.
    """
    import awkward as ak

    rng = np.random.default_rng(seed)
    if mass is None:
        m = MZ + 0.5 * GZ * np.tan(np.pi * (rng.random(n) - 0.5))
        m = np.clip(m, 60, 120)
    else:
        m = np.full(n, float(mass))
    cos = rng.uniform(-1, 1, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    sin = np.sqrt(1 - cos**2)
    p = m / 2
    l1 = np.stack([p * sin * np.cos(phi), p * sin * np.sin(phi), p * cos, p], axis=1)
    l2 = l1 * np.array([-1, -1, -1, 1])
    # boost along z with rapidity y
    y = rng.uniform(-1.0, 1.0, n)
    ch, sh = np.cosh(y), np.sinh(y)

    def boost(v):
        out = v.copy()
        out[:, 2] = ch * v[:, 2] + sh * v[:, 3]
        out[:, 3] = sh * v[:, 2] + ch * v[:, 3]
        return out

    l1, l2 = boost(l1), boost(l2)
    # per event: 2 leptons, n_hadrons soft pions, optionally an 8-pion collimated "jet"
    h_pt = rng.exponential(1.0, (n, n_hadrons)) + 0.2
    h_eta = rng.uniform(-4, 4, (n, n_hadrons))
    h_phi = rng.uniform(-np.pi, np.pi, (n, n_hadrons))
    n_jet = 8 if jet else 0
    if jet:
        k = np.arange(n_jet)
        j_pt = np.full((n, n_jet), 10.0)
        j_eta = np.tile(0.05 * (k - 4), (n, 1))
        j_phi = (phi + np.pi / 2)[:, None] + 0.03 * (k % 3)[None, :]
        h_pt, h_eta, h_phi = (
            np.hstack([a, b]) for a, b in ((h_pt, j_pt), (h_eta, j_eta), (h_phi, j_phi))
        )
    m_pi = 0.1396
    hpx, hpy, hpz = h_pt * np.cos(h_phi), h_pt * np.sin(h_phi), h_pt * np.sinh(h_eta)
    he = np.sqrt(hpx**2 + hpy**2 + hpz**2 + m_pi**2)
    n_h = n_hadrons + n_jet
    h_pid = np.where(np.arange(n_h) % 2 == 1, 211, -211)
    if jet:
        h_pid[n_hadrons:] = 211
    pid_l = abs(lepton_pid)
    width = 2 + n_h
    pid = np.hstack([np.tile([pid_l, -pid_l], (n, 1)), np.tile(h_pid, (n, 1))])
    px = np.hstack([l1[:, :1], l2[:, :1], hpx])
    py = np.hstack([l1[:, 1:2], l2[:, 1:2], hpy])
    pz = np.hstack([l1[:, 2:3], l2[:, 2:3], hpz])
    e = np.hstack([l1[:, 3:4], l2[:, 3:4], he])
    q = np.where(np.abs(pid) == pid_l, -np.sign(pid), np.sign(pid)).astype(float)
    counts = np.full(n, width)
    particles = ak.unflatten(
        ak.zip(
            {
                "pid": pid.ravel().astype(np.int64),
                "status": np.ones(n * width, np.int64),
                "px": px.ravel(),
                "py": py.ravel(),
                "pz": pz.ravel(),
                "e": e.ravel(),
                "charge": q.ravel(),
            }
        ),
        counts,
    )
    weights = np.tile(np.arange(1, n_benchmarks + 1, dtype=float) * 1e-3, (n, 1))
    return ak.zip({"particles": particles, "weights": weights}, depth_limit=1), m


@pytest.fixture
def make_dilepton():
    return dilepton_events


@pytest.fixture
def fake_delphes(tmp_path):
    """(executable wrapper running the fake with this Python, a card file)."""
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "fake_delphes" / "DelphesHepMC3"
    wrap = tmp_path / "bin" / "DelphesHepMC3"
    wrap.parent.mkdir()
    wrap.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    wrap.chmod(0o755)
    card = tmp_path / "card.tcl"
    card.write_text("# fake Delphes card\n")
    return str(wrap), str(card)
