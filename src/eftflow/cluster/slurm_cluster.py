"""Mode ``slurm-cluster``: the Snakemake job submits Dask worker jobs with dask-jobqueue's ``SLURMCluster``.

For the fan-out stages (analysis, augmentation, ensemble training) whose width is not known
when the driver job is submitted. The scheduler runs inside the driver job; worker jobs are
submitted with ``sbatch`` (adaptive between ``cluster.slurm.adaptive.minimum`` and ``maximum``,
or a fixed ``n_workers``), each with an explicit walltime and a worker ``--lifetime`` that ends
before it (with ``--lifetime-stagger``), so workers leave gracefully and adaptive scaling
replaces them instead of SLURM killing them mid-task. Closing the cluster cancels every worker
job (``scancel``). Before submitting, ``sbatch --test-only`` checks that SLURM accepts the
worker job, so a wrong partition or account fails at once with SLURM's message.

The job script can be inspected without a scheduler or SLURM::

    >>> from eftflow.cluster.settings import resolve_cluster_settings
    >>> s = resolve_cluster_settings({"mode": "slurm-cluster", "slurm": {"queue": "short"}})
    >>> "#SBATCH -p short" in job_script(s)
    True
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from typing import TYPE_CHECKING

from eftflow.cluster.base import free_dashboard_address, import_jobqueue
from eftflow.cluster.settings import slurm_time, worker_lifetime
from eftflow.errors import BackendError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = [
    "SLURMClusterBackend",
    "BACKEND",
    "slurm_cluster_kwargs",
    "job_script",
    "check_submission",
]

log = logging.getLogger(__name__)

JOB_NAME = "eftflow-dask"


def slurm_cluster_kwargs(settings: dict) -> dict:
    """Keyword arguments of ``dask_jobqueue.SLURMCluster`` (without ``scheduler_options``)."""
    slurm = settings["slurm"]
    lifetime, stagger = worker_lifetime(slurm)
    kwargs = {
        "cores": slurm["cores"],
        "processes": slurm["processes"],
        "memory": slurm["memory"],
        "walltime": slurm_time(slurm["walltime"]),  # sbatch refuses "2h", "90m"
        "queue": slurm["queue"],
        "account": slurm["account"],
        "interface": slurm["interface"],
        "local_directory": slurm["local_directory"],
        "job_extra_directives": list(slurm["job_extra_directives"]),
        "log_directory": slurm["log_directory"],
        "worker_extra_args": ["--lifetime", lifetime, "--lifetime-stagger", stagger],
        "job_name": JOB_NAME,
    }
    return {k: v for k, v in kwargs.items() if v is not None}


def job_script(settings: dict, scheduler_address: str = "tcp://scheduler:8786") -> str:
    """The ``sbatch`` script one worker job would get, built without starting a scheduler."""
    jq = import_jobqueue()
    kwargs = slurm_cluster_kwargs(settings)
    kwargs.pop("log_directory", None)  # the job object would create the directory
    job = jq.slurm.SLURMJob(scheduler=scheduler_address, name=JOB_NAME, **kwargs)
    return job.job_script()


class SLURMClusterBackend:
    """Adaptive (or fixed-size) Dask worker jobs submitted by this process (see the module docstring)."""

    mode = "slurm-cluster"

    def __init__(self, settings: dict, *, threads: int = 1, memory_mb: int | None = None) -> None:
        self.settings = settings
        self.kwargs = slurm_cluster_kwargs(settings)
        self.cluster = None

    def start(self) -> Client:
        import warnings

        from distributed import Client

        if shutil.which("sbatch") is None:
            raise BackendError(
                "mode slurm-cluster needs SLURM's sbatch on this node, and it is not on PATH",
                field="cluster.mode",
            )
        jq = import_jobqueue()
        slurm = self.settings["slurm"]
        # the scheduler runs in this process: a port taken by another job's dashboard on this
        # node falls back to a free one (as in mode local) instead of a warning from distributed
        address = free_dashboard_address(self.settings["dashboard_address"])
        scheduler_options = {"dashboard_address": address}
        os.makedirs(slurm["log_directory"], exist_ok=True)
        try:
            with warnings.catch_warnings():
                # (a port taken between our check and the bind: distributed picks a free one)
                warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
                self.cluster = jq.SLURMCluster(scheduler_options=scheduler_options, **self.kwargs)
        except (OSError, RuntimeError, ValueError) as err:
            raise BackendError(f"cannot start the Dask scheduler for SLURM workers: {err}") from err
        check_submission(self.cluster.job_script())
        client = Client(self.cluster)
        try:
            if slurm["n_workers"]:
                self.cluster.scale(jobs=slurm["n_workers"])
            else:
                self.cluster.adapt(
                    minimum_jobs=slurm["adaptive"]["minimum"],
                    maximum_jobs=slurm["adaptive"]["maximum"],
                )
        except BaseException:
            with contextlib.suppress(Exception):
                client.close()
            raise
        return client

    def expected_workers(self) -> int:
        slurm = self.settings["slurm"]
        jobs = slurm["n_workers"] or slurm["adaptive"]["minimum"]
        return jobs * slurm["processes"]

    def describe(self) -> str:
        slurm = self.settings["slurm"]
        size = (
            f"{slurm['n_workers']} job(s)"
            if slurm["n_workers"]
            else f"adaptive {slurm['adaptive']['minimum']}-{slurm['adaptive']['maximum']} job(s)"
        )
        lifetime, stagger = self.kwargs["worker_extra_args"][1::2]
        return (
            f"SLURM worker jobs: {size} of {slurm['cores']} core(s), {slurm['memory']}, walltime "
            f"{slurm['walltime']} (worker lifetime {lifetime} +- {stagger}), partition "
            f"{slurm['queue'] or '(default)'}; job logs in {slurm['log_directory']}"
        )

    def worker_memory(self) -> int | None:
        from dask.utils import parse_bytes

        slurm = self.settings["slurm"]
        try:
            return int(parse_bytes(slurm["memory"]) // slurm["processes"])
        except (TypeError, ValueError):
            return None

    def memory_advice(self) -> str:
        slurm = self.settings["slurm"]
        return (
            f"raise cluster.slurm.memory (now {slurm['memory']} per worker job, shared by its "
            f"{slurm['processes']} worker process(es), cluster.slurm.processes) or run fewer "
            "worker processes per job"
        )

    def close(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is None:
            return
        job_ids = [j.job_id for j in list(cluster.workers.values()) if getattr(j, "job_id", None)]
        try:
            cluster.close()
        except Exception as err:  # never leave worker jobs behind, whatever went wrong
            log.warning("closing the SLURM cluster failed (%s); cancelling jobs %s", err, job_ids)
            if job_ids and shutil.which("scancel"):
                subprocess.run(["scancel", *job_ids], check=False, capture_output=True, timeout=60)


def check_submission(script: str) -> None:
    """Ask SLURM whether it would accept a worker job (``sbatch --test-only``), submitting nothing.

    Raises
    ------
    BackendError
        With sbatch's message when the job would be refused (unknown partition or account,
        more memory or cores than any node has, bad directive).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="eftflow-dask-") as fh:
        fh.write(script)
        fh.flush()
        try:
            proc = subprocess.run(
                ["sbatch", "--test-only", fh.name], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise BackendError(f"cannot run sbatch --test-only: {err}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise BackendError(
            "SLURM refuses the Dask worker job: "
            + " / ".join(lines)
            + " (check queue, account, cores, memory and job_extra_directives)",
            field="cluster.slurm",
        )


BACKEND = SLURMClusterBackend
