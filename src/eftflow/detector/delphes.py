"""Delphes backend: a user-installed ``DelphesHepMC3`` run by subprocess, its ROOT output read with uproot.

Steps of :meth:`DelphesDetector.simulate`:

1. the particle source is written, streaming, to a HepMC3 ASCII file (final-state particles on one
   vertex fed by the two beams; event number = position in the input; one weight per benchmark).
   The hard-process record of a showered store (Pythia status 21–29) is written too, as
   non-final particles with that status, as Pythia's own HepMC output has it: Delphes' reader
   takes the non-final quarks, gluons and τ as its ``partons``, from which it assigns jet flavour
   for b- and τ-tagging (without them every jet would be light and b-tagging only mistags);
2. ``DelphesHepMC3 <card> <out.root> <in.hepmc>`` runs in a scratch directory next to the output
   (no shell; its output goes to the log; a non-zero exit is a :class:`~eftflow.errors.BackendError`);
3. the ``Delphes`` tree is read in chunks with uproot (branches ``Electron.PT``, ``Muon.PT``,
   ``Photon.PT``, ``Jet.PT``, ``Jet.BTag``, ``MissingET.MET``, ``Event.Number``, ...) into
   collections ``e, mu, l, a, j, met``; every event's benchmark weights are matched through
   ``Event.Number`` (checked: in range, increasing, no duplicates) and written to the object store.

A file without the expected branches is an :class:`~eftflow.errors.InputError` listing them.

Options (``detector`` config section): ``executable`` (default ``$DELPHES_HOME/DelphesHepMC3``),
``card`` (default ``$DELPHES_HOME/cards/delphes_card_CMS.tcl``), ``keep_files`` (keep the HepMC
and ROOT files next to the output), ``beam_energy`` (GeV, default 6500).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from eftflow.analysis.objects import Collection, EventObjects, ObjectStoreWriter, merge_collections
from eftflow.analysis.vectors import energy_from_mass
from eftflow.detector.base import DetectorJob, DetectorResult, ParticleSource
from eftflow.errors import BackendError, ConfigError, InputError

__all__ = [
    "DelphesDetector",
    "create",
    "write_hepmc",
    "read_delphes",
    "REQUIRED_BRANCHES",
    "find_delphes",
]

log = logging.getLogger(__name__)

#: branches read from the Delphes tree
REQUIRED_BRANCHES = {
    "Event": ("Number",),
    "Electron": ("PT", "Eta", "Phi", "Charge"),
    "Muon": ("PT", "Eta", "Phi", "Charge"),
    "Photon": ("PT", "Eta", "Phi", "E"),
    "Jet": ("PT", "Eta", "Phi", "Mass", "BTag"),
    "MissingET": ("MET", "Phi"),
}
MASS = {"Electron": 0.000511, "Muon": 0.10566}


def find_delphes(executable: str | None = None) -> str:
    """Path of ``DelphesHepMC3``: the option, else ``$DELPHES_HOME/DelphesHepMC3``, else ``PATH``."""
    candidates = [executable] if executable else []
    if os.environ.get("DELPHES_HOME"):
        candidates.append(str(Path(os.environ["DELPHES_HOME"]) / "DelphesHepMC3"))
    candidates.append(shutil.which("DelphesHepMC3") or "")
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise ConfigError(
        "DelphesHepMC3 not found: set detector.executable or DELPHES_HOME (Delphes is installed "
        "by the user, see docs/detector.md)",
        field="detector.executable",
    )


def write_hepmc(
    source: ParticleSource, path, *, chunk_size: int = 10_000, beam_energy: float = 6500.0
) -> np.ndarray:
    """Write the source's final-state particles (and the hard-process record, non-final, for
    Delphes' jet flavour) to HepMC3 ASCII; returns all weights (n, n_benchmarks)."""
    import awkward as ak
    import pyhepmc

    run = pyhepmc.GenRunInfo()
    run.weight_names = list(source.benchmark_names) or ["Weight"]
    weights = []
    number = 0
    with pyhepmc.open(str(path), "w") as out:
        for chunk in source.iter_chunks(chunk_size):
            w = np.asarray(ak.to_numpy(chunk["weights"]), np.float64).reshape(len(chunk), -1)
            weights.append(w)
            parts = chunk["particles"]
            counts = ak.to_numpy(ak.num(parts, axis=1))
            flat = {
                f: ak.to_numpy(ak.flatten(parts[f], axis=1))
                for f in ("pid", "status", "px", "py", "pz", "e")
            }
            final = (flat["status"] > 0) & (flat["status"] != 2)
            offsets = np.concatenate([[0], np.cumsum(counts)])
            hard = _hard_record(chunk)
            for i in range(len(counts)):
                ev = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
                ev.run_info = run
                ev.event_number = number
                vertex = pyhepmc.GenVertex()
                for sign in (1.0, -1.0):
                    beam = pyhepmc.GenParticle(
                        pyhepmc.FourVector(0.0, 0.0, sign * beam_energy, beam_energy), 2212, 4
                    )
                    vertex.add_particle_in(beam)
                for k in range(offsets[i], offsets[i + 1]):
                    if final[k]:
                        gp = pyhepmc.GenParticle(
                            pyhepmc.FourVector(
                                flat["px"][k], flat["py"][k], flat["pz"][k], flat["e"][k]
                            ),
                            int(flat["pid"][k]),
                            1,
                        )
                        vertex.add_particle_out(gp)
                if hard is not None:
                    h_off, h = hard
                    for k in range(h_off[i], h_off[i + 1]):
                        mom = pyhepmc.FourVector(h["px"][k], h["py"][k], h["pz"][k], h["e"][k])
                        vertex.add_particle_out(
                            pyhepmc.GenParticle(mom, int(h["pid"][k]), int(h["status"][k]))
                        )
                ev.add_vertex(vertex)
                ev.weights = list(w[i]) if w.shape[1] else [1.0]
                out.write(ev)
                number += 1
    if not weights:
        raise InputError("no events to simulate: the input is empty", file=source.path)
    return np.concatenate(weights)


