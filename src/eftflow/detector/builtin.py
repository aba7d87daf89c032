"""The builtin detector: a fast parametrised detector driven by a YAML card.

Per chunk, on all events at once (numpy on flat arrays, fastjet's awkward API for jets):

1. Final-state particles (``status > 0`` and ``!= 2``: Pythia's final codes, LHE's 1) that are visible (not in ``invisible_pids``) and
   within ``jet.input_eta_max`` make up the detector's view of the event.
2. Electron, muon and photon candidates (|pid| 11, 13, 22) are isolated if the ΣpT of other
   visible particles (pT > ``isolation.pt_min``) within ΔR < ``isolation.cone``, divided by their
   pT, is at most ``isolation.max``. Each isolated candidate is reconstructed with probability
   ``efficiency(pt, eta, e, phi)`` (true values), smeared with the card's Gaussian resolutions
   (``pt`` or ``e``, ``eta``, ``phi``: absolute widths as functions of the true values), and kept if
   the smeared pT ≥ ``pt_min`` and |η| < ``eta_max``.
3. Jets: all other visible particles are clustered with fastjet (``jet.algorithm``, ``jet.R``);
   jets get the jet efficiency and pT resolution, then the ``pt_min``/``eta_max`` acceptance.
   A jet is b- (c-) labelled if a b (c) quark or hadron of the input record, of any status, lies
   within ``btag.cone``; it is b-tagged with probability ``btag.efficiency`` / ``mistag_c`` /
   ``mistag_light``. ``<object>.fake_rate_jet`` turns jets into fake electrons/muons/photons.
4. Missing transverse momentum: minus the vector sum of the visible particles, corrected for the
   smearing of every reconstructed object, plus Gaussian noise ``met.noise(sumet)`` per component.

Randomness comes only from the generator passed to :meth:`BuiltinDetector.reconstruct` (one per
chunk, from the job seed and chunk index), so a job is reproducible.
"""

from __future__ import annotations

import logging
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
from eftflow.detector.card import DetectorCard, load_card
from eftflow.errors import ConfigError, InputError

__all__ = ["BuiltinDetector", "create", "pair_indices", "read_particles"]

log = logging.getLogger(__name__)

KINDS = (("electron", 11, "e"), ("muon", 13, "mu"), ("photon", 22, "a"))
MASSES = {11: 0.000511, 13: 0.10566, 22: 0.0}


