"""HepMC3 ASCII output of Pythia events (for Delphes), via ``pyhepmc``.

``pythia8mc`` has no HepMC writer, so events are converted here from the arrays of
``Pythia.nextBatch`` (the full record: ids, statuses, mothers, momenta, masses). Two points make
the files readable by HepMC3's reader (and Delphes):

* particles are added in topological order (every mother before its daughters): ISR backward
  evolution puts a mother *after* its daughter in Pythia's record, and back references make
  HepMC3 3.2's ASCII reader fail ("too few vertices were parsed");
* vertices follow Pythia's ``Pythia8ToHepMC3``: a particle's production vertex is the end vertex
  of its first mother that has one, else a new vertex whose incoming particles are its mothers.

Mothers are decoded as Pythia's ``Particle::motherList()`` does; HepMC status as
``statusHepMC()`` (final 1, beams 4, decayed hadrons/leptons 2, else −status). Each event carries
the named weights (``Weight`` then the benchmarks, pb), the cross section (pb) and PDF info.
Conversion is Python-bound (~50 events/s for full pp → Z events): use it only for Delphes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from eftflow.store.atomic import atomic_path

__all__ = ["HepMCWriter", "mother_lists", "topological_order", "status_hepmc"]

log = logging.getLogger(__name__)


def mother_lists(status, mother1, mother2) -> list[list[int]]:
    """Pythia's ``motherList()`` for every entry (index 0, the system, has none)."""
    out: list[list[int]] = []
    for i, (st, m1, m2) in enumerate(zip(status, mother1, mother2)):
        a = abs(int(st))
        m1, m2 = int(m1), int(m2)
        if i == 0 or a in (11, 12) or (m1 == 0 and m2 == 0):
            out.append([])
        elif m2 == 0 or m2 == m1:
            out.append([m1] if m1 > 0 else [])
        elif 80 < a < 90 or 100 < a < 107:
            out.append(list(range(m1, m2 + 1)))
        else:
            out.append([m for m in sorted((m1, m2)) if m > 0])
    return out


def topological_order(mothers: list[list[int]]) -> list[int]:
    """Entries 1..n−1 ordered so that every mother comes before its daughters (iterative DFS)."""
    n = len(mothers)
    order: list[int] = []
    state = [0] * n
    for i in range(1, n):
        stack = [(i, 0)]
        while stack:
            j, k = stack.pop()
            if k == 0:
                if state[j]:
                    continue
                state[j] = 1
            if k < len(mothers[j]):
                stack.append((j, k + 1))
                if not state[mothers[j][k]]:
                    stack.append((mothers[j][k], 0))
            else:
                state[j] = 2
                order.append(j)
    return order


def status_hepmc(ids, status, daughter1, daughter2) -> np.ndarray:
    """Pythia's ``statusHepMC()`` for every entry."""
    ids, status = np.asarray(ids), np.asarray(status)
    out = np.where(status > 0, 1, np.where(status < -10, -status, 0))
    out = np.where((status == -11) | (status == -12), 4, out)
    a = np.abs(ids)
    hadron_or_lepton = (a > 100) | ((a >= 11) & (a <= 18))
    d1 = np.asarray(daughter1)
    dst = np.abs(status[np.clip(d1, 0, len(status) - 1)])
    decayed = hadron_or_lepton & (status < 0) & (d1 > 0) & (dst >= 91) & (dst <= 99)
    return np.where(decayed, 2, out)


class HepMCWriter:
    """Write events from ``nextBatch`` arrays to a HepMC3 ASCII file, atomically."""

    def __init__(self, path, weight_names):
        self.path = Path(path)
        self.weight_names = list(weight_names)
        self._ctx = None
        self._file = None
        self.n_events = 0

    def __enter__(self) -> HepMCWriter:
        import pyhepmc

        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._run_info = pyhepmc.GenRunInfo()
        self._run_info.weight_names = self.weight_names
        self._file = pyhepmc.io.WriterAscii(str(tmp), self._run_info)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._file is not None:
            self._file.close()
            self._file = None
        return self._ctx.__exit__(exc_type, exc, tb)

    def write_batch(self, batch, weights, info, first_index: int) -> None:
        """Convert and write every event of a ``nextBatch`` result; ``weights`` (n, n_names)."""
        import awkward as ak

        prt = batch.prt
        cols = {
            "id": prt.id, "status": prt.status, "m1": prt.mother1, "m2": prt.mother2,
            "d1": prt.daughter1, "d2": prt.daughter2, "px": prt.p.px, "py": prt.p.py,
            "pz": prt.p.pz, "e": prt.p.e, "m": prt.m,
        }  # fmt: skip
        lists = {k: ak.to_list(v) for k, v in cols.items()}
        weights = np.asarray(weights, dtype=float).tolist()
        pdf = {
            k: ak.to_list(batch.info[k])
            for k in ("id1", "id2", "x1", "x2", "Q2Fac", "pdf1", "pdf2")
        }
        sigma = (info.sigmaGen() * 1e9, info.sigmaErr() * 1e9)
        for k in range(len(batch)):
            ev = {c: lists[c][k] for c in lists}
            evt = self._convert(ev, weights[k], {c: pdf[c][k] for c in pdf}, sigma, first_index + k)
            self._file.write_event(evt)
            self.n_events += 1

    def _convert(self, ev, weights, pdf, sigma, number):
        import pyhepmc

        mothers = mother_lists(ev["status"], ev["m1"], ev["m2"])
        order = topological_order(mothers)
        hst = status_hepmc(ev["id"], ev["status"], ev["d1"], ev["d2"])
        evt = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
        evt.run_info = self._run_info
        parts = [None] * len(mothers)
        for i in order:
            gp = pyhepmc.GenParticle(
                pyhepmc.FourVector(ev["px"][i], ev["py"][i], ev["pz"][i], ev["e"][i]),
                int(ev["id"][i]),
                int(hst[i]),
            )
            gp.generated_mass = ev["m"][i]
            evt.add_particle(gp)
            parts[i] = gp
        for i in order:
            prod = None
            for m in mothers[i]:
                prod = parts[m].end_vertex
                if prod is not None:
                    prod.add_particle_out(parts[i])
                    break
            if prod is None and mothers[i]:
                prod = pyhepmc.GenVertex()
                prod.add_particle_out(parts[i])
                evt.add_vertex(prod)
            for m in mothers[i]:
                if parts[m].end_vertex is None:
                    prod.add_particle_in(parts[m])
        evt.event_number = int(number)
        evt.weights = weights
        evt.cross_section = pyhepmc.GenCrossSection()
        evt.cross_section.set_cross_section(float(sigma[0]), float(sigma[1]))
        evt.pdf_info = pyhepmc.GenPdfInfo(
            int(pdf["id1"]),
            int(pdf["id2"]),
            pdf["x1"],
            pdf["x2"],
            float(np.sqrt(pdf["Q2Fac"])),
            pdf["pdf1"],
            pdf["pdf2"],
        )
        return evt
