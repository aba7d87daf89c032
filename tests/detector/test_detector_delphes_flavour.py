"""Delphes backend: the hard-process record reaches Delphes as non-final partons, so jets get their
flavour (b-tagging) as from Pythia's own HepMC output; the fake Delphes tags as Delphes' reader
and JetFlavorAssociation do."""

from __future__ import annotations

import awkward as ak
import numpy as np

from eftflow.analysis.objects import ObjectStore
from eftflow.detector.base import DetectorJob, ParticleSource, get_detector
from eftflow.detector.delphes import write_hepmc


def _spray(pt, eta, phi, n=4):
    """n collinear pions sharing ``pt`` (a jet's constituents)."""
    out = []
    for k in range(n):
        p = pt / n
        e = p * np.cosh(eta)
        out.append({"pid": 211 if k % 2 else -211, "status": 1, "px": p * np.cos(phi),
                    "py": p * np.sin(phi), "pz": p * np.sinh(eta), "e": float(np.hypot(e, 0.14))})  # fmt: skip
    return out


def _parton(pid, status, pt, eta, phi):
    return {"pid": pid, "status": status, "px": pt * np.cos(phi), "py": pt * np.sin(phi),
            "pz": pt * np.sinh(eta), "e": pt * np.cosh(eta)}  # fmt: skip


def _events(n=6, with_hard=True):
    """A b jet at (eta, phi) = (0.5, 1.0) and a gluon jet at (-0.3, -2.0) in every event; the hard
    record holds the b and the gluon as Pythia's outgoing hard partons (status -23)."""
    parts = [_spray(60.0, 0.5, 1.0) + _spray(45.0, -0.3, -2.0) for _ in range(n)]
    fields = {"particles": ak.Array(parts), "weights": np.ones((n, 2))}
    if with_hard:
        hard = [[_parton(5, -23, 60.0, 0.5, 1.0), _parton(21, -23, 45.0, -0.3, -2.0)]] * n
        fields["hard"] = ak.Array(hard)
    return ak.zip(fields, depth_limit=1)


def test_hard_partons_are_written_non_final(tmp_path):
    import pyhepmc

    src = ParticleSource.from_arrays(_events(2), ["sm", "bsm"])
    write_hepmc(src, tmp_path / "ev.hepmc")
    with pyhepmc.open(str(tmp_path / "ev.hepmc")) as f:
        ev = next(iter(f))
    by_status = {}
    for p in ev.particles:
        by_status.setdefault(p.status, []).append(p.pid)
    assert sorted(by_status[23]) == [5, 21]  # Pythia's HepMC status of outgoing hard partons
    assert len(by_status[1]) == 8 and sorted(by_status[4]) == [2212, 2212]


def test_b_jet_is_tagged_through_the_hard_record(fake_delphes, tmp_path):
    exe, card = fake_delphes
    det = get_detector("delphes", {"executable": exe, "card": card})
    tags = {}
    for with_hard in (True, False):
        src = ParticleSource.from_arrays(_events(6, with_hard), ["sm", "bsm"])
        out = tmp_path / f"obj_{with_hard}.zarr"
        det.simulate(DetectorJob(src, out, seed=1, chunk_size=4))
        jets = ObjectStore(out).read()["objects"].to_awkward().j
        assert ak.all(ak.num(jets, axis=1) == 2)
        lead_is_b = np.abs(ak.to_numpy(jets.phi[:, 0]) - 1.0) < 0.1  # the 60 GeV jet
        assert lead_is_b.all()
        tags[with_hard] = ak.to_numpy(jets.btag)
    np.testing.assert_array_equal(tags[True], np.tile([1.0, 0.0], (6, 1)))
    np.testing.assert_array_equal(tags[False], 0.0)  # final-state particles alone: no flavour
