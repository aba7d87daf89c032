"""Mode ``slurm-runner``: Dask inside the Snakemake job's own multi-task SLURM allocation.

The recommended mode on HPC: nothing is submitted behind Snakemake's back. The command runs
under ``srun`` with N ≥ 3 tasks (for instance a rule with ``resources: tasks=8`` whose shell
line starts with ``srun``); dask-jobqueue's ``SLURMRunner`` makes task 0 the scheduler, task 1
the client (the rest of the eftflow command) and tasks 2..N-1 the workers. Scheduler and worker
tasks never return from :meth:`SLURMRunnerBackend.start`: they exit when the client closes the
cluster. The scheduler file must be on a filesystem every node sees.

Worker sizes come from the allocation: ``SLURM_CPUS_PER_TASK`` threads each, and the memory
SLURM granted per task (``SLURM_MEM_PER_CPU`` × cpus, or ``SLURM_MEM_PER_NODE`` shared by the
tasks of a node).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from eftflow.cluster.base import free_dashboard_address, import_jobqueue
from eftflow.errors import BackendError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["SLURMRunnerBackend", "BACKEND", "runner_worker_options"]

log = logging.getLogger(__name__)


def _tasks_per_node(env: Mapping[str, str]) -> int:
    """First entry of ``SLURM_TASKS_PER_NODE`` (``'3'``, ``'2(x4),1'``) or ``SLURM_NTASKS_PER_NODE``."""
    text = env.get("SLURM_NTASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "1"
    m = re.match(r"\d+", text)
    return max(int(m.group()) if m else 1, 1)


def runner_worker_options(settings: dict, env: Mapping[str, str] | None = None) -> dict:
    """Worker options (threads, memory limit, local directory, interface) from the SLURM environment.

    >>> from eftflow.cluster.settings import resolve_cluster_settings
    >>> s = resolve_cluster_settings({"mode": "slurm-runner"})
    >>> opts = runner_worker_options(s, {"SLURM_CPUS_PER_TASK": "4", "SLURM_MEM_PER_CPU": "1000"})
    >>> opts["nthreads"], opts["memory_limit"]
    (4, 4000000000)
    """
    env = os.environ if env is None else env
    slurm = settings["slurm"]
    cpus = int(env.get("SLURM_CPUS_PER_TASK") or 1)
    memory: int | str = "auto"
    if env.get("SLURM_MEM_PER_CPU"):
        memory = int(env["SLURM_MEM_PER_CPU"]) * cpus * 1_000_000
    elif env.get("SLURM_MEM_PER_NODE"):
        memory = int(env["SLURM_MEM_PER_NODE"]) * 1_000_000 // _tasks_per_node(env)
    options: dict = {"nthreads": cpus, "memory_limit": memory}
    if slurm["local_directory"]:
        options["local_directory"] = os.path.expandvars(slurm["local_directory"])
    if slurm["interface"]:
        options["interface"] = slurm["interface"]
    return options


class SLURMRunnerBackend:
    """Scheduler, client and workers on the tasks of this SLURM job step (see the module docstring)."""

    mode = "slurm-runner"

    def __init__(self, settings: dict, *, threads: int = 1, memory_mb: int | None = None) -> None:
        self.settings = settings
        self.runner = None
        self.scheduler_file: Path | None = None

    def _check_environment(self) -> tuple[int, int]:
        env = os.environ
        missing = [k for k in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS") if not env.get(k)]
        if missing:
            raise BackendError(
                "mode slurm-runner must run inside a SLURM job step with at least 3 tasks "
                f"(e.g. `srun -n 8 eftflow ...`); {', '.join(missing)} not set",
                field="cluster.mode",
            )
        ntasks = int(env["SLURM_NTASKS"])
        if ntasks < 3:
            raise BackendError(
                f"mode slurm-runner needs at least 3 SLURM tasks (scheduler, client, >= 1 worker), "
                f"got {ntasks}; give the rule more tasks or use mode local",
                field="cluster.mode",
            )
        return int(env["SLURM_JOB_ID"]), ntasks

    def start(self) -> Client:
        import warnings

        from distributed import Client

        job_id, _ = self._check_environment()
        jq = import_jobqueue()
        slurm = self.settings["slurm"]
        self.scheduler_file = Path(slurm["scheduler_file"].format(job_id=job_id)).absolute()
        self.scheduler_file.parent.mkdir(parents=True, exist_ok=True)
        address = self.settings["dashboard_address"]
        if os.environ.get("SLURM_PROCID") == "0":  # the scheduler task: a taken port -> a free one
            address = free_dashboard_address(address)
        scheduler_options = {"dashboard_address": address}
        if slurm["interface"]:
            scheduler_options["interface"] = slurm["interface"]
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if main else None
        if main:  # scheduler and worker tasks shut down by sending themselves SIGINT
            signal.signal(signal.SIGINT, _exit_on_signal)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
                self.runner = jq.slurm.SLURMRunner(
                    scheduler_file=str(self.scheduler_file),
                    scheduler_options=scheduler_options,
                    worker_options=runner_worker_options(self.settings),
                )
        except jq.slurm.WorldTooSmallException as err:  # pragma: no cover - checked above
            raise BackendError(str(err), field="cluster.mode") from None
        finally:
            if main and previous is not None:
                signal.signal(signal.SIGINT, previous)
        return Client(self.runner)

    def expected_workers(self) -> int:
        return self.runner.n_workers if self.runner is not None else 0

    def describe(self) -> str:
        n = self.expected_workers()
        return (
            f"SLURM runner: {n} worker task(s) in job {os.environ.get('SLURM_JOB_ID')}, "
            f"scheduler file {self.scheduler_file}"
        )

    def worker_memory(self) -> int | None:
        limit = runner_worker_options(self.settings)["memory_limit"]
        return limit if isinstance(limit, int) else None

    def memory_advice(self) -> str:
        return (
            "give each SLURM task more memory (the rule's mem_mb or mem_mb_per_cpu, i.e. sbatch "
            "--mem / --mem-per-cpu, is shared by the tasks on a node) or use fewer tasks per node"
        )

    def close(self) -> None:
        runner, self.runner = self.runner, None
        if runner is None:
            return
        try:
            runner.close()
        finally:
            if self.scheduler_file is not None:
                self.scheduler_file.unlink(missing_ok=True)


def _exit_on_signal(signum, frame):  # pragma: no cover - runs in scheduler/worker tasks
    sys.exit(0)


BACKEND = SLURMRunnerBackend