def _hard_record(chunk):
    """``(offsets, flat columns)`` of the chunk's hard-process record for the HepMC file, or None.

    Statuses become Pythia's HepMC ones: |status| 21–29 as they are, anything else 3 (never 1
    or 2: these particles are not final and were not decayed by the generator's own record)."""
    import awkward as ak

    if "hard" not in ak.fields(chunk):
        return None
    hard = chunk["hard"]
    if not set(("pid", "px", "py", "pz", "e")) <= set(ak.fields(hard)):
        return None
    counts = ak.to_numpy(ak.num(hard, axis=1))
    cols = {f: ak.to_numpy(ak.flatten(hard[f], axis=1)) for f in ("pid", "px", "py", "pz", "e")}
    status = (
        np.abs(ak.to_numpy(ak.flatten(hard["status"], axis=1)))
        if "status" in ak.fields(hard)
        else np.full(len(cols["pid"]), 3)
    )
    cols["status"] = np.where((status >= 21) & (status <= 29), status, 3)
    return np.concatenate([[0], np.cumsum(counts)]), cols


def _missing_branches(keys) -> list[str]:
    keys = set(keys)
    return [
        f"{b}.{f}"
        for b, fs in REQUIRED_BRANCHES.items()
        for f in fs
        if f"{b}.{f}" not in keys and f"{b}/{b}.{f}" not in keys
    ]


def _first(arr):
    """Per-event scalar from a branch that is a length-1 list (Delphes) or already flat."""
    import awkward as ak

    if arr.ndim > 1:
        return ak.to_numpy(ak.fill_none(ak.firsts(arr, axis=1), 0))
    return ak.to_numpy(arr)


def _has(arrays, branch: str, field: str) -> bool:
    return f"{branch}.{field}" in arrays.fields or (
        branch in arrays.fields and field in arrays[branch].fields
    )


def _get(arrays, branch: str, field: str):
    """``Branch.Field`` from a split TTree (flat names, real Delphes) or an RNTuple (nested records)."""
    if f"{branch}.{field}" in arrays.fields:
        return arrays[f"{branch}.{field}"]
    return arrays[branch][field]


