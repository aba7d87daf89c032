"""MPI parallel evaluation (mpi4py): rank 0 runs the scanner and writes; all ranks evaluate.

Each batch a scanner submits is split into contiguous chunks, one per rank (rank 0 included);
ranks send their rows back to rank 0, which numbers them per rank (``MPIrank``, ``pointID``) and
prints them (PyPI's h5py has no parallel HDF5, so one writer, as GAMBIT does). Without MPI (no
``mpiexec``, or one rank) everything runs in the one process.

Launching several copies without a working MPI (``mpiexec -n 4`` with an mpi4py built for
another MPI, mpi4py missing, or ``srun -n 4`` without an MPI plugin such as ``--mpi=pmi2``)
would make every copy write the same output; this is detected from the launcher's environment
and refused before anything is written.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from eftflow.errors import BackendError, ConfigError, EftflowError
from eftflow.inference.scan.evaluate import Evaluator, concat_rows

__all__ = ["mpi_comm", "MPIEvaluator", "worker_loop", "launcher_size"]

log = logging.getLogger(__name__)

#: per-process variables of MPI launchers (mpich/hydra, Open MPI, PMIx, SLURM's pmi2 plugin)
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def _launcher() -> tuple[int, str | None]:
    """(copies started, launcher) from the environment; ``(1, None)`` if none is seen."""
    for var in _SIZE_VARS:
        val = os.environ.get(var, "")
        if val.isdigit():
            return int(val), "an MPI launcher"
    # srun sets these in each task of a job step; a batch script of sbatch has none of them
    # (its SLURM_NTASKS is the allocation's size, also when it runs one serial command)
    in_step = "SLURM_STEP_ID" in os.environ or "SLURM_STEPID" in os.environ
    ntasks = os.environ.get("SLURM_STEP_NUM_TASKS", "")
    if in_step and "SLURM_PROCID" in os.environ and ntasks.isdigit():
        return int(ntasks), "srun"
    return 1, None


def launcher_size() -> int:
    """Number of copies the launcher started, from its environment (1 if none).

    MPI launchers (``mpiexec``, ``srun --mpi=pmi2``) set per-process variables (``PMI_SIZE``,
    ``OMPI_COMM_WORLD_SIZE``, ...); ``srun -n N`` also sets ``SLURM_STEP_NUM_TASKS`` in each
    task of its step, with or without MPI. ``SLURM_NTASKS`` alone is not used: a batch script
    has it for the whole allocation, also when it runs a single serial ``eftflow scan``.
    """
    return _launcher()[0]


def _fix_hint(launcher: str | None) -> str:
    if launcher == "srun":
        return (
            "Under srun, give it an MPI plugin this MPI speaks (srun --mpi=pmi2; `srun --mpi=list` "
            "lists them) or use mpiexec; for one copy alone use srun -n 1 or --no-mpi"
        )
    return "Is mpi4py built for another MPI than this launcher? For one copy alone use --no-mpi"


def mpi_comm(*, use_mpi: bool | None = None):
    """``MPI.COMM_WORLD`` when running on more than one rank, else None.

    Parameters
    ----------
    use_mpi
        True: require MPI; False: never use it; None: use it when a launcher started us.

    Raises
    ------
    ConfigError
        Started as several copies (``mpiexec -n N``, ``srun -n N``) without a working MPI:
        every copy would write the same output.
    """
    expected, launcher = _launcher()
    if use_mpi is False or (use_mpi is None and expected <= 1):
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        if expected > 1:
            raise ConfigError(
                f"started as {expected} copies by {launcher} but mpi4py is not importable: "
                "every copy would write the same output (pip install mpi4py mpich)"
            ) from None
        raise ConfigError("MPI requested but mpi4py is not importable") from None
    comm = MPI.COMM_WORLD
    if expected > 1 and comm.Get_size() == 1:
        raise ConfigError(
            f"started as {expected} copies by {launcher} but MPI sees 1 rank: every copy would "
            f"run the whole scan into the same output, so this is refused. {_fix_hint(launcher)}"
        )
    return comm if comm.Get_size() > 1 else None


class MPIEvaluator(Evaluator):
    """:class:`Evaluator` on rank 0 that spreads each batch over all ranks."""

    def __init__(self, pipeline, printer, comm, **kwargs):
        super().__init__(pipeline, printer, **kwargs)
        self.comm = comm
        self.size = comm.Get_size()
        self._closed = False

    def _compute(self, unit):
        chunks = np.array_split(unit, self.size)
        self.comm.bcast("eval", root=0)
        mine = self.comm.scatter(chunks, root=0)
        try:
            result = ("ok", self.pipeline.evaluate(mine))
        except Exception as err:  # finish the collective call before raising
            result = (
                "error",
                str(err) if isinstance(err, EftflowError) else f"{type(err).__name__}: {err}",
            )
        gathered = self.comm.gather(result, root=0)
        errors = [(r, msg) for r, (status, msg) in enumerate(gathered) if status != "ok"]
        if errors:
            rank, msg = errors[0]
            raise BackendError(f"evaluation failed on MPI rank {rank}: {msg}")
        rows = concat_rows([g[1] for g in gathered])
        ranks = np.concatenate([np.full(len(c), r, dtype=np.int64) for r, c in enumerate(chunks)])
        return rows, ranks

    def close(self) -> None:
        if not self._closed:
            self.comm.bcast("stop", root=0)
            self._closed = True


def worker_loop(comm, pipeline) -> int:
    """Serve evaluation requests from rank 0 until it says stop; returns points evaluated."""
    n = 0
    while True:
        cmd = comm.bcast(None, root=0)
        if cmd == "stop":
            return n
        mine = comm.scatter(None, root=0)
        try:
            result = ("ok", pipeline.evaluate(mine))
            n += len(mine)
        except EftflowError as err:
            result = ("error", str(err))
        except Exception as err:  # report to rank 0 instead of hanging the job
            result = ("error", f"{type(err).__name__}: {err}")
        comm.gather(result, root=0)
