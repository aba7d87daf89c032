"""A scheduler plugin that counts workers joining, retiring and dying during a Dask step.

A removal counts as *retired* when the worker was retired on purpose (adaptive scale-down,
``--lifetime`` expiry: both go through ``closing_gracefully``) or when the step is shutting
down; every other removal (killed process, out of memory, cancelled or timed-out job, lost
network) counts as *lost*. The plugin is registered through the client, so it also works when
the scheduler runs in another process (``slurm-runner``).
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["WorkerLossCounter", "PLUGIN_NAME", "collect_counts", "scheduler_hostname"]

PLUGIN_NAME = "eftflow-worker-loss-counter"


class WorkerLossCounter(SchedulerPlugin):
    """Count worker arrivals and unexpected departures on the scheduler."""

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self.joined = 0
        self.lost: list[str] = []
        self.retired = 0
        self.graceful: set[str] = set()
        self.closing = False

    async def start(self, scheduler: Any) -> None:
        self.joined += len(scheduler.workers)

    def add_worker(self, scheduler: Any, worker: str) -> None:
        self.joined += 1

    def log_event(self, topic: str, msg: Any) -> None:
        if isinstance(msg, dict) and msg.get("action") == "worker-status-change":
            if msg.get("status") == "closing_gracefully":
                self.graceful.add(msg.get("worker", topic))

    def remove_worker(
        self, scheduler: Any, worker: str, *, stimulus_id: str = "", **kwargs: Any
    ) -> None:
        status = getattr(getattr(scheduler, "status", None), "name", "running")
        expected = (
            self.closing
            or worker in self.graceful
            or str(stimulus_id).startswith("retire-workers")
            or status in ("closing", "closed", "closing_gracefully")
        )
        self.graceful.discard(worker)
        if expected:
            self.retired += 1
        else:
            self.lost.append(worker)

    def counts(self, *, closing: bool = False) -> dict:
        """The counts so far; ``closing=True`` marks every later removal as deliberate."""
        if closing:
            self.closing = True
        return {"joined": self.joined, "lost": list(self.lost), "retired": self.retired}


def collect_counts(dask_scheduler: Any = None, closing: bool = False) -> dict:
    """Run on the scheduler (``client.run_on_scheduler``): the counter's counts, or empty."""
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME) if dask_scheduler is not None else None
    if plugin is None:
        return {}
    return plugin.counts(closing=closing)


def scheduler_hostname(dask_scheduler: Any = None) -> str:
    """Run on the scheduler (``client.run_on_scheduler``): the host name of its node."""
    import socket

    return socket.gethostname()
