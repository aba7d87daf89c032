"""Mode ``local``: a ``distributed.LocalCluster`` inside the Snakemake job, sized from its resources.

The rule's ``threads`` become ``threads // threads_per_worker`` workers (processes by default,
since chunk functions are mostly Python). Worker processes share the rule's ``mem_mb`` less what
the stage's own process keeps (``local.client_memory_mb``: by default 10 %, at least 256 MB, at
most 2048 MB), split evenly, so Dask spills and pauses before the job exceeds what SLURM or the
machine granted. Thread workers live in the stage's process and Dask measures that process's
memory against each worker's limit, so each of them gets the whole ``mem_mb`` (a share would pause
them as soon as the process outgrew it, for good), and they never pause: what fills the process
is mostly the stage's own memory, which pausing cannot free, so a stage process above 80 % of
``mem_mb`` would otherwise pause its workers for good and hang the step. They still spill what
they hold; the job's memory limit (SLURM's, or the machine's) is the backstop.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from eftflow.cluster.base import free_dashboard_address

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = [
    "LocalBackend",
    "BACKEND",
    "local_cluster_kwargs",
    "client_memory_mb",
    "free_dashboard_address",
]

log = logging.getLogger(__name__)


def local_cluster_kwargs(settings: dict, *, threads: int, memory_mb: int | None) -> dict:
    """Keyword arguments of ``LocalCluster`` for a job with ``threads`` cores and ``memory_mb`` MB.

    >>> from eftflow.cluster.settings import resolve_cluster_settings
    >>> kw = local_cluster_kwargs(resolve_cluster_settings({}), threads=4, memory_mb=8000)
    >>> kw["n_workers"], kw["threads_per_worker"], kw["memory_limit"]
    (4, 1, 1800000000)
    """
    local = settings["local"]
    threads = max(int(threads or 1), 1)
    per_worker = min(local["threads_per_worker"], threads)
    n_workers = max(threads // per_worker, 1)
    memory_limit: int | str = "auto"
    if memory_mb:
        memory_mb = int(memory_mb)
        if local["processes"]:
            memory_mb -= client_memory_mb(settings, memory_mb)
            memory_limit = memory_mb * 1_000_000 // n_workers  # Snakemake's mem_mb: 10^6 bytes
        else:  # threads: Dask compares this process's memory with each worker's limit
            memory_limit = memory_mb * 1_000_000
    return {
        "n_workers": n_workers,
        "threads_per_worker": per_worker,
        "processes": bool(local["processes"]),
        "memory_limit": memory_limit,
        "dashboard_address": settings["dashboard_address"],
    }


def client_memory_mb(settings: dict, memory_mb: int) -> int:
    """MB of a job's ``memory_mb`` kept for the stage's own process in mode local (processes).

    ``local.client_memory_mb`` if set, else 10 % of ``memory_mb`` within [256, 2048] MB; never
    more than half of ``memory_mb``, so the workers keep at least the other half.

    >>> from eftflow.cluster.settings import resolve_cluster_settings
    >>> s = resolve_cluster_settings({})
    >>> client_memory_mb(s, 8000), client_memory_mb(s, 1000), client_memory_mb(s, 64000)
    (800, 256, 2048)
    """
    set_mb = settings["local"].get("client_memory_mb")
    keep = int(set_mb) if set_mb is not None else min(max(memory_mb // 10, 256), 2048)
    return min(keep, memory_mb // 2)


class LocalBackend:
    """A LocalCluster on this machine (see the module docstring)."""

    mode = "local"

    def __init__(self, settings: dict, *, threads: int = 1, memory_mb: int | None = None) -> None:
        self.settings = settings
        self.memory_mb = memory_mb
        self.kwargs = local_cluster_kwargs(settings, threads=threads, memory_mb=memory_mb)
        self.cluster = None

    def start(self) -> Client:
        import warnings

        import dask
        from distributed import Client, LocalCluster

        kwargs = dict(self.kwargs)
        kwargs["dashboard_address"] = free_dashboard_address(kwargs["dashboard_address"])
        # thread workers never pause (module docstring); they read it when they are created
        never_pause = {} if kwargs["processes"] else {"distributed.worker.memory.pause": False}
        with warnings.catch_warnings(), dask.config.set(never_pause):
            # (a port taken between our check and the bind: distributed picks a free one)
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
            self.cluster = LocalCluster(silence_logs=logging.WARNING, **kwargs)
        return Client(self.cluster)

    def expected_workers(self) -> int:
        return self.kwargs["n_workers"]

    def describe(self) -> str:
        kw = self.kwargs
        kind = "processes" if kw["processes"] else "threads"
        limit = kw["memory_limit"]
        if isinstance(limit, int) and not kw["processes"]:
            memory = f"{limit / 1e6:,.0f} MB for this process and its worker threads"
        elif isinstance(limit, int):
            kept = self.memory_mb - limit * kw["n_workers"] // 1_000_000
            memory = f"{limit / 1e6:,.0f} MB per worker ({kept:,} MB kept for this process)"
        else:  # no mem_mb given: distributed shares the machine's memory between the workers
            memory = "the machine's memory shared by the workers"
        return (
            f"local cluster: {kw['n_workers']} worker {kind} x {kw['threads_per_worker']} thread(s), "
            f"memory limit {memory}"
        )

    def worker_memory(self) -> int | None:
        limit = self.kwargs["memory_limit"]
        return limit if isinstance(limit, int) else None

    def memory_advice(self) -> str:
        n = self.kwargs["n_workers"]
        if self.memory_mb and not self.kwargs["processes"]:
            share = f"the job's {self.memory_mb} MB hold this process and its {n} worker thread(s)"
        elif self.memory_mb:
            share = (
                f"the job's {self.memory_mb} MB are split between {n} worker(s) and this process "
                "(local.client_memory_mb)"
            )
        else:
            share = f"the machine's memory is split between {n} worker(s)"
        return (
            f"{share}: give the job more memory (the rule's mem_mb, e.g. snakemake "
            "--set-resources <rule>:mem_mb=<MB>, which the rule passes as --memory-mb) or fewer "
            "threads (fewer workers, each with a larger share)"
        )

    def close(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.close()


BACKEND = LocalBackend
