"""Mode ``local``: a ``distributed.LocalCluster`` inside the Snakemake job, sized from its resources.

The rule's ``threads`` become ``threads // threads_per_worker`` workers (processes by default,
since chunk functions are mostly Python) and its ``mem_mb`` is split evenly between them, so Dask
spills and pauses before the job exceeds what SLURM or the machine granted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["LocalBackend", "BACKEND", "local_cluster_kwargs", "free_dashboard_address"]

log = logging.getLogger(__name__)


def local_cluster_kwargs(settings: dict, *, threads: int, memory_mb: int | None) -> dict:
    """Keyword arguments of ``LocalCluster`` for a job with ``threads`` cores and ``memory_mb`` MB.

    >>> from eftflow.cluster.settings import resolve_cluster_settings
    >>> kw = local_cluster_kwargs(resolve_cluster_settings({}), threads=4, memory_mb=8000)
    >>> kw["n_workers"], kw["threads_per_worker"], kw["memory_limit"]
    (4, 1, 2000000000)
    """
    local = settings["local"]
    threads = max(int(threads or 1), 1)
    per_worker = min(local["threads_per_worker"], threads)
    n_workers = max(threads // per_worker, 1)
    memory_limit: int | str = "auto"
    if memory_mb:
        memory_limit = int(memory_mb) * 1_000_000 // n_workers  # Snakemake's mem_mb is 10^6 bytes
    return {
        "n_workers": n_workers,
        "threads_per_worker": per_worker,
        "processes": bool(local["processes"]),
        "memory_limit": memory_limit,
        "dashboard_address": settings["dashboard_address"],
    }


def free_dashboard_address(address: str | None) -> str | None:
    """``address``, or the same host with port 0 (any free port) when its port is taken.

    Several Snakemake jobs on one node each start a cluster; the second one must not fail or
    warn because the first one's dashboard holds port 8787. The link actually used is logged.

    >>> free_dashboard_address(":0")
    ':0'
    """
    import socket

    if not address or ":" not in str(address):
        return address
    host, _, port = str(address).rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return address
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError:
            log.info("dashboard port %s is taken (another job's cluster?): using a free port", port)
            return f"{host}:0"
    return address


class LocalBackend:
    """A LocalCluster on this machine (see the module docstring)."""

    mode = "local"

    def __init__(self, settings: dict, *, threads: int = 1, memory_mb: int | None = None) -> None:
        self.settings = settings
        self.kwargs = local_cluster_kwargs(settings, threads=threads, memory_mb=memory_mb)
        self.cluster = None

    def start(self) -> Client:
        import warnings

        from distributed import Client, LocalCluster

        kwargs = dict(self.kwargs)
        kwargs["dashboard_address"] = free_dashboard_address(kwargs["dashboard_address"])
        with warnings.catch_warnings():
            # (a port taken between our check and the bind: distributed picks a free one)
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
            self.cluster = LocalCluster(silence_logs=logging.WARNING, **kwargs)
        return Client(self.cluster)

    def expected_workers(self) -> int:
        return self.kwargs["n_workers"]

    def describe(self) -> str:
        kw = self.kwargs
        kind = "processes" if kw["processes"] else "threads"
        return (
            f"local cluster: {kw['n_workers']} worker {kind} x {kw['threads_per_worker']} thread(s), "
            f"memory limit {kw['memory_limit']} bytes per worker"
        )

    def close(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.close()


BACKEND = LocalBackend
