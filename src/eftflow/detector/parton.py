"""Parton-level "detector": Gaussian smearing of LHE objects (MadMiner's ``LHEReader`` smearing).

Final-state (``status == 1``) LHE particles become objects directly: |pid| 11 → ``e``, 13 → ``mu``
(both → ``l``), 22 → ``a``, quarks 1–6 (undecayed tops too) and gluons 21 (and 9) → ``j``
(``btag = 1`` for b quarks), as in MadMiner's ``LHEReader``. Neutrinos 12/14/16 and non-SM ids
(e.g. 1000022) are invisible; τ leptons and undecayed W/Z/H (|pid| 15, 23–25) form no collection
but, as in MadMiner, count as visible in MET and HT. The smearing follows MadMiner's
``set_smearing``: for each group of PDG ids, Gaussian widths ``abs + rel × value`` for E, pT, η and
φ; when the pT width is ``null`` the pT follows from the smeared energy and the mass (and the
energy from pT and mass when the energy width is ``null``; not both). Unlike MadMiner, ids
without a smearing entry are kept unsmeared rather than dropped, and ids match on |pid|.
MET is minus the vector sum of the visible (smeared) particles plus Gaussian noise of width
``met_noise.abs + met_noise.rel × HT`` per component (MadMiner's ``set_met_noise``), HT being the
scalar pT sum of the same particles.

Options (the ``detector`` config section)::

    backend: parton
    smearing:
      - {pdgids: [1, 2, 3, 4, 5, 21], energy_resolution_abs: 0.0, energy_resolution_rel: 0.1,
         pt_resolution_abs: null, pt_resolution_rel: null, eta_resolution_abs: 0.1,
         eta_resolution_rel: 0.0, phi_resolution_abs: 0.1, phi_resolution_rel: 0.0}
    met_noise: {abs: 0.0, rel: 0.0}
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from eftflow.analysis.objects import (
    Collection,
    EventObjects,
    merge_collections,
    single_from_cartesian,
)
from eftflow.analysis.vectors import from_cartesian
from eftflow.detector.base import ChunkDetector
from eftflow.detector.builtin import read_particles
from eftflow.errors import ConfigError

__all__ = ["PartonDetector", "Smearing", "create"]

JET_IDS = (1, 2, 3, 4, 5, 6, 9, 21)
#: |pid| that enter the MET and HT sums: MadMiner's SM elementary particles minus the neutrinos
MET_VISIBLE_IDS = (1, 2, 3, 4, 5, 6, 11, 13, 15, 21, 22, 23, 24, 25)
_SMEAR_KEYS = {
    "pdgids",
    "energy_resolution_abs",
    "energy_resolution_rel",
    "pt_resolution_abs",
    "pt_resolution_rel",
    "eta_resolution_abs",
    "eta_resolution_rel",
    "phi_resolution_abs",
    "phi_resolution_rel",
}


class Smearing:
    """One ``set_smearing`` entry: widths ``abs + rel × value`` (``None`` = derive from on-shell)."""

    def __init__(
        self,
        pdgids,
        energy_resolution_abs=0.0,
        energy_resolution_rel=0.0,
        pt_resolution_abs=None,
        pt_resolution_rel=None,
        eta_resolution_abs=0.0,
        eta_resolution_rel=0.0,
        phi_resolution_abs=0.0,
        phi_resolution_rel=0.0,
        *,
        field: str = "detector.smearing",
        file=None,
    ):
        self.pdgids = np.unique(np.abs(np.asarray(pdgids, np.int64)))
        self.e = (energy_resolution_abs, energy_resolution_rel)
        self.pt = (pt_resolution_abs, pt_resolution_rel)
        self.eta = (eta_resolution_abs, eta_resolution_rel)
        self.phi = (phi_resolution_abs, phi_resolution_rel)
        if None in self.e and None in self.pt:
            raise ConfigError(
                "cannot derive both pT and energy from the on-shell condition: give one of "
                "energy_resolution_* or pt_resolution_*",
                file=file,
                field=field,
            )

    @staticmethod
    def _draw(value, res, rng, minimum=None):
        a, r = res
        sigma = np.maximum(float(a or 0.0) + float(r or 0.0) * value, 0.0)
        out = value + rng.standard_normal(len(value)) * sigma
        if minimum is not None:
            for _ in range(100):  # redraw below the minimum, as MadMiner does
                bad = out <= minimum
                if not bad.any():
                    break
                out[bad] = value[bad] + rng.standard_normal(int(bad.sum())) * sigma[bad]
            out = np.maximum(out, minimum)
        return out

    def apply(self, pt, eta, phi, m, rng):
        """Smeared ``(pt, eta, phi, e, m)`` of these particles (``m`` changes only when both E
        and pT are smeared)."""
        e = np.sqrt((pt * np.cosh(eta)) ** 2 + m * m)
        new_eta = self._draw(eta, self.eta, rng)
        new_phi = (self._draw(phi, self.phi, rng) + np.pi) % (2 * np.pi) - np.pi
        if None in self.pt:
            new_e = self._draw(e, self.e, rng, minimum=m)
            new_pt = np.sqrt(np.maximum(new_e**2 - m * m, 0.0)) / np.cosh(new_eta)
        else:
            new_pt = self._draw(pt, self.pt, rng, minimum=0.0)
            if None in self.e:
                new_e = np.sqrt((new_pt * np.cosh(new_eta)) ** 2 + m * m)
            else:  # E and pT smeared independently: the mass follows from them (MadMiner's
                # setptetaphie), zero where the smeared energy is below the momentum
                new_e = self._draw(e, self.e, rng, minimum=0.0)
                p2 = (new_pt * np.cosh(new_eta)) ** 2
                return new_pt, new_eta, new_phi, new_e, np.sqrt(np.maximum(new_e**2 - p2, 0.0))
        return new_pt, new_eta, new_phi, new_e, m


class PartonDetector(ChunkDetector):
    """LHE-level objects with MadMiner-style Gaussian smearing."""

    name = "parton"

    def __init__(
        self, smearing: list[Smearing] | None = None, met_noise: tuple[float, float] = (0.0, 0.0)
    ):
        self.smearing = list(smearing or [])
        self.met_noise = (float(met_noise[0]), float(met_noise[1]))

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "smearing": [
                {"pdgids": s.pdgids.tolist(), "e": s.e, "pt": s.pt, "eta": s.eta, "phi": s.phi}
                for s in self.smearing
            ],
            "met_noise": list(self.met_noise),
        }

    def reconstruct(self, events, rng: np.random.Generator) -> EventObjects:
        n, evt, p = read_particles(events)
        keep = p["status"] == 1
        evt = evt[keep]
        pid = p["pid"][keep].astype(np.int64)
        apid = np.abs(pid)
        charge = p["charge"][keep].astype(np.float64)
        pt, eta, phi, m = from_cartesian(p["px"][keep], p["py"][keep], p["pz"][keep], p["e"][keep])
        e = np.asarray(p["e"][keep], np.float64).copy()
        for s in self.smearing:
            sel = np.isin(apid, s.pdgids)
            if sel.any():
                pt[sel], eta[sel], phi[sel], e[sel], m[sel] = s.apply(
                    pt[sel], eta[sel], phi[sel], m[sel], rng
                )
        visible = np.isin(apid, MET_VISIBLE_IDS)
        px, py = pt * np.cos(phi), pt * np.sin(phi)
        met_x = -np.bincount(evt[visible], weights=px[visible], minlength=n)
        met_y = -np.bincount(evt[visible], weights=py[visible], minlength=n)
        if self.met_noise != (0.0, 0.0):
            ht = np.bincount(evt[visible], weights=pt[visible], minlength=n)
            sigma = self.met_noise[0] + self.met_noise[1] * ht
            met_x += rng.standard_normal(n) * sigma
            met_y += rng.standard_normal(n) * sigma

        def coll(sel, **extra):
            return Collection.from_fields(
                np.bincount(evt[sel], minlength=n),
                pt=pt[sel],
                eta=eta[sel],
                phi=phi[sel],
                m=m[sel],
                e=e[sel],
                charge=charge[sel],
                **{k: v[sel] for k, v in extra.items()},
            ).sorted_by("pt")

        fpid = pid.astype(np.float64)
        colls = {"e": coll(apid == 11, pid=fpid), "mu": coll(apid == 13, pid=fpid)}
        colls["l"] = merge_collections(colls["e"], colls["mu"])
        colls["a"] = coll(apid == 22)
        colls["j"] = coll(np.isin(apid, JET_IDS), btag=(apid == 5).astype(np.float64))
        colls["met"] = single_from_cartesian(met_x, met_y)
        return EventObjects(n, colls)


def create(options: Mapping, *, file: str | None = None) -> PartonDetector:
    """The parton detector from the ``detector`` config section (``smearing``, ``met_noise``)."""
    allowed = {"backend", "smearing", "met_noise", "chunk_size"}
    extra = sorted(set(options) - allowed)
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r} for the parton detector; allowed: {', '.join(sorted(allowed))}",
            file=file,
            field=f"detector.{extra[0]}",
        )
    smear = []
    for i, s in enumerate(options.get("smearing") or []):
        where = f"detector.smearing[{i}]"
        if not isinstance(s, Mapping) or "pdgids" not in s:
            raise ConfigError(
                "expected a mapping with pdgids and resolutions", file=file, field=where
            )
        bad = sorted(set(s) - _SMEAR_KEYS)
        if bad:
            raise ConfigError(
                f"unknown key {bad[0]!r}; allowed: {', '.join(sorted(_SMEAR_KEYS))}",
                file=file,
                field=f"{where}.{bad[0]}",
            )
        smear.append(Smearing(**s, field=where, file=file))
    noise = options.get("met_noise") or {}
    if not isinstance(noise, Mapping) or set(noise) - {"abs", "rel"}:
        raise ConfigError(
            "met_noise must be {abs: ..., rel: ...}", file=file, field="detector.met_noise"
        )
    return PartonDetector(smear, (noise.get("abs", 0.0), noise.get("rel", 0.0)))
