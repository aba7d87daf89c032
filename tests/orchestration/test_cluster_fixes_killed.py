"""A task whose Dask workers keep dying ends the step with one eftflow error naming the memory limit."""

from __future__ import annotations

import logging
import os

import dask
import distributed  # noqa: F401  (before dask.config.set: its exit would drop the whole section)
import pytest

from eftflow.cluster import ClusterReport, WorkerKilledError, dask_client, resolve_cluster_settings
from eftflow.cluster.session import killed_worker_error
from eftflow.cluster.slurm_cluster import SLURMClusterBackend
from eftflow.cluster.slurm_runner import SLURMRunnerBackend
from eftflow.errors import BackendError, EftflowError

PROCESSES = {"mode": "local", "dashboard_address": "127.0.0.1:0", "local": {"processes": True}}


def _die():
    os._exit(1)  # what the kernel's OOM killer or the nanny's memory limit does to a worker


def test_killed_worker_becomes_one_eftflow_error(caplog):
    caplog.set_level(logging.WARNING)
    report = ClusterReport()
    # two deaths instead of Dask's default four keep the test short
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with pytest.raises(WorkerKilledError) as info:
            with dask_client(PROCESSES, threads=2, memory_mb=1000, report=report) as client:
                client.submit(_die, pure=False).result()
    err = info.value
    assert isinstance(err, BackendError) and isinstance(err, EftflowError)
    text = str(err)
    assert "\n" not in text  # the CLI prints it as one `eftflow: error:` line
    assert "372 MB per worker" in text  # 1000 MB less 256 MB kept, split between 2 workers
    assert "1000 MB" in text and "2 worker(s)" in text
    assert "mem_mb" in text and "--memory-mb" in text and "fewer threads" in text
    assert "2 times" in text and "_die" in text
    assert type(err.__cause__).__name__ == "KilledWorker"
    assert client.status == "closed"
    assert report.n_lost == 2  # the deaths are still counted and reported
    assert any("2 lost unexpectedly" in r.getMessage() for r in caplog.records)


def test_other_errors_pass_through_unchanged():
    with pytest.raises(ZeroDivisionError):
        with dask_client(PROCESSES | {"local": {"processes": False}}, threads=1) as client:
            client.submit(lambda: 1 / 0).result()


class _LastWorker:
    address = "tcp://10.0.0.7:4242"
    memory_limit = 3_000_000_000


def _killed():
    from distributed.scheduler import KilledWorker

    return KilledWorker("train-member-0-sally", _LastWorker(), 3)


def test_message_in_mode_slurm_cluster_names_its_memory_key():
    settings = resolve_cluster_settings(
        {"mode": "slurm-cluster", "slurm": {"memory": "4GB", "processes": 2}}
    )
    text = str(killed_worker_error(_killed(), SLURMClusterBackend(settings)))
    assert "2,000 MB per worker" in text
    assert "cluster.slurm.memory" in text and "4GB" in text and "cluster.slurm.processes" in text
    assert "4 times" in text and "'train-member-0-sally'" in text


def test_message_falls_back_to_the_last_workers_limit(monkeypatch):
    for key in ("SLURM_MEM_PER_CPU", "SLURM_MEM_PER_NODE"):
        monkeypatch.delenv(key, raising=False)
    settings = resolve_cluster_settings({"mode": "slurm-runner"})
    text = str(killed_worker_error(_killed(), SLURMRunnerBackend(settings)))
    assert "3,000 MB per worker" in text  # 'auto' in the settings: the worker's actual limit
    assert "mem_mb" in text
