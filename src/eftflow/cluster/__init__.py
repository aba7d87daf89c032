"""Dask cluster lifecycle: one place that starts and stops Dask for every stage.

Three modes, chosen by the ``cluster`` config section (docs/orchestration.md):

``local``
    A ``LocalCluster`` sized from the rule's ``threads`` and ``mem_mb`` (the default).
``slurm-runner``
    dask-jobqueue's ``SLURMRunner``: scheduler, client and workers on the tasks of the Snakemake
    job's own allocation (run the command under ``srun`` with >= 3 tasks). Recommended on HPC.
``slurm-cluster``
    dask-jobqueue's ``SLURMCluster``: the job submits adaptive worker jobs (walltime, worker
    lifetime, partition, account, interface, node-local spill directory from the config).

Use::

    from eftflow.cluster import dask_client

    with dask_client(config["cluster"], threads=args.threads, memory_mb=args.memory_mb) as client:
        results = client.gather(client.map(process_chunk, chunks))

The first log line is ``Dask dashboard: <link>`` (once per cluster; the node's host name when
the dashboard listens on all interfaces); workers are released on success, failure, Ctrl-C and
SIGTERM; workers lost during the step are counted and reported at the end; a task whose workers
keep dying (out of memory) ends the step with one :class:`WorkerKilledError` naming the memory
limit per worker. This
package knows no stage. Heavy imports (dask.distributed, dask_jobqueue) happen inside functions.
"""

from eftflow.cluster.base import ClusterBackend, ClusterReport, WorkerKilledError, get_backend
from eftflow.cluster.session import dask_client
from eftflow.cluster.settings import CLUSTER_SCHEMA, MODES, resolve_cluster_settings, use_dask

__all__ = [
    "dask_client",
    "ClusterBackend",
    "ClusterReport",
    "WorkerKilledError",
    "get_backend",
    "resolve_cluster_settings",
    "use_dask",
    "CLUSTER_SCHEMA",
    "MODES",
]