def pair_indices(evt_a: np.ndarray, offsets_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, k) with item i of A and item k of B in the same event (B grouped by ``offsets_b``)."""
    evt_a = np.asarray(evt_a, np.int64)
    nb = offsets_b[evt_a + 1] - offsets_b[evt_a]
    total = int(nb.sum())
    ia = np.repeat(np.arange(len(evt_a)), nb)
    first = np.cumsum(nb) - nb
    ib = np.repeat(offsets_b[evt_a] - first, nb) + np.arange(total)
    return ia, ib


def _offsets(evt: np.ndarray, n: int) -> np.ndarray:
    off = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(evt, minlength=n), out=off[1:])
    return off


def read_particles(events) -> tuple[int, np.ndarray, dict[str, np.ndarray]]:
    """(n_events, event index, flat fields) of the ``particles`` of an awkward chunk."""
    import awkward as ak

    parts = events["particles"]
    n = len(parts)
    if "hard" in ak.fields(events) and set(ak.fields(parts)) <= set(ak.fields(events["hard"])):
        # the hard-process record joins (as non-final entries) for flavour tagging only
        hard = events["hard"]
        hard = ak.zip({f: (-abs(hard[f]) if f == "status" else hard[f]) for f in ak.fields(parts)})
        parts = ak.concatenate([parts, hard], axis=1)
    flat = ak.flatten(parts, axis=1)
    names = ak.fields(flat)
    need = ("pid", "px", "py", "pz", "e")
    missing = [f for f in need if f not in names]
    if missing:
        raise InputError(
            f"particles need fields {', '.join(need)}; missing {', '.join(missing)}",
            field="particles",
        )
    cols = {f: ak.to_numpy(flat[f]) for f in names}
    counts = ak.to_numpy(ak.num(parts, axis=1)).astype(np.int64)
    evt = np.repeat(np.arange(n), counts)
    if "status" not in cols:
        cols["status"] = np.ones(len(evt), np.int64)
    if "charge" not in cols:
        cols["charge"] = _charge_of(cols["pid"])
    return n, evt, cols


def _charge_of(pid: np.ndarray) -> np.ndarray:
    """Charge of leptons and common hadrons from the PDG id (0 for the rest)."""
    pid = np.asarray(pid, np.int64)
    a = np.abs(pid)
    q = np.zeros(len(pid))
    lep = np.isin(a, (11, 13, 15))
    q[lep] = -np.sign(pid[lep])
    pos = np.isin(a, (211, 321, 2212, 24, 411, 521))
    q[pos] = np.sign(pid[pos])
    return q


def _hadron_flavour(apid: np.ndarray, flavour: int) -> np.ndarray:
    return (apid == flavour) | ((apid // 100) % 10 == flavour) | ((apid // 1000) % 10 == flavour)


class BuiltinDetector(ChunkDetector):
    """Parametrised detector from a :class:`~eftflow.detector.card.DetectorCard`."""

    name = "builtin"

    def __init__(self, card: DetectorCard | None = None):
        self.card = card or load_card(None)

    def describe(self) -> dict:
        return {"backend": self.name, "card": self.card.to_dict()}

    # -- helpers ------------------------------------------------------------------------------
    def _smear(self, kind: str, pt, eta, phi, m, rng):
        """Smear (pt, eta, phi) with the card's resolutions; returns new (pt, eta, phi, e)."""
        res = self.card.get(f"{kind}.resolution") or {}
        e = np.sqrt((pt * np.cosh(eta)) ** 2 + m * m)
        args = {"pt": pt, "eta": eta, "e": e, "phi": phi}
        new_pt = pt
        if "pt" in res:
            new_pt = pt + rng.standard_normal(len(pt)) * self.card.formula(f"{kind}.resolution.pt")(
                **args
            )
        elif "e" in res:
            new_e = e + rng.standard_normal(len(pt)) * self.card.formula(f"{kind}.resolution.e")(
                **args
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                new_pt = np.where(e > 0, pt * new_e / e, pt)
        new_eta, new_phi = eta, phi
        if "eta" in res:
            new_eta = eta + rng.standard_normal(len(pt)) * self.card.formula(
                f"{kind}.resolution.eta"
            )(**args)
        if "phi" in res:
            new_phi = phi + rng.standard_normal(len(pt)) * self.card.formula(
                f"{kind}.resolution.phi"
            )(**args)
            new_phi = (new_phi + np.pi) % (2 * np.pi) - np.pi
        new_pt = np.maximum(new_pt, 0.0)
        new_e = np.sqrt((new_pt * np.cosh(new_eta)) ** 2 + m * m)
        return new_pt, new_eta, new_phi, new_e

    def _efficiency(self, kind: str, pt, eta, phi, m, rng) -> np.ndarray:
        f = self.card.formula(f"{kind}.efficiency", 1.0)
        e = np.sqrt((pt * np.cosh(eta)) ** 2 + m * m)
        return rng.random(len(pt)) < f.probability(pt=pt, eta=eta, e=e, phi=phi)

    def _isolated(self, kind, cand_idx, v, offsets_v) -> np.ndarray:
        iso = self.card.get(f"{kind}.isolation")
        if not iso:
            return np.ones(len(cand_idx), bool)
        cone, cut, ptmin = (
            float(iso.get("cone", 0.3)),
            float(iso.get("max", 0.1)),
            float(iso.get("pt_min", 0.0)),
        )
        out = np.zeros(len(cand_idx))
        block = max(1, 4_000_000 // max(int(np.diff(offsets_v).max(initial=1)), 1))
        for s in range(0, len(cand_idx), block):
            ci = cand_idx[s : s + block]
            ia, ib = pair_indices(v["evt"][ci], offsets_v)
            deta = v["eta"][ci][ia] - v["eta"][ib]
            dphi = np.abs(v["phi"][ci][ia] - v["phi"][ib])
            dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
            inside = (
                (deta * deta + dphi * dphi < cone * cone) & (ib != ci[ia]) & (v["pt"][ib] > ptmin)
            )
            out[s : s + len(ci)] = np.bincount(ia, weights=v["pt"][ib] * inside, minlength=len(ci))
        return out <= cut * v["pt"][cand_idx]

    # -- the reconstruction ---------------------------------------------------------------------
    def reconstruct(self, events, rng: np.random.Generator) -> EventObjects:
        card = self.card
        n, evt_all, p = read_particles(events)
        apid_all = np.abs(p["pid"]).astype(np.int64)
        final = (p["status"] > 0) & (p["status"] != 2)
        pt_all, eta_all, phi_all, m_all = from_cartesian(p["px"], p["py"], p["pz"], p["e"])
        inv = np.asarray(card.get("invisible_pids", []), np.int64)
        vis = (
            final
            & ~np.isin(apid_all, inv)
            & (np.abs(eta_all) < float(card.get("jet.input_eta_max", 4.9)))
        )
        vis &= pt_all > 0
        v = {
            "evt": evt_all[vis],
            "pid": p["pid"][vis],
            "apid": apid_all[vis],
            "pt": pt_all[vis],
            "eta": eta_all[vis],
            "phi": phi_all[vis],
            "m": m_all[vis],
            "charge": p["charge"][vis],
            "px": p["px"][vis],
            "py": p["py"][vis],
            "pz": p["pz"][vis],
            "e": p["e"][vis],
        }
        offsets_v = _offsets(v["evt"], n)
        # truth MET from visible particles; corrected for smearing below
        met_x = -np.bincount(v["evt"], weights=v["px"], minlength=n)
        met_y = -np.bincount(v["evt"], weights=v["py"], minlength=n)
        sumet = np.bincount(v["evt"], weights=v["pt"], minlength=n)
        used = np.zeros(len(v["pt"]), bool)
        colls: dict[str, Collection] = {}
        for kind, pid, symbol in KINDS:
            ptmin = float(card.get(f"{kind}.pt_min", 0.0))
            cand = np.flatnonzero((v["apid"] == pid) & (v["pt"] > 0.5 * ptmin))
            iso = self._isolated(kind, cand, v, offsets_v)
            cand = cand[iso]
            used[cand] = True
            ok = self._efficiency(
                kind, v["pt"][cand], v["eta"][cand], v["phi"][cand], v["m"][cand], rng
            )
            cand = cand[ok]
            m = np.full(len(cand), MASSES[pid])
            pt, eta, phi, e = self._smear(
                kind, v["pt"][cand], v["eta"][cand], v["phi"][cand], m, rng
            )
            acc = (pt >= ptmin) & (np.abs(eta) < float(card.get(f"{kind}.eta_max", np.inf)))
            cand, pt, eta, phi, e, m = cand[acc], pt[acc], eta[acc], phi[acc], e[acc], m[acc]
            met_x -= np.bincount(
                v["evt"][cand], weights=pt * np.cos(phi) - v["px"][cand], minlength=n
            )
            met_y -= np.bincount(
                v["evt"][cand], weights=pt * np.sin(phi) - v["py"][cand], minlength=n
            )
            counts = np.bincount(v["evt"][cand], minlength=n)
            colls[symbol] = Collection.from_fields(
                counts,
                pt=pt,
                eta=eta,
                phi=phi,
                m=m,
                e=e,
                charge=v["charge"][cand],
                pid=v["pid"][cand].astype(float),
            )
        jets, dmx, dmy = self._jets(n, v, ~used, evt_all, apid_all, eta_all, phi_all, rng)
        met_x -= dmx
        met_y -= dmy
        jets, colls = self._fakes(jets, colls, rng)
        noise = card.formula("met.noise", 0.0, variables=("sumet",))
        if not noise.is_zero():
            sigma = noise(sumet=sumet)
            met_x += rng.standard_normal(n) * sigma
            met_y += rng.standard_normal(n) * sigma
        for s in ("e", "mu", "a"):
            colls[s] = colls[s].sorted_by("pt")
        colls["l"] = merge_collections(colls["e"], colls["mu"])
        colls["j"] = jets.sorted_by("pt")
        colls["met"] = single_from_cartesian(met_x, met_y)
        return EventObjects(n, {k: colls[k] for k in ("e", "mu", "l", "a", "j", "met")})

    def _jets(self, n, v, inputs, evt_all, apid_all, eta_all, phi_all, rng):
        import awkward as ak
        import fastjet

        _silence_fastjet_banner()
        card = self.card
        algo = {
            "antikt": fastjet.antikt_algorithm,
            "kt": fastjet.kt_algorithm,
            "cambridge": fastjet.cambridge_algorithm,
        }[card.get("jet.algorithm", "antikt")]
        radius = float(card.get("jet.R", 0.4))
        ptmin = float(card.get("jet.pt_min", 20.0))
        sel = np.flatnonzero(inputs)
        counts_in = np.bincount(v["evt"][sel], minlength=n)
        arr = ak.unflatten(
            ak.zip(
                {"px": v["px"][sel], "py": v["py"][sel], "pz": v["pz"][sel], "E": v["e"][sel]},
                with_name="Momentum4D",
            ),
            counts_in,
        )
        if len(sel):
            cs = fastjet.ClusterSequence(arr, fastjet.JetDefinition(algo, radius))
            raw = cs.inclusive_jets(min_pt=0.5 * ptmin)
            jcounts = ak.to_numpy(ak.num(raw, axis=1)).astype(np.int64)
            flat = ak.flatten(raw, axis=1)
            jpx, jpy, jpz, je = (
                ak.to_numpy(flat[f]).astype(np.float64) for f in ("px", "py", "pz", "E")
            )
        else:
            jcounts = np.zeros(n, np.int64)
            jpx = jpy = jpz = je = np.zeros(0)
        jevt = np.repeat(np.arange(n), jcounts)
        pt, eta, phi, m = from_cartesian(jpx, jpy, jpz, je)
        # flavour labels from b/c quarks and hadrons anywhere in the record
        label = np.zeros(len(pt), np.int64)
        for flavour in (4, 5):
            h = np.flatnonzero(_hadron_flavour(apid_all, flavour))
            if len(h) and len(pt):
                off_h = _offsets(evt_all[h], n)
                ia, ib = pair_indices(jevt, off_h)
                dphi = np.abs(phi[ia] - phi_all[h][ib])
                dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
                cone = float(card.get("jet.btag.cone", radius))
                near = (eta[ia] - eta_all[h][ib]) ** 2 + dphi**2 < cone * cone
                label[np.unique(ia[near])] = flavour
        ok = self._efficiency("jet", pt, eta, phi, m, rng)
        spt, seta, sphi, _ = self._smear("jet", pt, eta, phi, m, rng)
        # the jet's four-momentum scales with its pT smearing (mass too); the energy follows from
        # the smeared pT, η and mass, so that it agrees with a smeared η as well
        scale = np.divide(spt, pt, out=np.ones_like(pt), where=pt > 0)
        sm = m * scale
        se = np.sqrt((spt * np.cosh(seta)) ** 2 + sm * sm)
        acc = ok & (spt >= ptmin) & (np.abs(seta) < float(card.get("jet.eta_max", np.inf)))
        # MET correction for the smearing of kept jets
        dmx = np.bincount(jevt[acc], weights=spt[acc] * np.cos(sphi[acc]) - jpx[acc], minlength=n)
        dmy = np.bincount(jevt[acc], weights=spt[acc] * np.sin(sphi[acc]) - jpy[acc], minlength=n)
        btag = np.zeros(len(pt))
        if card.get("jet.btag"):
            args = {"pt": spt, "eta": seta, "e": se, "phi": sphi}
            prob = np.zeros(len(pt))
            for flavour, key in ((5, "efficiency"), (4, "mistag_c"), (0, "mistag_light")):
                f = card.formula(f"jet.btag.{key}", 0.0)
                sel_f = label == flavour
                if sel_f.any():
                    prob[sel_f] = f.probability(**{k: a[sel_f] for k, a in args.items()})
            btag = (rng.random(len(pt)) < prob).astype(float)
        counts = np.bincount(jevt[acc], minlength=n)
        jets = Collection.from_fields(
            counts,
            pt=spt[acc],
            eta=seta[acc],
            phi=sphi[acc],
            m=sm[acc],
            e=se[acc],
            charge=np.zeros(int(acc.sum())),
            btag=btag[acc],
        )
        return jets, dmx, dmy

    def _fakes(self, jets: Collection, colls: dict, rng):
        """Jets faking electrons, muons or photons at the card's ``fake_rate_jet``."""
        for kind, pid, symbol in KINDS:
            f = self.card.formula(f"{kind}.fake_rate_jet", 0.0)
            if f.is_zero() or jets.n_objects == 0:
                continue
            jf = jets.fields
            fake = rng.random(jets.n_objects) < f.probability(
                pt=jf["pt"], eta=jf["eta"], e=jf["e"], phi=jf["phi"]
            )
            if not fake.any():
                continue
            sign = np.where(rng.random(int(fake.sum())) < 0.5, -1.0, 1.0)
            charge = sign if pid != 22 else np.zeros(len(sign))
            evt = jets.event_index()[fake]
            m = np.full(len(evt), MASSES[pid])
            fk = Collection.from_fields(
                np.bincount(evt, minlength=jets.n_events),
                pt=jf["pt"][fake],
                eta=jf["eta"][fake],
                phi=jf["phi"][fake],
                m=m,
                charge=charge,
                pid=-charge * pid if pid != 22 else np.full(len(evt), 22.0),
            )
            old = colls[symbol]
            fields = [f for f in old.fields if f in fk.fields]
            colls[symbol] = merge_collections(
                Collection(old.offsets, {k: old.fields[k] for k in fields}),
                Collection(fk.offsets, {k: fk.fields[k] for k in fields}),
            )
            jets = jets.select(~fake)
        return jets, colls


def _silence_fastjet_banner() -> None:
    """Keep FastJet's banner off stdout (it prints once per process, at the first clustering).

    FastJet prints the banner on its banner stream, once; pointing that stream at nothing and
    "printing" it marks it as done (the SWIG and awkward interfaces share ``libfastjet``).
    """
    try:
        from fastjet._swig import ClusterSequence
    except ImportError:  # pragma: no cover - depends on the fastjet build
        return
    ClusterSequence.set_fastjet_banner_stream(None)
    ClusterSequence.print_banner()


def create(options: Mapping, *, file: str | None = None) -> BuiltinDetector:
    """The builtin detector from the ``detector`` config section (keys ``card`` and ``card_overrides``)."""
    allowed = {"backend", "card", "card_overrides", "chunk_size"}
    extra = sorted(set(options) - allowed)
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r} for the builtin detector; allowed: {', '.join(sorted(allowed))}",
            file=file,
            field=f"detector.{extra[0]}",
        )
    return BuiltinDetector(
        load_card(options.get("card"), overrides=options.get("card_overrides"), config_file=file)
    )