def _collection(arrays, branch: str, n: int, *, mass=None, extra=()) -> Collection:
    import awkward as ak

    def flat(f):
        return ak.to_numpy(ak.flatten(_get(arrays, branch, f), axis=1)).astype(np.float64)

    counts = ak.to_numpy(ak.num(_get(arrays, branch, "PT"), axis=1)).astype(np.int64)
    pt, eta, phi = flat("PT"), flat("Eta"), flat("Phi")
    fields = {"pt": pt, "eta": eta, "phi": phi}
    if mass is not None:
        fields["m"] = np.full(len(pt), mass)
        fields["e"] = energy_from_mass(pt, eta, fields["m"])
    elif _has(arrays, branch, "Mass"):
        fields["m"] = flat("Mass")
        fields["e"] = energy_from_mass(pt, eta, fields["m"])
    else:  # photons: E given
        fields["e"] = flat("E")
        fields["m"] = np.zeros(len(pt))
    fields["charge"] = flat("Charge") if _has(arrays, branch, "Charge") else np.zeros(len(pt))
    for name, f in extra:
        fields[name] = flat(f)
    return Collection.from_fields(counts, **fields).sorted_by("pt")


def read_delphes(
    root_path, *, chunk_size: int = 100_000, tree: str = "Delphes"
) -> Iterator[tuple[EventObjects, np.ndarray]]:
    """Yield (objects, event numbers) per chunk of a Delphes ROOT file.

    Raises
    ------
    InputError
        Not a ROOT file, no ``tree``, or branches of :data:`REQUIRED_BRANCHES` missing.
    """
    import uproot

    p = str(root_path)
    try:
        f = uproot.open(p)
    except Exception as err:
        raise InputError(f"cannot open the Delphes output as a ROOT file ({err})", file=p) from None
    with f:
        if tree not in f:
            raise InputError(
                f"no tree {tree!r} in the Delphes output; it has {', '.join(f.keys())}",
                file=p,
                field=tree,
            )
        t = f[tree]
        missing = _missing_branches(t.keys(recursive=True))
        if missing:
            raise InputError(
                f"the Delphes file lacks the expected branches {', '.join(missing)} (is it a Delphes "
                "output made with a card that keeps electrons, muons, photons, jets and MET?)",
                file=p,
                field=tree,
            )
        names = [f"{b}.{x}" for b, fs in REQUIRED_BRANCHES.items() for x in fs]
        if any(k.endswith("Jet.Charge") for k in t.keys(recursive=True)):
            names.append("Jet.Charge")
        for arrays in t.iterate(filter_name=names, step_size=chunk_size, library="ak"):
            n = len(arrays)
            e = _collection(arrays, "Electron", n, mass=MASS["Electron"])
            e.fields["pid"] = -11.0 * e.fields["charge"]
            mu = _collection(arrays, "Muon", n, mass=MASS["Muon"])
            mu.fields["pid"] = -13.0 * mu.fields["charge"]
            a = _collection(arrays, "Photon", n)
            j = _collection(arrays, "Jet", n, extra=(("btag", "BTag"),))
            met_pt = _first(_get(arrays, "MissingET", "MET")).astype(np.float64)
            met_phi = _first(_get(arrays, "MissingET", "Phi")).astype(np.float64)
            met = Collection.from_fields(
                np.ones(n, np.int64),
                pt=met_pt,
                eta=np.zeros(n),
                phi=met_phi,
                m=np.zeros(n),
                e=met_pt,
                charge=np.zeros(n),
            )
            colls = {"e": e, "mu": mu, "l": merge_collections(e, mu), "a": a, "j": j, "met": met}
            yield EventObjects(n, colls), _first(_get(arrays, "Event", "Number")).astype(np.int64)


