"""Run one plain function per chunk with Dask (threads by default, or a distributed client).

Every streaming step in :mod:`eftflow.sampling` and :mod:`eftflow.inference.fisher` builds a list
of ``dask.delayed`` calls, one per chunk of ~10⁵ events, and computes them together; the results
are small (sums, counts) or written by the task itself. With ``scheduler="threads"`` numpy and the
zarr decompression release the GIL, so a multi-core node is used without copying data between
processes. Pass a ``distributed.Client`` (e.g. from :mod:`eftflow.cluster`) to run on a cluster;
its dashboard link is logged first. :func:`chunk_scheduler` picks between the two from the
``cluster`` config section: mode ``local`` keeps the in-process threads (no data copied between
processes), the SLURM modes start Dask through :func:`eftflow.cluster.dask_client`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

__all__ = ["map_chunks", "chunk_scheduler"]

log = logging.getLogger(__name__)


def map_chunks(
    fn: Callable,
    args: Sequence[tuple],
    *,
    n_workers: int = 1,
    scheduler=None,
    label: str = "chunks",
) -> list:
    """``[fn(*a) for a in args]`` computed with Dask.

    Parameters
    ----------
    fn
        A plain function (one chunk per call).
    args
        One argument tuple per call.
    n_workers
        Threads for the local scheduler (ignored with a distributed client).
    scheduler
        ``None``/``"threads"``, ``"sync"``, ``"processes"`` or a ``distributed.Client``.
    label
        Used in the log line with the rate.
    """
    import dask

    t0 = time.perf_counter()
    if not args:
        return []
    if scheduler is not None and hasattr(scheduler, "dashboard_link"):
        log.info("Dask dashboard: %s", scheduler.dashboard_link)
        futures = scheduler.map(lambda a: fn(*a), list(args), pure=False)
        out = scheduler.gather(futures)
    elif scheduler == "sync" or (n_workers <= 1 and scheduler is None):
        out = [fn(*a) for a in args]
    else:
        tasks = [dask.delayed(fn, pure=False)(*a) for a in args]
        kind = "threads" if scheduler is None else scheduler
        out = list(dask.compute(*tasks, scheduler=kind, num_workers=max(int(n_workers), 1)))
    log.debug("%d %s in %.2f s", len(args), label, time.perf_counter() - t0)
    return out


@contextlib.contextmanager
def chunk_scheduler(
    cluster: Mapping | None, threads: int = 1, memory_mb: int | None = None
) -> Iterator[object | None]:
    """The ``scheduler`` argument of :func:`map_chunks` for the ``cluster`` config section.

    Mode ``local`` (or no section): ``None``, i.e. the threaded scheduler with ``threads`` workers
    (serial for one thread). ``slurm-runner``/``slurm-cluster``: a ``distributed.Client`` from
    :func:`eftflow.cluster.dask_client` (dashboard link logged first, workers released at exit).
    """
    from eftflow.cluster import resolve_cluster_settings

    if cluster is None or resolve_cluster_settings(cluster)["mode"] == "local":
        yield None
        return
    from eftflow.cluster import dask_client

    with dask_client(cluster, threads=threads, memory_mb=memory_mb) as client:
        yield client
