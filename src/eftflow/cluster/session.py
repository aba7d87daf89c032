"""``dask_client``: the one place where eftflow starts and stops Dask.

Every Dask step of every stage goes through :func:`dask_client`:

* the first log line is ``Dask dashboard: <link>``, logged once per cluster (open it through an
  SSH tunnel, see docs/orchestration.md); when the dashboard listens on all interfaces (the
  default ``:8787``) the link names the scheduler's node (``http://node042:8787/status``), not
  ``127.0.0.1`` or an IP address, and so does ``client.dashboard_link`` while the cluster is up;
* the step waits for the first workers (``cluster.startup_timeout``) and fails with a message
  (worker jobs cancelled) if they never come;
* workers are released on success, on an exception, on Ctrl-C (SIGINT) and on SIGTERM (what
  SLURM sends at ``scancel`` and at the time limit, and Snakemake when it is interrupted): while
  the cluster is up, SIGTERM raises :class:`KeyboardInterrupt` so the clean-up runs;
* workers that die (killed, out of memory, job cancelled) are counted on the scheduler and
  reported at the end (a warning when any were lost); a task whose workers keep dying (Dask's
  ``KilledWorker``, almost always a worker over its memory limit) ends the step with one
  :class:`~eftflow.cluster.base.WorkerKilledError` that names the memory limit per worker and
  how to raise it.

Example
-------
>>> from eftflow.cluster import dask_client
>>> with dask_client({"mode": "local", "dashboard_address": ":0"}, threads=2, memory_mb=2000) as client:
...     total = client.submit(sum, [1, 2, 3]).result()
>>> total
6
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from eftflow.cluster.base import (
    ClusterReport,
    WorkerKilledError,
    get_backend,
    listens_everywhere,
)
from eftflow.cluster.settings import (
    CLUSTER_ENV,
    cluster_config_from_env,
    resolve_cluster_settings,
)
from eftflow.errors import BackendError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["dask_client", "dashboard_host", "killed_worker_error"]

log = logging.getLogger(__name__)


@contextmanager
def dask_client(
    cluster_config: Mapping | None = None,
    threads: int = 1,
    memory_mb: int | None = None,
    *,
    report: ClusterReport | None = None,
    file: str | None = None,
) -> Iterator[Client]:
    """Start the Dask cluster chosen by ``cluster_config``, yield a client, always release it.

    Parameters
    ----------
    cluster_config
        The ``cluster`` config section (or a whole config holding one); ``None``: the section in
        ``$EFTFLOW_CLUSTER_CONFIG`` (how the workflow passes it, outside the rules' params), else
        mode local with defaults. Validated, defaults filled in.
    threads, memory_mb
        What Snakemake gave the job (the rule's ``threads`` and ``resources.mem_mb``); they size
        the ``local`` mode.
    report
        A :class:`ClusterReport` to fill in (dashboard link, workers joined, lost, retired).
    file
        Config file name for error messages.

    Raises
    ------
    ConfigError
        If the settings do not validate.
    BackendError
        If the cluster cannot start or no worker joins within ``cluster.startup_timeout``.
    WorkerKilledError
        (a ``BackendError``) In place of Dask's ``KilledWorker`` raised in the ``with`` block:
        workers died every time they ran a task, most likely over their memory limit.
    """
    if cluster_config is None:
        cluster_config = cluster_config_from_env()
        file = file if cluster_config is None else f"${CLUSTER_ENV}"
    settings = resolve_cluster_settings(cluster_config, file=file)
    backend = get_backend(settings["mode"])(settings, threads=threads, memory_mb=memory_mb)
    report = ClusterReport() if report is None else report
    report.mode = settings["mode"]
    client = None
    t0 = time.monotonic()
    with _terminate_as_interrupt(), _quiet_distributed(), ExitStack() as stack:
        from distributed.scheduler import KilledWorker

        try:
            client = backend.start()
            stack.enter_context(_dashboard_host(client, settings["dashboard_address"]))
            report.dashboard_link = client.dashboard_link
            log.info("Dask dashboard: %s", report.dashboard_link)  # once per cluster
            _register_counter(client)
            _wait_for_workers(client, backend, settings["startup_timeout"])
            log.info("Dask %s", backend.describe())
            try:
                yield client
            except KilledWorker as err:
                raise killed_worker_error(err, backend) from err
        finally:
            _shutdown(client, backend, report, time.monotonic() - t0)


def dashboard_host(client, address: str | None) -> str | None:
    """The host a dashboard link should name, or None to keep distributed's (the scheduler's IP).

    A dashboard listening on all interfaces (``':8787'``) is reached as ``<node>:<port>`` (an
    SSH tunnel from the login node): the scheduler's host name, asked from the scheduler itself
    (in mode slurm-runner it runs on another task). An explicit host in ``address`` is the only
    one the dashboard listens on, so the link names it.
    """
    if address is None:
        return None
    if not listens_everywhere(address):
        return str(address).rpartition(":")[0] or None
    from eftflow.cluster.plugin import scheduler_hostname

    try:
        name = client.run_on_scheduler(scheduler_hostname)
    except Exception as err:  # no name: keep the address distributed reports
        log.debug("could not ask the Dask scheduler for its host name: %s", err)
        return None
    if not isinstance(name, str) or not name or name.split(".")[0] == "localhost":
        return None
    return name


@contextmanager
def _dashboard_host(client, address: str | None) -> Iterator[None]:
    """While the cluster is up, ``client.dashboard_link`` names :func:`dashboard_host`."""
    import dask

    host = dashboard_host(client, address)
    template = dask.config.get("distributed.dashboard.link")
    if host is None or "{host}" not in template:
        yield
        return
    with dask.config.set({"distributed.dashboard.link": template.replace("{host}", host)}):
        yield


def killed_worker_error(err: BaseException, backend) -> WorkerKilledError:
    """The eftflow error for Dask's ``KilledWorker`` ``err``: memory limit and how to raise it."""
    limit = _optional(backend, "worker_memory")
    if not isinstance(limit, int) or limit <= 0:  # e.g. 'auto': what the last worker had
        limit = getattr(getattr(err, "last_worker", None), "memory_limit", None)
    advice = _optional(backend, "memory_advice") or "give the Dask workers more memory"
    tries = getattr(err, "allowed_failures", None)
    times = f"{tries + 1} times" if isinstance(tries, int) else "repeatedly"
    task = getattr(err, "task", None)
    what = (
        f"the memory limit of {limit / 1e6:,.0f} MB per worker"
        if isinstance(limit, int | float) and limit > 0
        else "its memory limit"
    )
    return WorkerKilledError(
        f"Dask workers died {times} while running task {task!r} ({backend.mode} cluster): most "
        f"likely each was killed for exceeding {what}; {advice}. If memory is not the cause, "
        "the worker messages above (or the worker job logs) say why they died"
    )


def _optional(backend, name: str):
    """``backend.<name>()``, or None when the backend has no such method or it fails."""
    method = getattr(backend, name, None)
    if method is None:
        return None
    try:
        return method()
    except Exception:  # only used to word an error message
        return None


def _register_counter(client) -> None:
    from eftflow.cluster.plugin import WorkerLossCounter

    client.register_plugin(WorkerLossCounter())


def _wait_for_workers(client, backend, timeout: float) -> None:
    n = backend.expected_workers()
    if n <= 0:
        return
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:
        have = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        raise BackendError(
            f"only {have} of {n} Dask worker(s) started within {timeout:g} s ({backend.describe()}); "
            "the workers were released. Check that the worker jobs can start (squeue, their "
            "logs) or raise the time-out",
            field="cluster.startup_timeout",
        ) from None


def _shutdown(client, backend, report: ClusterReport, elapsed: float) -> None:
    """Collect the worker counts, close the client, release the workers; never raise."""
    if client is not None:
        from eftflow.cluster.plugin import collect_counts

        try:
            report.update(client.run_on_scheduler(collect_counts, closing=True) or {})
        except Exception as err:  # the scheduler may be gone already
            log.warning("could not read the worker counts from the Dask scheduler: %s", err)
        try:
            client.close()
        except Exception as err:
            log.warning("closing the Dask client failed: %s", err)
    try:
        backend.close()
    except Exception as err:
        log.warning("releasing the Dask workers (%s) failed: %s", report.mode, err)
    if client is not None:
        level = logging.WARNING if report.workers_lost else logging.INFO
        log.log(level, "%s; cluster up %.1f s, workers released", report.summary(), elapsed)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While the cluster is up, SIGTERM raises KeyboardInterrupt (so ``finally`` releases workers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    fired = []

    def handler(signum, frame):
        if not fired:  # once: a second SIGTERM must not interrupt the clean-up
            fired.append(signum)
            raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Hold distributed's INFO chatter back (unless eftflow logs at DEBUG): the dashboard line comes first."""
    import distributed  # noqa: F401  (its first import sets the logger levels from dask's config)

    logger = logging.getLogger("distributed")
    level = logger.level
    if not log.isEnabledFor(logging.DEBUG) and logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
