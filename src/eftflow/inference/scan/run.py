"""The scan driver: :func:`run_scan` (what ``eftflow scan`` calls).

Order of work: read and check the scan file, build the parameter model, instantiate and resolve
the components, pick the scanner and printer — all before anything is written, so a bad scan
file leaves no output. Then rank 0 prepares the output directory (lock, ``scan.updated.yaml``,
printer, checkpoint), every other rank serves evaluations, the scanner runs, posterior weights
are added, ``summary.json`` is written and the checkpoint marked complete.

Output directory::

    scan.updated.yaml   the fully defaulted scan file (+ versions), compared on --resume
    samples.hdf5        (or samples.txt + samples.txt_info) the printed points
    checkpoint.json     committed rows, last pointID per rank, generator state (atomic)
    summary.json        scanner results (logZ, best fit, ...) when complete (atomic)
    .lock               held while a scan writes (:class:`~.checkpoint.RunLock`)
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from eftflow.errors import ConfigError, InputError
from eftflow.inference.scan.checkpoint import Checkpoint, RunLock, SignalTrap, atomic_write_text
from eftflow.inference.scan.components import build_components, resolve
from eftflow.inference.scan.config import ScanSpec, first_difference, load_scan_config
from eftflow.inference.scan.evaluate import Evaluator, Pipeline, ScanInterrupted
from eftflow.inference.scan.model import ParameterModel
from eftflow.inference.scan.printers import get_printer
from eftflow.inference.scan.scanners import ScanProblem, get_scanner

__all__ = ["run_scan", "build_scan", "ScanSummary", "ScanInterrupted", "OUTPUT_FILES"]

log = logging.getLogger(__name__)

OUTPUT_FILES = (
    "scan.updated.yaml",
    "samples.hdf5",
    "samples.txt",
    "samples.txt_info",
    "samples_Posterior.txt",
    "checkpoint.json",
    "summary.json",
)


@dataclass
class ScanSummary:
    """What a finished scan reports (also in ``summary.json``)."""

    output: Path
    n_points: int
    info: dict
    best_fit: dict

    def to_dict(self) -> dict:
        return {
            "output": str(self.output),
            "n_points": self.n_points,
            "info": self.info,
            "best_fit": self.best_fit,
        }


@dataclass
class BuiltScan:
    """Everything resolved from a scan file before output is touched."""

    spec: ScanSpec
    params: ParameterModel
    pipeline: Pipeline
    scanner: object
    printer_cls: type


def build_scan(source: str | Path | Mapping) -> BuiltScan:
    """Read, check and resolve a scan file (no output written)."""
    spec = load_scan_config(source)
    params = ParameterModel.from_spec(spec)
    comps = build_components(spec)
    order, like_keys, bindings = resolve(
        comps, params, spec.data.get("likelihood"), spec.data.get("rules"), file=spec.file
    )
    pipeline = Pipeline(
        params, order, like_keys, bindings, floor=float(spec.data["invalid_loglike"])
    )
    scanner = get_scanner(spec.data["scanner"]["name"], file=spec.file)()
    printer_cls = get_printer(spec.data["printer"]["name"], file=spec.file)
    log.info(
        "scan: %d parameters (%s), components in order: %s",
        params.ndim,
        ", ".join(params.names),
        " -> ".join(c.key for c in order),
    )
    return BuiltScan(spec, params, pipeline, scanner, printer_cls)


def _updated_text(spec: ScanSpec) -> str:
    import h5py
    import scipy

    from eftflow import __version__

    head = (
        f"# fully defaulted scan file written by eftflow {__version__} "
        f"(numpy {np.__version__}, scipy {scipy.__version__}, h5py {h5py.__version__})\n"
    )
    return head + yaml.safe_dump(spec.data, sort_keys=False)


def _prepare_output(built: BuiltScan, outdir: Path, *, resume: bool, force: bool, n_ranks: int):
    """Rank 0: lock and open the output; returns (printer, checkpoint, resume doc or None, lock)."""
    spec = built.spec
    ckpt = Checkpoint(
        outdir,
        spec_digest=spec.digest,
        parameters=built.params.names,
        scanner=spec.data["scanner"]["name"],
        seed=spec.data["seed"],
        n_ranks=n_ranks,
    )
    if resume and force:
        raise ConfigError("--resume and --force exclude each other", field="--resume")
    existing = [f for f in OUTPUT_FILES if (outdir / f).exists()]
    if resume:
        if not (outdir / "checkpoint.json").exists():
            raise InputError(
                "nothing to resume: no checkpoint in the output directory",
                file=str(outdir / "checkpoint.json"),
            )
    elif existing and not force:
        raise ConfigError(
            f"output directory already holds a scan ({existing[0]}); use --resume to continue it or --force to overwrite",
            file=str(outdir),
        )
    outdir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(outdir)
    lock.acquire()
    try:
        printer = built.printer_cls(outdir, buffer=spec.data["printer"]["buffer"])
        doc = None
        if resume:
            doc = ckpt.load()
            try:
                old = yaml.safe_load((outdir / "scan.updated.yaml").read_text())
            except (OSError, yaml.YAMLError) as err:
                raise InputError(
                    f"cannot read the previous scan file ({err})",
                    file=str(outdir / "scan.updated.yaml"),
                ) from None
            key = first_difference(old or {}, spec.data)
            if key is not None:
                raise ConfigError(
                    "the scan file changed since the interrupted run; resume refused "
                    "(start a new output directory or use --force)",
                    file=spec.file,
                    field=key,
                )
            if doc.get("complete"):
                log.info("scan in %s is already complete", outdir)
            printer.open(built.pipeline.columns, {}, resume_rows=doc["committed_rows"])
        else:
            for f in existing:
                (outdir / f).unlink()
            atomic_write_text(outdir / "scan.updated.yaml", _updated_text(spec))
            printer.open(built.pipeline.columns, {"spec": spec.data, "yaml": spec.text})
            ckpt.save(0, {})
    except BaseException:
        lock.release()
        raise
    return printer, ckpt, doc, lock


def _best_fit(rows: dict, built: BuiltScan) -> dict:
    ll, code = rows["LogLike"][0], rows["Invalidation Code"][0]
    if len(ll) == 0:
        return {}
    ok = code == 0
    if not ok.any():
        log.warning("no valid point in the scan: no best fit reported")
        return {}
    i = int(np.argmax(np.where(ok, ll, -np.inf)))
    out = {
        "LogLike": float(ll[i]),
        "MPIrank": int(rows["MPIrank"][0][i]),
        "pointID": int(rows["pointID"][0][i]),
    }
    for p in built.params.parameters:
        out[p.qualified] = float(rows[p.label][0][i])
    return out


def run_scan(
    source: str | Path | Mapping,
    *,
    output: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    stop_after: int | None = None,
    use_mpi: bool | None = None,
) -> ScanSummary | None:
    """Run a global scan.

    Parameters
    ----------
    source
        Scan file path or its content as a mapping.
    output
        Output directory (default: the scan file's ``output``).
    resume
        Continue an interrupted scan in ``output`` (refused if the scan file changed).
    force
        Overwrite an existing scan in ``output``.
    stop_after
        Stop after this many new points, as a signal would (checkpoint, then
        :class:`ScanInterrupted`); for tests and for splitting work into jobs.
    use_mpi
        None: use MPI when started by ``mpiexec``; False: never.

    Returns
    -------
    ScanSummary on rank 0, None on the other ranks.

    Raises
    ------
    ScanInterrupted
        On SIGTERM/SIGINT/SIGUSR1 or ``stop_after``, after the checkpoint was written.
    ConfigError, InputError, ExpressionError
        Bad scan file (before any output is written), existing output, a corrupt or mismatched
        resume state.
    """
    from eftflow.inference.scan.mpi import MPIEvaluator, mpi_comm, worker_loop

    built = build_scan(source)
    spec = built.spec
    comm = mpi_comm(use_mpi=use_mpi)
    rank = 0 if comm is None else comm.Get_rank()
    size = 1 if comm is None else comm.Get_size()
    outdir = Path(output if output is not None else spec.data["output"])

    if rank != 0:
        ok = comm.bcast(None, root=0)
        if ok != "ok":
            return None
        with SignalTrap():
            n = worker_loop(comm, built.pipeline)
        log.info("rank %d evaluated %d points", rank, n)
        return None

    lock = None
    evaluator = None
    workers_waiting = False
    try:
        try:
            printer, ckpt, doc, lock = _prepare_output(
                built, outdir, resume=resume, force=force, n_ranks=size
            )
        except BaseException:
            if comm is not None:
                comm.bcast("error", root=0)
            raise
        if comm is not None:
            comm.bcast("ok", root=0)
            workers_waiting = True
        replay = printer.read() if doc and doc["committed_rows"] > 0 else None
        kwargs = dict(
            scan_id=int(spec.data["seed"]) % 2**31,
            replay=replay,
            checkpoint=ckpt.save,
            stop_after=stop_after,
            last_point_ids=doc["last_point_ids"] if doc else None,
        )
        trap = SignalTrap()
        kwargs["should_stop"] = trap
        evaluator = (
            Evaluator(built.pipeline, printer, **kwargs)
            if comm is None
            else MPIEvaluator(built.pipeline, printer, comm, **kwargs)
        )
        rng = np.random.default_rng(spec.data["seed"])
        evaluator.scanner_rng = rng
        evaluator.expected_rng_state = (doc or {}).get("rng_states", {}).get("scanner")
        evaluator.checkpoint_file = str(outdir / "checkpoint.json")
        problem = ScanProblem(built.params.ndim, built.params.names, evaluator, rng)
        t0 = time.perf_counter()
        with trap:
            result = built.scanner.run(problem, spec.data["scanner"]["options"])
            evaluator.commit()
        elapsed = time.perf_counter() - t0
        evaluator.close()
        rows = printer.read()
        if result.weights is not None:
            keys = zip(rows["MPIrank"][0].astype(int), rows["pointID"][0].astype(int))
            w = np.array([result.weights.get((int(r), int(p)), 0.0) for r, p in keys])
            printer.write_auxiliary("Posterior", w, np.ones(len(w), bool))
        n = len(rows["LogLike"][0])
        info = {
            **result.info,
            "scanner": spec.data["scanner"]["name"],
            "mpi_ranks": size,
            "seconds": elapsed,
        }
        summary = ScanSummary(outdir, n, info, _best_fit(rows, built))
        atomic_write_text(
            outdir / "summary.json", json.dumps(summary.to_dict(), indent=1, default=float)
        )
        ckpt.save(n, evaluator.last_point_ids, rng, complete=True)
        log.info("scan finished: %d points in %.1f s -> %s", n, elapsed, outdir)
        return summary
    finally:
        if evaluator is not None:
            with contextlib.suppress(Exception):
                evaluator.close()
        elif workers_waiting:
            comm.bcast("stop", root=0)
        if lock is not None:
            lock.release()


def remove_output(outdir: str | Path) -> None:
    """Delete a scan output directory (only the files a scan writes, then the directory if empty)."""
    outdir = Path(outdir)
    for f in OUTPUT_FILES:
        with contextlib.suppress(FileNotFoundError):
            (outdir / f).unlink()
    with contextlib.suppress(OSError):
        outdir.rmdir()
