"""Pythia 8 shower and hadronisation of LHE events, carrying every benchmark weight.

Pythia 8 (``pythia8mc``) runs in-process on an LHEF file (``Beams:frameType = 4``, plain or gzip)
with ISR, FSR, MPI and hadronisation by default. Events are pulled with ``p.nextBatch(n)``
(vectorised: awkward arrays of the whole record per batch). The benchmark weights are the LHE
``<rwgt>`` weights, which Pythia parses event by event into its weight container
(``info.weights`` of the batch, names from ``info.weightNameByIndex``): every showered event
carries the weights of the LHE event it came from, so weights stay aligned with events by
construction. Events Pythia rejects (``next()`` fails) are dropped with their weights, counted
(``n_read − n_accepted``, from Pythia's own counters) and logged; if more than
``max_failure_fraction`` of the events fail the run stops with an error. The weights of dropped
events are *not* redistributed: Σ weights of the output = σ × (accepted fraction), the physical
choice when the failures are kinematic (as in MadMiner's use of Pythia). Weights are stored in pb
per event (Σ over the file = σ): an LHE file written with MadGraph's ``event_norm = average``
(every event carries σ) has its weights divided by its number of events, as the LHE reader does.

Configuration (the ``shower`` section; see :data:`SHOWER_SCHEMA`): ``mode`` ``full`` (ISR+FSR+
MPI+hadronisation), ``no_mpi`` or ``parton`` (ISR+FSR, no MPI, no hadronisation: for speed);
``pythia_settings`` (extra strings), ``batch_size``, ``chunk_size``, ``max_events``,
``max_failure_fraction``, ``seed`` (an explicit Pythia seed; by default
``job_seed(global seed, sample, job, stage="shower")`` with sample and job from the LHE's
``<eftflow>`` provenance block).

Output: a particle store (:mod:`eftflow.store.particles`): final-state particles, the hard-process
record, weights (n, n_benchmarks) in setup order and event info; optionally HepMC3 ASCII
(:mod:`eftflow.shower.hepmc`) for Delphes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eftflow.errors import BackendError, ConfigError, InputError
from eftflow.progress import progress
from eftflow.shower.lhe_input import (
    batch_weights,
    check_lhe_events,
    read_lhe_header,
    weight_columns,
)

__all__ = [
    "ShowerResult",
    "SHOWER_SCHEMA",
    "check_shower_config",
    "read_lhe_header",
    "shower_settings",
    "shower_lhe",
]

log = logging.getLogger(__name__)

INFO_FIELDS = (
    "id1",
    "id2",
    "x1",
    "x2",
    "pdf1",
    "pdf2",
    "alphaS",
    "alphaEM",
    "Q2Fac",
    "Q2Ren",
    "mHat",
    "sHat",
    "pT2Hat",
)
MODES = {
    "full": [],
    "no_mpi": ["PartonLevel:MPI = off"],
    "parton": ["PartonLevel:MPI = off", "HadronLevel:all = off"],
}

#: JSON-schema fragment of the ``shower`` config section
SHOWER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "mode": {
            "description": "full: ISR+FSR+MPI+hadronisation; no_mpi: without MPI; parton: ISR+FSR only",
            "enum": list(MODES),
            "default": "full",
        },
        "pythia_settings": {
            "description": "extra Pythia 'Key = value' strings, applied last",
            "type": "array",
            "items": {"type": "string"},
            "default": [],
        },
        "batch_size": {
            "description": "events per nextBatch call",
            "type": "integer",
            "minimum": 1,
            "default": 500,
        },
        "chunk_size": {
            "description": "events per store chunk",
            "type": "integer",
            "minimum": 1,
            "default": 10000,
        },
        "max_events": {
            "description": "stop after this many input events (null: all)",
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
        },
        "max_failure_fraction": {
            "description": "fail the job if more than this fraction of the input events is rejected",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.01,
        },  # fmt: skip
        "seed": {
            "description": "explicit Pythia seed (null: derived per job)",
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": 900000000,
            "default": None,
        },
        "hard_record": {
            "description": "store the hard-process record",
            "type": "boolean",
            "default": True,
        },
    },
}


@dataclass
class ShowerResult:
    """What a shower job produced."""

    output: Path
    n_read: int
    n_accepted: int
    n_dropped: int
    seed: int
    cross_sections: dict[str, float]
    hepmc: Path | None = None
    metadata: dict = field(default_factory=dict)


def shower_settings(lhe: Path, seed: int, *, mode: str = "full", extra=()) -> list[str]:
    """Pythia settings for showering ``lhe``."""
    if mode not in MODES:
        raise ConfigError(
            f"unknown shower mode {mode!r}; expected one of {', '.join(MODES)}", field="shower.mode"
        )
    if not 1 <= int(seed) <= 900_000_000:
        raise ConfigError(
            f"Pythia seeds must be in [1, 900000000], got {seed}", field="shower.seed"
        )
    return [
        "Beams:frameType = 4",
        f"Beams:LHEF = {lhe}",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
        "Print:quiet = on",
        "Next:numberCount = 0",
        *MODES[mode],
        *[str(s) for s in extra],
    ]


class _Charges:
    """pid -> charge through Pythia's particle data, cached."""

    def __init__(self, pythia):
        self._pd = pythia.particleData
        self._cache: dict[int, float] = {}

    def __call__(self, pid: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(pid, return_inverse=True)
        vals = np.empty(len(uniq), dtype=np.float32)
        for k, i in enumerate(uniq.tolist()):
            if i not in self._cache:
                self._cache[i] = float(self._pd.charge(i))
            vals[k] = self._cache[i]
        return vals[inv].reshape(pid.shape)


def _records(prt, mask, charges: _Charges):
    import awkward as ak

    sel = prt[mask]
    counts = np.asarray(ak.num(sel, axis=1), dtype=np.int64)
    flat = ak.flatten(sel, axis=1)
    pid = ak.to_numpy(flat.id).astype(np.int32)
    p = flat.p
    return {
        "pid": pid,
        "status": ak.to_numpy(flat.status).astype(np.int32),
        "px": ak.to_numpy(p.px).astype(np.float64),
        "py": ak.to_numpy(p.py).astype(np.float64),
        "pz": ak.to_numpy(p.pz).astype(np.float64),
        "e": ak.to_numpy(p.e).astype(np.float64),
        "charge": charges(pid),
        "counts": counts,
    }


def _concat(blocks: list[dict]) -> dict:
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def shower_lhe(
    lhe,
    output,
    benchmark_names,
    *,
    seed: int,
    config: dict | None = None,
    hepmc=None,
    provenance: dict | None = None,
    user_hooks=None,
    nuisance=None,
    reference: str | None = None,
) -> ShowerResult:
    """Shower an LHE file with Pythia 8 and write a particle store (and optionally HepMC3).

    Parameters
    ----------
    lhe
        LHEF file (``.lhe`` or ``.lhe.gz``) with one ``<rwgt>`` weight per benchmark.
    output
        Particle store to write (``*.zarr``), atomically.
    benchmark_names
        The setup's physics benchmarks, in the order of the output weight columns; each must be
        a weight id of the LHE file.
    seed
        Pythia seed of this job (1 … 900 000 000).
    config
        The ``shower`` section (:data:`SHOWER_SCHEMA`).
    hepmc
        Optional HepMC3 ASCII output path (written atomically).
    provenance
        Extra provenance recorded in the store.
    user_hooks
        Optional ``pythia8mc.UserHooks`` instance (e.g. a veto); vetoed events count as dropped.
    nuisance
        :class:`~eftflow.generate.systematics.NuisanceWeights` of the setup's scale and PDF
        systematics (:func:`~eftflow.generate.systematics.lhe_nuisance_weights`): one weight
        column per nuisance benchmark after the benchmarks (scale: ``w_reference · w_var /
        XWGTUP``; PDF: ``w_reference · exp(±r)``).
    reference
        The benchmark those columns vary (default: the first of ``benchmark_names``).
    """
    import awkward as ak
    import pythia8mc

    from eftflow.generate.systematics import NuisanceWeights
    from eftflow.store.events import make_provenance
    from eftflow.store.particles import ParticleStoreWriter

    cfg = check_shower_config(config)
    lhe, output = Path(lhe), Path(output)
    header = read_lhe_header(lhe)
    benchmark_names = list(benchmark_names)
    nuisance = nuisance or NuisanceWeights()
    reference = benchmark_names[0] if reference is None else reference
    if reference not in benchmark_names or set(nuisance.names) & set(benchmark_names):
        raise ConfigError(
            f"reference {reference!r} must be one of the benchmarks and the nuisance benchmarks "
            f"({', '.join(nuisance.names)}) none of them",
            field="benchmarks",
        )
    missing = [b for b in [*benchmark_names, *nuisance.ids] if b not in header["weight_ids"]]
    if missing:
        raise InputError(
            f"benchmark {missing[0]!r} has no weight in the LHE file (weight ids: "
            f"{', '.join(header['weight_ids']) or 'none'})",
            file=str(lhe), field="initrwgt",
        )  # fmt: skip
    weight_scale = check_lhe_events(lhe)
    mode = cfg.get("mode", "full")
    settings = shower_settings(lhe.resolve(), seed, mode=mode, extra=cfg.get("pythia_settings", ()))
    batch = cfg.get("batch_size", 500)
    chunk = cfg.get("chunk_size", 10_000)
    max_events = cfg.get("max_events")
    max_fail = cfg.get("max_failure_fraction", 0.01)
    keep_hard = cfg.get("hard_record", True)

    p = pythia8mc.Pythia("", False)
    for s in settings:
        if not p.readString(s):
            raise ConfigError(
                f"Pythia does not accept the setting {s!r}", field="shower.pythia_settings"
            )
    if user_hooks is not None:
        p.setUserHooksPtr(user_hooks)
    if not p.init():
        raise BackendError("Pythia init() failed on this LHE file", file=str(lhe))
    charges = _Charges(p)
    columns: np.ndarray | None = None
    hep = None
    t0 = time.perf_counter()
    n_acc = 0
    prov = make_provenance(
        stage="shower", lhe=str(lhe), seed=int(seed), shower_mode=mode, pythia_settings=settings,
        pythia_version=_pythia_version(), generator=header["provenance"],
        sampling_benchmark=(header["provenance"] or {}).get("sampling_benchmark"), **(provenance or {}),
    )  # fmt: skip
    try:
        if hepmc is not None:
            from eftflow.shower.hepmc import HepMCWriter

            hep = HepMCWriter(hepmc, ["Weight", *benchmark_names, *nuisance.names])
            hep.__enter__()
        with (
            ParticleStoreWriter(
                output, [*benchmark_names, *nuisance.names], chunk_size=chunk, provenance=prov
            ) as writer,
            progress(max_events, "shower_events", logger=log) as bar,
        ):
            pending: list[tuple] = []
            n_pending = 0
            n_tried = 0
            while max_events is None or p.infoPython().nTried() < max_events:
                want = (
                    batch
                    if max_events is None
                    else min(batch, max_events - p.infoPython().nTried())
                )
                b = p.nextBatch(want)
                info = p.infoPython()  # a snapshot: fetch after every batch
                bar.update(info.nTried() - n_tried)
                n_tried = info.nTried()
                if len(b) > 0:
                    all_w = batch_weights(b, lhe, n_acc) * weight_scale
                    if columns is None:
                        columns = weight_columns(
                            info,
                            [*benchmark_names, *nuisance.ids],
                            lhe,
                            all_w.shape[1],
                            header["weight_ids"],
                        )
                    w = all_w[:, columns]
                    if nuisance:
                        nb = len(benchmark_names)
                        ref = w[:, benchmark_names.index(reference)]
                        var = nuisance.columns(
                            w[:, nb:], all_w[:, 0], ref, file=lhe, first_event=n_acc
                        )
                        w = np.concatenate([w[:, :nb], var], axis=1)
                    prt = b.prt
                    parts = _records(prt, prt.status > 0, charges)
                    ah = np.abs(prt.status)
                    hard = _records(prt, (ah >= 21) & (ah <= 29), charges) if keep_hard else None
                    inf = {k: ak.to_numpy(b.info[k]).astype(np.float64) for k in INFO_FIELDS}
                    pending.append((parts, hard, w, inf))
                    n_pending += len(b)
                    if hep is not None:
                        hep.write_batch(b, np.column_stack([all_w[:, 0], w]), info, n_acc)
                    n_acc += len(b)
                if pending and (n_pending >= chunk or info.atEndOfFile() or len(b) == 0):
                    _flush(writer, pending, keep_hard)
                    pending, n_pending = [], 0
                if info.atEndOfFile():
                    break
                if len(b) == 0:
                    raise BackendError(
                        "Pythia returned no events before the end of the file", file=str(lhe)
                    )
            if pending:
                _flush(writer, pending, keep_hard)
            info = p.infoPython()
            n_read = int(info.nTried())
            n_dropped = n_read - n_acc
            if n_read and n_dropped > max_fail * n_read:
                raise BackendError(
                    f"Pythia rejected {n_dropped} of {n_read} events (> {max_fail:.3g}); see the log",
                    file=str(lhe),
                )
            writer.extra_attrs.update({"n_read": n_read, "n_dropped": n_dropped})
            writer.provenance.update({"n_read": n_read, "n_dropped": n_dropped})
        if hep is not None:
            hep.__exit__(None, None, None)
    except BaseException as err:
        if hep is not None:
            hep.__exit__(type(err), err, err.__traceback__)
        raise
    elapsed = time.perf_counter() - t0
    if n_dropped:
        log.warning(
            "shower %s: Pythia rejected %d of %d events; they are dropped with their weights",
            lhe,
            n_dropped,
            n_read,
        )
    log.info(
        "shower %s: %d events in %.1f s (%.0f events/s), mode %s",
        lhe,
        n_acc,
        elapsed,
        n_acc / max(elapsed, 1e-9),
        mode,
    )
    from eftflow.store.particles import ParticleStore

    xs = ParticleStore(output).cross_sections()
    return ShowerResult(
        output=output, n_read=n_read, n_accepted=n_acc, n_dropped=n_dropped, seed=int(seed),
        cross_sections=dict(zip(benchmark_names, map(float, xs))),
        hepmc=None if hepmc is None else Path(hepmc), metadata={"seconds": elapsed, "mode": mode},
    )  # fmt: skip


def check_shower_config(config: dict | None, *, file: str | None = None) -> dict:
    """The ``shower`` section, checked: known keys, counts >= 1, fractions in [0, 1], booleans.

    Raises
    ------
    ConfigError
        Naming ``file`` and the key (``shower.<key>``) at fault.
    """
    from eftflow.generate.base import check_count

    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"expected a mapping, got {config!r}", file=file, field="shower")
    cfg = dict(config)
    unknown = sorted(set(cfg) - set(SHOWER_SCHEMA["properties"]))
    if unknown:
        raise ConfigError(
            f"unknown shower option {unknown[0]!r}; allowed: "
            f"{', '.join(sorted(SHOWER_SCHEMA['properties']))}",
            file=file, field=f"shower.{unknown[0]}",
        )  # fmt: skip
    for key in ("batch_size", "chunk_size", "max_events"):
        if key in cfg:
            cfg[key] = check_count(
                cfg[key], field=f"shower.{key}", file=file, allow_none=key == "max_events"
            )
    if "seed" in cfg and cfg["seed"] is not None:
        cfg["seed"] = check_count(cfg["seed"], field="shower.seed", file=file)
    if "max_failure_fraction" in cfg:
        f = cfg["max_failure_fraction"]
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1:
            raise ConfigError(
                f"must be a number in [0, 1], got {f!r}", file=file, field="shower.max_failure_fraction"
            )  # fmt: skip
        cfg["max_failure_fraction"] = float(f)
    if "hard_record" in cfg and not isinstance(cfg["hard_record"], bool):
        raise ConfigError(
            f"must be true or false, got {cfg['hard_record']!r}", file=file, field="shower.hard_record"
        )  # fmt: skip
    ps = cfg.get("pythia_settings", [])
    if not isinstance(ps, (list, tuple)) or not all(isinstance(x, str) for x in ps):
        raise ConfigError(
            f"must be a list of 'Key = value' strings, got {ps!r}", file=file,
            field="shower.pythia_settings",
        )  # fmt: skip
    return cfg


def _flush(writer, pending, keep_hard) -> None:
    parts = _concat([x[0] for x in pending])
    hard = _concat([x[1] for x in pending]) if keep_hard else None
    w = np.concatenate([x[2] for x in pending])
    inf = {k: np.concatenate([x[3][k] for x in pending]) for k in pending[0][3]}
    writer.append(parts, weights=w, info=inf, hard=hard)


def _pythia_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pythia8mc")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
