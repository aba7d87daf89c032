"""The seam between :func:`eftflow.cluster.dask_client` and the cluster modes.

A mode is a module ``eftflow.cluster.<mode with - as _>`` defining ``BACKEND``, a class that
follows :class:`ClusterBackend`. Adding a mode means adding a module (and its name to
``settings.MODES``), not branching on the mode elsewhere.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from eftflow.errors import BackendError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = [
    "ClusterBackend",
    "ClusterReport",
    "WorkerKilledError",
    "get_backend",
    "import_jobqueue",
    "keep_sigint_handler",
    "free_dashboard_address",
    "listens_everywhere",
]

log = logging.getLogger(__name__)


class WorkerKilledError(BackendError):
    """Dask workers kept dying while running a task: most often killed for exceeding their memory.

    Raised by :func:`eftflow.cluster.dask_client` in place of ``distributed``'s ``KilledWorker``;
    the message names the memory limit per worker and how to raise it in the current mode.
    """


@runtime_checkable
class ClusterBackend(Protocol):
    """One way of running Dask workers.

    A backend is constructed as ``Backend(settings, threads=..., memory_mb=...)`` with the
    completed ``cluster`` settings and the resources Snakemake gave the job. It logs nothing at
    INFO level before :meth:`start` returns (the dashboard link is the step's first log line).
    """

    mode: str

    def start(self) -> Client:
        """Start (or join) the cluster and return a connected client."""
        ...

    def expected_workers(self) -> int:
        """How many workers must have joined before the step starts (0: do not wait)."""
        ...

    def close(self) -> None:
        """Release every worker (cancel worker jobs); safe after a failed start and when repeated."""
        ...

    def describe(self) -> str:
        """One line on the size and where the workers run, logged once they are up."""
        ...

    def worker_memory(self) -> int | None:
        """The memory limit of one worker in bytes as configured (None: unknown, e.g. ``'auto'``)."""
        ...

    def memory_advice(self) -> str:
        """How to give each worker more memory in this mode (one sentence for error messages)."""
        ...


@dataclass
class ClusterReport:
    """What happened to the workers of one Dask step (filled in by ``dask_client``).

    Attributes
    ----------
    mode
        The cluster mode.
    dashboard_link
        The dashboard URL (``None`` until the cluster started).
    workers_joined
        Workers that connected to the scheduler during the step (restarts included).
    workers_lost
        Addresses of workers that left without being retired: killed, crashed, out of memory,
        their job cancelled or timed out.
    workers_retired
        Workers that left on purpose (adaptive scale-down, ``--lifetime``).
    """

    mode: str = "local"
    dashboard_link: str | None = None
    workers_joined: int = 0
    workers_lost: list[str] = field(default_factory=list)
    workers_retired: int = 0

    @property
    def n_lost(self) -> int:
        """Number of workers lost unexpectedly."""
        return len(self.workers_lost)

    def update(self, counts: Mapping[str, Any]) -> None:
        """Take the counts collected on the scheduler (see ``eftflow.cluster.plugin``)."""
        self.workers_joined = int(counts.get("joined", 0))
        self.workers_lost = list(counts.get("lost", []))
        self.workers_retired = int(counts.get("retired", 0))

    def summary(self) -> str:
        """One line for the log."""
        lost = f"{self.n_lost} lost unexpectedly" if self.workers_lost else "none lost"
        text = (
            f"Dask ({self.mode}): {self.workers_joined} worker(s) joined, {lost}, "
            f"{self.workers_retired} retired"
        )
        if self.workers_lost:
            text += (
                f" (lost: {', '.join(self.workers_lost[:5])}{', ...' if self.n_lost > 5 else ''})"
            )
        return text


def get_backend(mode: str) -> type:
    """The backend class of ``mode`` (``local``, ``slurm-runner``, ``slurm-cluster``)."""
    from eftflow.cluster.settings import MODES

    if mode not in MODES:
        raise ConfigError(
            f"unknown cluster mode {mode!r}; expected one of {', '.join(MODES)}",
            field="cluster.mode",
        )
    module = importlib.import_module(f"eftflow.cluster.{mode.replace('-', '_')}")
    return module.BACKEND


@contextmanager
def keep_sigint_handler() -> Iterator[None]:
    """Restore the SIGINT handler on exit (``dask_jobqueue`` replaces it with ``sys.exit`` on import).

    Without this, Ctrl-C after ``import dask_jobqueue`` exits with status 0 instead of raising
    :class:`KeyboardInterrupt`.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGINT, previous)


def import_jobqueue():
    """Import ``dask_jobqueue`` without letting it change the process's SIGINT handler."""
    with keep_sigint_handler():
        import dask_jobqueue
        import dask_jobqueue.slurm  # noqa: F401
    return dask_jobqueue


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
            wildcard = host.strip("[]") in ("::", "*", "0.0.0.0")
            sock.bind(("" if wildcard else host, int(port)))
        except OSError:
            log.debug(
                "dashboard port %s is taken (another job's cluster?): using a free port", port
            )
            return f"{host}:0"
    return address


def listens_everywhere(address: str | int | None) -> bool:
    """Whether a ``dashboard_address`` makes the dashboard listen on all interfaces.

    ``':8787'``, ``'8787'``, ``'0.0.0.0:8787'`` and ``'[::]:8787'`` do (the link should then name
    the node, which is reachable through an SSH tunnel); ``'127.0.0.1:0'`` does not.

    >>> listens_everywhere(":8787"), listens_everywhere("0.0.0.0:0"), listens_everywhere("127.0.0.1:0")
    (True, True, False)
    """
    if address is None:
        return False
    text = str(address).strip()
    if ":" not in text or text.isdigit():
        return True
    host = text.rpartition(":")[0].strip("[]")
    return host in ("", "0.0.0.0", "::", "*")