def match_weights(numbers: np.ndarray, weights: np.ndarray, last: int, *, file=None) -> np.ndarray:
    """Weights of the events numbered ``numbers`` (checked against the HepMC numbering)."""
    if len(numbers) and (numbers.min() < 0 or numbers.max() >= len(weights)):
        raise InputError(
            f"Delphes event numbers {numbers.min()}..{numbers.max()} do not match the "
            f"{len(weights)} events written to HepMC",
            file=file,
            field="Event.Number",
        )
    if len(numbers) and (numbers[0] <= last or np.any(np.diff(numbers) <= 0)):
        raise InputError(
            "Delphes event numbers are not strictly increasing: events cannot be matched to their "
            "weights",
            file=file,
            field="Event.Number",
        )
    return weights[numbers]


class DelphesDetector:
    """Delphes run on HepMC written from the particle source."""

    name = "delphes"

    def __init__(
        self,
        executable: str | None = None,
        card: str | None = None,
        *,
        keep_files: bool = False,
        beam_energy: float = 6500.0,
    ):
        self.executable = executable
        self.card = card
        self.keep_files = keep_files
        self.beam_energy = float(beam_energy)

    def _card(self) -> str:
        card = self.card
        if card is None and os.environ.get("DELPHES_HOME"):
            card = str(Path(os.environ["DELPHES_HOME"]) / "cards" / "delphes_card_CMS.tcl")
        if not card or not Path(card).is_file():
            raise ConfigError(f"Delphes card not found: {card!r}", field="detector.card")
        return card

    def simulate(self, job: DetectorJob) -> DetectorResult:
        from eftflow.store.events import make_provenance

        t0 = time.perf_counter()
        exe, card = find_delphes(self.executable), self._card()
        out = Path(job.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.delphes-", dir=out.parent))
        try:
            hepmc, root = work / "events.hepmc", work / "delphes.root"
            weights = write_hepmc(
                job.source, hepmc, chunk_size=job.chunk_size, beam_energy=self.beam_energy
            )
            log.info("running %s %s on %d events", exe, card, len(weights))
            proc = subprocess.run(
                [exe, card, str(root), str(hepmc)],
                capture_output=True,
                text=True,
                cwd=work,
                check=False,
            )
            for line in (proc.stdout + proc.stderr).splitlines()[-50:]:
                log.debug("delphes: %s", line)
            if proc.returncode != 0 or not root.is_file():
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
                raise BackendError(
                    f"Delphes failed (exit status {proc.returncode}):\n{tail}", file=exe
                )
            prov = make_provenance(
                stage="simulate_detector",
                detector="delphes",
                seed=job.seed,
                input=job.source.path,
                delphes=exe,
                card=card,
                upstream=job.source.provenance or None,
                **job.provenance,
            )
            n, last = 0, -1
            sb = np.full(len(weights), job.source.sampling_benchmark, np.int64)
            with ObjectStoreWriter(
                out,
                job.source.benchmark_names,
                chunk_size=job.chunk_size,
                detector={"backend": "delphes", "card": card},
                provenance=prov,
            ) as writer:
                for objects, numbers in read_delphes(root, chunk_size=job.chunk_size):
                    w = match_weights(numbers, weights, last, file=str(root))
                    if len(numbers):
                        last = int(numbers[-1])
                    writer.append(objects, w, sb[numbers])
                    n += objects.n_events
                if n < len(weights):
                    log.warning("Delphes kept %d of %d events", n, len(weights))
            if self.keep_files:
                for f in (hepmc, root):
                    os.replace(f, out.parent / f"{out.name}.{f.suffix.lstrip('.')}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return DetectorResult(out, n, time.perf_counter() - t0, {"executable": exe, "card": card})


def create(options: Mapping, *, file: str | None = None) -> DelphesDetector:
    """The Delphes backend from the ``detector`` config section."""
    allowed = {"backend", "executable", "card", "keep_files", "beam_energy", "chunk_size"}
    extra = sorted(set(options) - allowed)
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r} for the delphes detector; allowed: {', '.join(sorted(allowed))}",
            file=file,
            field=f"detector.{extra[0]}",
        )
    return DelphesDetector(
        options.get("executable"),
        options.get("card"),
        keep_files=bool(options.get("keep_files")),
        beam_energy=options.get("beam_energy", 6500.0),
    )
